package bot_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

func TestAuditLine_OneLineWithWhoWhatWhenWhyAndWhere(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	alice := bot.User{ID: "u-alice", Email: "alice@example.com", Name: "Alice\n<b>"}
	bob := bot.User{ID: "u-bob", Email: "bob@example.com", Name: "Bob"}
	r := &bot.Request{ID: "R7KX2M9Q", Kind: bot.KindActivate, Group: "prod-db-admins", GroupID: "g-prod", Access: bot.Owner,
		Requester: alice, Surface: "teams", Reason: "fixing\nthe outage", Ticket: "INC-42", Duration: 2 * time.Hour,
		State: bot.StatePending, ApprovalsRequired: 1, CreatedAt: at}
	cases := []struct {
		name  string
		ev    func() bot.Event
		wants []string
	}{
		{"submitted", func() bot.Event { return bot.Event{Type: bot.EvSubmitted, Request: r, Actor: &alice, At: at} },
			[]string{"2026-11-28 10:00 CET submitted R7KX2M9Q: Alice <b> (alice@example.com)", "owner of prod-db-admins",
				"for 2h from now", "awaiting 1 approval(s)", `reason: "fixing the outage"`, "ticket: INC-42", "by Alice <b> (alice@example.com) via teams"}},
		{"approved on another surface", func() bot.Event {
			a := r.Clone()
			a.State, a.Approvals = bot.StateScheduled, []bot.Decision{{By: bob, At: at, Surface: "slack"}}
			return bot.Event{Type: bot.EvApproved, Request: a, Actor: &bob, At: at}
		}, []string{"approved R7KX2M9Q: Alice <b> (alice@example.com)", "1 of 1 approvals", "by Bob (bob@example.com) via slack"}},
		{"denied", func() bot.Event {
			d := r.Clone()
			d.State, d.DenyReason, d.Denial = bot.StateDenied, "not during the freeze", &bot.Decision{By: bob, Surface: "slack"}
			return bot.Event{Type: bot.EvDenied, Request: d, Actor: &bob, At: at}
		}, []string{"denied R7KX2M9Q", `deny reason: "not during the freeze"`, "by Bob (bob@example.com) via slack"}},
		{"ended by the job", func() bot.Event {
			e := r.Clone()
			e.State, e.EndReason = bot.StateEnded, "expired"
			return bot.Event{Type: bot.EvEnded, Request: e, At: at}
		}, []string{"ended R7KX2M9Q", "expired", "by pimbot"}},
		{"extended", func() bot.Event {
			x := r.Clone()
			x.State, x.EndsAt = bot.StateActive, at.Add(3*time.Hour)
			return bot.Event{Type: bot.EvExtended, Request: x, Actor: &bob, At: at, Detail: "by 1h (request K9M2P4QX)"}
		}, []string{"extended R7KX2M9Q: Alice <b> (alice@example.com) · owner of prod-db-admins · by 1h (request K9M2P4QX), until 2026-11-28 13:00 CET", "by Bob (bob@example.com)"}},
		{"drift", func() bot.Event {
			snap := &bot.Request{ID: "drift-0a1b2c3d4e5f", Kind: bot.KindActivate, Group: "sandbox", GroupID: "g-sb", Access: bot.Member, Requester: alice, CreatedAt: at}
			return bot.Event{Type: bot.EvDriftRemoveFailed, Request: snap, At: at, Detail: "alice@example.com holds member of sandbox without an active grant; removing them failed"}
		}, []string{"2026-11-28 10:00 CET DRIFT removal failed: Alice <b> (alice@example.com)", "member of sandbox",
			"removing them failed", "by pimbot via reconciler"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line, ok := bot.AuditLine(c.ev(), paris)
			if !ok {
				t.Fatal("not audit-worthy")
			}
			if strings.ContainsAny(line, "\n\r") {
				t.Fatalf("more than one line: %q", line)
			}
			for _, w := range c.wants {
				if !strings.Contains(line, w) {
					t.Fatalf("line %q\ndoes not say %q", line, w)
				}
			}
			if strings.Contains(line, "drift-") {
				t.Fatalf("a drift line names its internal id: %q", line)
			}
		})
	}
	for _, typ := range []string{bot.EvReminder, bot.EvDelayed, bot.EvMFARequired} {
		if _, ok := bot.AuditLine(bot.Event{Type: typ, Request: r, At: at}, paris); ok {
			t.Errorf("%s is summed up in the audit channel", typ)
		}
	}
	long := r.Clone()
	long.Reason = strings.Repeat("x", 10000)
	if line, _ := bot.AuditLine(bot.Event{Type: bot.EvSubmitted, Request: long, At: at}, paris); len(line) > 1000 {
		t.Fatalf("a 10,000-character reason makes a %d-byte line", len(line))
	}
}

func TestCapitalize_RunesNotBytes(t *testing.T) {
	for in, want := range map[string]string{"": "", "élan": "Élan", "über": "Über", "a": "A", "ärger über alles": "Ärger über alles", "1 thing": "1 thing"} {
		if got := bot.Capitalize(in); got != want {
			t.Errorf("Capitalize(%q) = %q, want %q", in, got, want)
		}
	}
}
