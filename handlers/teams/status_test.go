package teams_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// The status card tells the truth: an extended grant's real length and end, who denied a
// request and why, and a start hours away as a time with its day, never "starts soon".
func TestStatusCard_TellsTheTruth(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	bob := bot.User{ID: "b", Email: "bob@example.com", Name: "Bob"}
	extended := &bot.Request{ID: "R7KX2M9Q", Kind: bot.KindActivate, Group: "prod-db-admins", Access: bot.Member,
		Duration: 2 * time.Hour, State: bot.StateActive, ActivatedAt: now.Add(-time.Hour), EndsAt: now.Add(2 * time.Hour)}
	denied := &bot.Request{ID: "D7KX2M9Q", Kind: bot.KindActivate, Group: "prod-db-admins", Access: bot.Owner,
		Duration: time.Hour, State: bot.StateDenied, Denial: &bot.Decision{By: bob, At: now}, DenyReason: "not during the freeze"}
	later := &bot.Request{ID: "S7KX2M9Q", Kind: bot.KindActivate, Group: "sandbox-admins", Access: bot.Member,
		Duration: time.Hour, State: bot.StateScheduled, Start: now.Add(26 * time.Hour)}
	card := teams.StatusCard(teams.View{Now: now}, []*bot.Request{extended, denied, later}, nil)
	b, err := json.Marshal(card)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	// Each request in its own container: its state as a label, then what it gives and when.
	for id, want := range map[string][]string{
		extended.ID: {"Active", "Member of prod-db-admins for 3h, until 12:00 UTC"},
		denied.ID:   {"Denied", "denied by Bob: not during the freeze"},
		later.ID:    {"Approved, scheduled", "Member of sandbox-admins for 1h from 2026-11-29 12:00 UTC"},
	} {
		text := requestText(t, card, id)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("the status of %s lacks %q:\n%s", id, w, text)
			}
		}
	}
	if strings.Contains(got, "starts soon") || strings.Contains(got, "for 2h") {
		t.Errorf("status card tells an old story:\n%s", got)
	}
}

// requestText is every string of the status card's container for one request.
func requestText(t *testing.T, card map[string]any, id string) string {
	t.Helper()
	body, _ := card["body"].([]any)
	for _, x := range body {
		c, _ := x.(map[string]any)
		if s := teamsfake.Strings(c["items"]); c["type"] == "Container" && strings.Contains(s, "Request "+id+"\n") {
			return s
		}
	}
	t.Fatalf("no container for request %s", id)
	return ""
}

// The requester is not told to wait for themselves, nor told "you are member of".
func TestRequesterNotice_LeavesTheRequesterOutOfTheApprovers(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	bob := bot.User{ID: "b", Email: "bob@example.com", Name: "Bob"}
	g := &bot.Group{Name: "prod-db-admins", Approvers: []string{"bob@example.com", "carol@example.com"}}
	r := &bot.Request{ID: "R7KX2M9Q", Kind: bot.KindActivate, Group: g.Name, Access: bot.Owner, Requester: bob,
		Duration: time.Hour, State: bot.StatePending, ApprovalsRequired: 1}
	card, _, ok := teams.RequesterNotice(teams.View{Now: now}, bot.Event{Type: bot.EvSubmitted, Request: r}, g, teams.Offer{})
	if !ok {
		t.Fatal("no notice")
	}
	b, _ := json.Marshal(card)
	if got := string(b); !strings.Contains(got, "Approvers: carol@example.com.") {
		t.Errorf("want only carol as approver:\n%s", got)
	}
	a := r.Clone()
	a.State, a.ActivatedAt, a.EndsAt = bot.StateActive, now, now.Add(time.Hour)
	card, _, _ = teams.RequesterNotice(teams.View{Now: now}, bot.Event{Type: bot.EvActivated, Request: a}, g, teams.Offer{})
	b, _ = json.Marshal(card)
	if got := string(b); !strings.Contains(got, "You are an owner of prod-db-admins until") {
		t.Errorf("want \"an owner of\":\n%s", got)
	}
}
