package bot_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

func TestSubmit_RefusalsNameTheField(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	cases := []struct {
		name  string
		who   string
		in    bot.SubmitInput
		field string
		words string
	}{
		{"unknown group", "alice", bot.SubmitInput{Group: "nope", Reason: "x"}, bot.FieldGroup, `there is no group "nope"; you can activate: prod-db-admins, quorum, sandbox, ticketed`},
		{"not eligible", "mallory", bot.SubmitInput{Group: "prod-db-admins", Reason: "x"}, bot.FieldGroup, "you are not eligible for prod-db-admins"},
		{"access not allowed", "alice", bot.SubmitInput{Group: "sandbox", Access: bot.Owner}, bot.FieldAccess, "only member may be activated for sandbox"},
		{"too long", "alice", bot.SubmitInput{Group: "prod-db-admins", Duration: 5 * time.Hour, Reason: "x"}, bot.FieldDuration, "5h is not allowed for prod-db-admins; choose between 5m and 4h"},
		{"too short", "alice", bot.SubmitInput{Group: "prod-db-admins", Duration: time.Minute, Reason: "x"}, bot.FieldDuration, "choose between 5m and 4h"},
		{"negative", "alice", bot.SubmitInput{Group: "prod-db-admins", Duration: -time.Hour, Reason: "x"}, bot.FieldDuration, "choose between"},
		{"absurd", "alice", bot.SubmitInput{Group: "prod-db-admins", Duration: 9999 * time.Hour, Reason: "x"}, bot.FieldDuration, "choose between"},
		{"reason required", "alice", bot.SubmitInput{Group: "prod-db-admins", Reason: "   "}, bot.FieldReason, "a reason is needed for prod-db-admins"},
		{"reason too long", "alice", bot.SubmitInput{Group: "prod-db-admins", Reason: strings.Repeat("x", 10000)}, bot.FieldReason, "at most 1000 are allowed"},
		{"ticket required", "alice", bot.SubmitInput{Group: "ticketed", Reason: "x"}, bot.FieldTicket, "a ticket number is needed for ticketed"},
		{"ticket with markup", "alice", bot.SubmitInput{Group: "ticketed", Reason: "x", Ticket: "<!channel>"}, bot.FieldTicket, "a ticket is one word"},
		{"start in the past", "alice", bot.SubmitInput{Group: "prod-db-admins", Reason: "x", Start: now.Add(-time.Hour)}, bot.FieldStart, "is in the past"},
		{"start far ahead", "alice", bot.SubmitInput{Group: "prod-db-admins", Reason: "x", Start: now.Add(60 * 24 * time.Hour)}, bot.FieldStart, "more than 30d ahead"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.eng.Submit(e.ctx, e.actor(c.who), c.in)
			var fe *bot.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a FieldError", err)
			}
			if fe.Field != c.field || !strings.Contains(fe.Message, c.words) {
				t.Fatalf("got %s: %q; want %s containing %q", fe.Field, fe.Message, c.field, c.words)
			}
		})
	}
	// Nothing half-written: no request, no job.
	rs, err := e.store.ListByUser(e.ctx, e.actor("alice").User.ID, 50)
	if err != nil || len(rs) != 0 {
		t.Fatalf("refused submissions left %d requests (err %v)", len(rs), err)
	}
	if next, _ := e.store.NextDue(e.ctx); !next.IsZero() {
		t.Fatalf("refused submissions left a job due at %s", next)
	}
}

func TestSubmit_AcceptsTransitiveEligibilityAndSmallPastTolerance(t *testing.T) {
	e := newEnv(t)
	// erin is in sre, which is in engineering, which is eligible for sandbox.
	r, err := e.eng.Submit(e.ctx, e.actor("erin"), bot.SubmitInput{Group: "sandbox", Start: e.clock.Now().Add(-2 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bot.StateScheduled || !r.Start.Equal(e.clock.Now()) || r.Duration != 2*time.Minute {
		t.Fatalf("got %s start %s duration %s", r.State, r.Start, r.Duration)
	}
}

func TestSubmit_OneOpenRequestPerGroupAndAccess(t *testing.T) {
	e := newEnv(t)
	alice := e.actor("alice")
	first, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Reason: "a"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Reason: "again"})
	var de *bot.DuplicateError
	if !errors.As(err, &de) || de.ExistingID != first.ID || de.State != bot.StatePending {
		t.Fatalf("err = %v, want duplicate of %s", err, first.ID)
	}
	// Owner is a different access: allowed.
	if _, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Access: bot.Owner, Reason: "b"}); err != nil {
		t.Fatal(err)
	}
	// Once the first is canceled, a new one may be made.
	if _, err := e.eng.Cancel(e.ctx, alice, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Reason: "again"}); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestSubmit_AbuseLimits(t *testing.T) {
	e := newEnvPolicy(t, strings.Replace(testPolicy, "settings: {requests_per_minute: 0, max_pending: 0}", "settings: {requests_per_minute: 3, max_pending: 2}", 1))
	alice := e.actor("alice")
	for _, g := range []string{"prod-db-admins", "quorum"} {
		if _, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: g, Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Access: bot.Owner, Reason: "x"})
	var le *bot.LimitError
	if !errors.As(err, &le) || !strings.Contains(le.Message, "2 requests waiting") {
		t.Fatalf("third open request: err = %v, want the open-requests limit", err)
	}
	// Per-minute: the refused one did not count; one more fits after freeing a slot, then the rate hits.
	rs, _ := e.eng.List(e.ctx, alice, 10)
	if _, err := e.eng.Cancel(e.ctx, alice, rs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Access: bot.Owner, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Cancel(e.ctx, alice, rs[1].ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "ticketed", Ticket: "T-1", Reason: "x"})
	if !errors.As(err, &le) || !strings.Contains(le.Message, "3 requests in the last minute") {
		t.Fatalf("fourth in a minute: err = %v, want the rate limit", err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "ticketed", Ticket: "T-1", Reason: "x"}); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

func TestQuickForm(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want bot.Quick
		err  string
	}{
		{"prod-db-admins for 2h fixing the outage", bot.Quick{Group: "prod-db-admins", Duration: 2 * time.Hour, Reason: "fixing the outage"}, ""},
		{"prod-db-admins owner for 90m at 14:30 ticket INC-42 rotate keys for real", bot.Quick{Group: "prod-db-admins", Access: bot.Owner, Duration: 90 * time.Minute,
			Start: time.Date(2026, 11, 28, 14, 30, 0, 0, time.UTC), Ticket: "INC-42", Reason: "rotate keys for real"}, ""},
		{"g for 2 hours at 2026-12-01 08:00 x", bot.Quick{Group: "g", Duration: 2 * time.Hour, Start: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Reason: "x"}, ""},
		{"g at +30m", bot.Quick{Group: "g", Start: now.Add(30 * time.Minute)}, ""},
		{"g at 08:00", bot.Quick{Group: "g", Start: time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)}, ""}, // past today: tomorrow
		{"g member", bot.Quick{Group: "g", Access: bot.Member}, ""},
		{"g for", bot.Quick{}, "duration: say how long after for"},
		{"g for 2x", bot.Quick{}, `duration: "2x" is not a duration`},
		{"g for 0s", bot.Quick{}, "duration: the duration must be positive"},
		{"g for -1h", bot.Quick{}, "duration: the duration must be positive"},
		{"g at soon", bot.Quick{}, `start: "soon" is not a time`},
		{"g ticket", bot.Quick{}, "ticket: say which ticket"},
		{"", bot.Quick{}, "group: name a group"},
	}
	for _, c := range cases {
		got, err := bot.ParseQuick(c.in, now, time.UTC)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got.Group != c.want.Group || got.Access != c.want.Access || got.Duration != c.want.Duration ||
			!got.Start.Equal(c.want.Start) || got.Ticket != c.want.Ticket || got.Reason != c.want.Reason {
			t.Errorf("%q:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90m": 90 * time.Minute, "1h30m": 90 * time.Minute, "1d": 24 * time.Hour, "2 hours": 2 * time.Hour, "30 mins": 30 * time.Minute, "0s": 0} {
		if got, err := bot.ParseDuration(in); err != nil || got != want {
			t.Errorf("%q = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "1y", "h", strings.Repeat("9", 100)} {
		if _, err := bot.ParseDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if got := bot.FormatDuration(90 * time.Minute); got != "1h30m" {
		t.Errorf("FormatDuration(90m) = %s", got)
	}
}
