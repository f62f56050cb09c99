package teams_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/handlers/teams"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares a card's JSON with testdata/<TestName>.golden.json.
func golden(t *testing.T, card teams.Card) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(card); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(want, b.Bytes()) {
		t.Fatalf("%s differs from the rendered card (go test -update rewrites it):\n%s", path, b.String())
	}
	if b.Len() > 28<<10 {
		t.Fatalf("the card is %d bytes; Teams refuses messages over 28 KB", b.Len())
	}
}

var (
	now  = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	view = teams.View{Now: now, Loc: time.UTC}
	// decide is what the engine offers an approver on a pending request.
	decide = []bot.Action{bot.ActApprove, bot.ActDeny}
)

func testGroups(t *testing.T) []*bot.Group {
	t.Helper()
	pol, err := policyfile.Parse("test.yaml", []byte(strings.Replace(testPolicy, "directory:", `  - name: ticketed
    id: 7c1e0f8a-0000-4000-8000-000000000003
    eligible: [alice@example.com]
    require_ticket: true
    approvers: [group:dba-leads@example.com]
    approvals_required: 2
directory:`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return pol.Groups
}

func pending(g *bot.Group) *bot.Request {
	return &bot.Request{ID: "R7KX2M9Q", Version: 1, Kind: bot.KindActivate, Group: g.Name, GroupID: g.ID, Access: bot.Member,
		Requester: bot.User{ID: aliceID, Email: "alice@example.com", Name: "Alice"}, Surface: "teams",
		Reason: "fixing the outage", Ticket: "INC-42", Duration: 2 * time.Hour, Start: now, State: bot.StatePending,
		ApprovalsRequired: g.ApprovalsRequired, CreatedAt: now}
}

func TestCard_Form(t *testing.T) {
	golden(t, teams.FormCard(view, testGroups(t), teams.Form{}, nil, ""))
}

func TestCard_FormRefused(t *testing.T) {
	f := teams.Form{Group: "prod-db-admins", Access: "owner", Duration: "9h", Reason: "because"}
	golden(t, teams.FormCard(view, testGroups(t), f, &bot.FieldError{Field: bot.FieldDuration, Message: "9h is not allowed for prod-db-admins; choose between 5m and 4h"}, ""))
}

func TestCard_ApprovalPending(t *testing.T) {
	g := testGroups(t)[0]
	golden(t, teams.ApprovalCard(view, pending(g), g, decide))
}

func TestCard_ApprovalQuorumHalfway(t *testing.T) {
	g := testGroups(t)[2]
	r := pending(g)
	r.Approvals = []bot.Decision{{By: bot.User{ID: bobID, Email: "bob@example.com", Name: "Bob"}, At: now.Add(5 * time.Minute), Surface: "teams"}}
	r.MFAVerifiedAt = now.Add(-time.Minute)
	golden(t, teams.ApprovalCard(view, r, g, decide))
}

func TestCard_ApprovalApprovedActive(t *testing.T) {
	g := testGroups(t)[0]
	r := pending(g)
	r.State, r.ActivatedAt, r.EndsAt, r.DecidedAt = bot.StateActive, now.Add(10*time.Minute), now.Add(130*time.Minute), now.Add(10*time.Minute)
	r.Approvals = []bot.Decision{{By: bot.User{ID: bobID, Email: "bob@example.com", Name: "Bob"}, At: now.Add(10 * time.Minute), Surface: "slack"}}
	golden(t, teams.ApprovalCard(view, r, g, nil))
}

func TestCard_ApprovalDenied(t *testing.T) {
	g := testGroups(t)[0]
	r := pending(g)
	r.State, r.DecidedAt, r.DenyReason = bot.StateDenied, now.Add(3*time.Minute), "use the replica"
	r.Denial = &bot.Decision{By: bot.User{ID: carolID, Email: "carol@example.com", Name: "Carol"}, At: now.Add(3 * time.Minute)}
	golden(t, teams.ApprovalCard(view, r, g, nil))
}

func TestCard_RequesterActive(t *testing.T) {
	g := testGroups(t)[0]
	r := pending(g)
	r.State, r.ActivatedAt, r.EndsAt = bot.StateActive, now, now.Add(2*time.Hour)
	o := teams.Offer{Actions: []bot.Action{bot.ActExtend, bot.ActDeactivate}, ExtendBy: time.Hour}
	card, summary, ok := teams.RequesterNotice(view, bot.Event{Type: bot.EvActivated, Request: r, At: now}, g, o)
	if !ok || summary != "Request R7KX2M9Q is active" {
		t.Fatalf("ok=%v summary=%q", ok, summary)
	}
	golden(t, card)
}

func TestCard_RequesterDenied(t *testing.T) {
	g := testGroups(t)[0]
	r := pending(g)
	r.State, r.DenyReason = bot.StateDenied, "use the replica"
	carol := bot.User{ID: carolID, Email: "carol@example.com", Name: "Carol"}
	card, _, _ := teams.RequesterNotice(view, bot.Event{Type: bot.EvDenied, Request: r, Actor: &carol, At: now}, g, teams.Offer{})
	golden(t, card)
}

func TestCard_MFA(t *testing.T) {
	g := testGroups(t)[0]
	r := pending(g)
	r.State = bot.StateVerifying
	golden(t, teams.MFACard(view, r, bot.Challenge{URL: "https://login.microsoftonline.com/tenant/oauth2/v2.0/authorize?state=s", Expires: now.Add(10 * time.Minute)}, []bot.Action{bot.ActVerify, bot.ActCancel}))
}

func TestCard_Status(t *testing.T) {
	g := testGroups(t)[0]
	a, b := pending(g), pending(g)
	b.ID, b.State, b.ActivatedAt, b.EndsAt = "R2222222", bot.StateActive, now.Add(-time.Hour), now.Add(time.Hour)
	acts := map[string][]bot.Action{a.ID: {bot.ActCancel}, b.ID: {bot.ActExtend, bot.ActDeactivate}}
	golden(t, teams.StatusCard(view, []*bot.Request{a, b}, acts))
}

func TestCard_Help(t *testing.T) { golden(t, teams.HelpCard()) }

// What people type never acts as markup: in TextBlocks and FactSets it is escaped, free text
// goes into TextRuns (never markdown), and <at> mention tags are broken everywhere.
func TestCard_PeoplesTextIsInert(t *testing.T) {
	g := testGroups(t)[0]
	evil := "see [x](http://evil) **now** <at>Bob</at> {{DATE(2026-01-01T00:00:00Z)}}"
	r := pending(g)
	r.Reason, r.DenyReason = evil, evil
	r.Requester.Name = "Mallory [click](http://evil) **boss**"
	r.State = bot.StateDenied
	r.Denial = &bot.Decision{By: bot.User{ID: carolID, Name: "<at>Carol</at>"}, At: now}
	assertInert(t, teams.ApprovalCard(view, r, g, nil), evil)
	card, _, _ := teams.RequesterNotice(view, bot.Event{Type: bot.EvDenied, Request: r, Actor: &r.Denial.By}, g, teams.Offer{})
	assertInert(t, card, evil)
	assertInert(t, teams.FormCard(view, []*bot.Group{g}, teams.Form{Reason: evil}, &bot.FieldError{Field: bot.FieldGroup, Message: evil}, evil), evil)
	assertInert(t, teams.MessageCard("That did not work", evil, ""), evil)
	golden(t, teams.ApprovalCard(view, r, g, nil))
}

// assertInert checks that text reaches the card only as inert text.
func assertInert(t testing.TB, card map[string]any, text string) {
	t.Helper()
	shown := false
	var walk func(any, string)
	walk = func(v any, parent string) {
		switch x := v.(type) {
		case map[string]any:
			typ, _ := x["type"].(string)
			switch {
			case typ == "TextBlock":
				markdownInert(t, x["text"].(string), text)
			case typ == "TextRun", typ == "Input.Text":
				s, _ := x["text"].(string)
				if typ == "Input.Text" {
					s, _ = x["value"].(string)
				}
				if strings.Contains(s, "<at>") || strings.Contains(s, "{{") {
					t.Fatalf("a %s carries a live mention or date function: %q", typ, s)
				}
				if strings.Contains(strings.ReplaceAll(s, "\u2060", ""), text) {
					shown = true
				}
			case parent == "facts":
				markdownInert(t, x["title"].(string), text)
				markdownInert(t, x["value"].(string), text)
			}
			for k, y := range x {
				walk(y, k)
			}
		case []any:
			for _, y := range x {
				walk(y, parent)
			}
		}
	}
	walk(card, "")
	if !shown {
		t.Fatalf("the text %q is not shown in any TextRun", text)
	}
}

func markdownInert(t testing.TB, s, raw string) {
	t.Helper()
	if strings.Contains(s, raw) || strings.Contains(s, "<at") || strings.Contains(s, "{{") {
		t.Fatalf("markdown text carries people's text as is: %q", s)
	}
	escaped := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escaped {
			escaped = false
			continue
		}
		switch {
		case c == '\\':
			escaped = true
		case c == '*' && i+1 < len(s) && s[i+1] == '*':
			t.Fatalf("live ** in markdown text %q", s)
		case c == ']' && i+1 < len(s) && s[i+1] == '(':
			t.Fatalf("a live link in markdown text %q", s)
		case c == '[':
			t.Fatalf("a live [ in markdown text %q", s)
		}
	}
}
