package slack

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// A status line tells the truth: an extended grant's real length, who denied and why, a
// start hours away as a time with its day rather than "starts soon".
func TestRequestLine_TellsTheTruth(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	bob := bot.User{ID: "b", Email: "bob@example.com", Name: "Bob"}
	tests := map[string]struct {
		r    *bot.Request
		want string
	}{
		"extended grant shows its real length": {&bot.Request{ID: "R7KX2M9Q", Kind: bot.KindActivate, Group: "prod-db-admins", Access: bot.Member,
			Duration: 2 * time.Hour, State: bot.StateActive, ActivatedAt: now.Add(-time.Hour), EndsAt: now.Add(2 * time.Hour)},
			"*member of prod-db-admins for 3h* · `R7KX2M9Q` · active until 12:00 UTC"},
		"denied says by whom and why": {&bot.Request{ID: "D7KX2M9Q", Kind: bot.KindActivate, Group: "prod-db-admins", Access: bot.Owner,
			Duration: time.Hour, State: bot.StateDenied, Denial: &bot.Decision{By: bob, At: now}, DenyReason: "not now"},
			"denied by Bob: not now"},
		"a start tomorrow is a time, not soon": {&bot.Request{ID: "S7KX2M9Q", Kind: bot.KindActivate, Group: "sandbox-admins", Access: bot.Member,
			Duration: time.Hour, State: bot.StateScheduled, Start: now.Add(26 * time.Hour)},
			"approved, scheduled · from 2026-11-29 12:00 UTC"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := requestLine(tc.r, now, time.UTC); !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// A requester who approves the group is not told to wait for themselves.
func TestRequesterMessage_LeavesTheRequesterOutOfTheApprovers(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	bob := bot.User{ID: "b", Email: "bob@example.com", Name: "Bob"}
	g := &bot.Group{Name: "prod-db-admins", Approvers: []string{"bob@example.com", "carol@example.com"}}
	r := &bot.Request{ID: "R7KX2M9Q", Kind: bot.KindActivate, Group: g.Name, Access: bot.Member, Requester: bob,
		Duration: time.Hour, State: bot.StatePending, ApprovalsRequired: 1}
	m, ok := requesterMessage(bot.Event{Type: bot.EvSubmitted, Request: r}, g, nil, now, time.UTC, people{})
	if !ok || !strings.HasSuffix(m.Text, "is waiting for approval by carol@example.com.") {
		t.Errorf("got %q, want approval by carol only", m.Text)
	}
}

// A window changed at the start (PIM for Groups assigns for 5 minutes at least) is told to
// the requester with the activation, not only written in the audit trail.
func TestRequesterMessage_ActivationSaysTheWindowWasRounded(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	g := &bot.Group{Name: "prod-db-admins"}
	r := &bot.Request{ID: "R7KX2M9Q", Kind: bot.KindActivate, Group: g.Name, Access: bot.Member, Requester: bot.User{ID: "a", Name: "Alice"},
		Duration: 5 * time.Minute, State: bot.StateActive, ActivatedAt: now, EndsAt: now.Add(5 * time.Minute)}
	detail := "PIM for Groups assigns for at least 5m, so 2m was rounded up to 5m"
	m, ok := requesterMessage(bot.Event{Type: bot.EvActivated, Request: r, Detail: detail}, g, nil, now, time.UTC, people{})
	if !ok || !strings.Contains(m.Text, "PIM for Groups assigns for at least 5m, so 2m was rounded up to 5m.") {
		t.Errorf("the activation does not say the window was rounded: %q", m.Text)
	}
}
