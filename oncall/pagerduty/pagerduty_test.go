package pagerduty_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/oncall/pagerduty"
	"github.com/pimbot/pimbot/oncall/pagerduty/pagerdutyfake"
)

const token = "u+pd-secret-token-1234"

var now = time.Now().UTC().Truncate(time.Second)

// world is a PagerDuty account: alice is on call for schedule "DB primary" (which the
// escalation policy of service "Database" pages) until 18:00-ish; bob is second level.
type world struct {
	fake *pagerdutyfake.Server
	p    *pagerduty.Provider
}

func newWorld(t *testing.T) *world {
	t.Helper()
	fake := pagerdutyfake.New(t, token)
	fake.AddUser(pagerdutyfake.User{ID: "PALICE1", Name: "Alice Admin", Email: "Alice@Example.com"})
	fake.AddUser(pagerdutyfake.User{ID: "PBOB001", Name: "Bob Builder", Email: "bob@example.com"})
	fake.AddUser(pagerdutyfake.User{ID: "PCAROL1", Name: "Carol", Email: "carol@example.com"})
	fake.AddSchedule(pagerdutyfake.Schedule{ID: "P1ABCD2", Name: "DB primary"})
	fake.AddSchedule(pagerdutyfake.Schedule{ID: "PWEB001", Name: "Web"})
	fake.AddService(pagerdutyfake.Service{ID: "PSVC001", Name: "Database", PolicyID: "PEP0001", PolicyName: "DB escalation"})
	fake.AddOnCall(pagerdutyfake.OnCall{UserID: "PALICE1", ScheduleID: "P1ABCD2", PolicyID: "PEP0001", Level: 1,
		Start: now.Add(-2 * time.Hour), End: now.Add(6 * time.Hour)})
	fake.AddOnCall(pagerdutyfake.OnCall{UserID: "PBOB001", PolicyID: "PEP0001", Level: 2}) // named in the rule: no start, no end
	// Carol's shift starts in 30 s: inside the window asked of /oncalls, not on call yet.
	fake.AddOnCall(pagerdutyfake.OnCall{UserID: "PCAROL1", ScheduleID: "PWEB001", PolicyID: "PEPWEB1", Level: 1,
		Start: now.Add(30 * time.Second), End: now.Add(8 * time.Hour)})
	return &world{fake: fake, p: provider(t, fake, token)}
}

func provider(t *testing.T, fake *pagerdutyfake.Server, tok string) *pagerduty.Provider {
	t.Helper()
	p, err := pagerduty.New(pagerduty.Options{Token: tok, BaseURL: fake.URL(), HTTPClient: &http.Client{Timeout: 5 * time.Second},
		Clock: fixedClock{now}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func query(email string, src bot.OnCallSource) bot.OnCallQuery {
	return bot.OnCallQuery{Source: src, Person: bot.User{ID: "u1", Email: email}, At: now}
}

var dbSchedule = bot.OnCallSource{Provider: bot.OnCallPagerDuty, Schedules: []string{"P1ABCD2"}}

func TestOnCallAnswers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	database := bot.OnCallSource{Provider: bot.OnCallPagerDuty, Services: []string{"PSVC001"}}
	tests := []struct {
		name string
		q    bot.OnCallQuery
		want bot.OnCallAnswer
	}{
		{"on call for the schedule, e-mail matched whatever its case", query("alice@EXAMPLE.com", dbSchedule),
			bot.OnCallAnswer{OnCall: true, Via: `PagerDuty schedule "DB primary"`}},
		{"matched by UPN when the e-mail is no PagerDuty user",
			bot.OnCallQuery{Source: dbSchedule, Person: bot.User{Email: "a.admin@corp.example", UPN: "alice@example.com"}, At: now},
			bot.OnCallAnswer{OnCall: true, Via: `PagerDuty schedule "DB primary"`}},
		{"not on call for the schedule", query("bob@example.com", dbSchedule),
			bot.OnCallAnswer{Why: `not on call for PagerDuty schedule "DB primary"`}},
		{"a shift that starts in 30 s is not on call now",
			query("carol@example.com", bot.OnCallSource{Schedules: []string{"PWEB001"}}),
			bot.OnCallAnswer{Why: `not on call for PagerDuty schedule "Web"`}},
		{"a second level of the service's escalation policy is on call", query("bob@example.com", database),
			bot.OnCallAnswer{OnCall: true, Via: `PagerDuty service "Database"`}},
		{"a person PagerDuty does not know", query("mallory@example.com", dbSchedule),
			bot.OnCallAnswer{Why: "no PagerDuty user has the e-mail address mallory@example.com"}},
		{"require_incident without a service",
			bot.OnCallQuery{Source: dbSchedule, Person: bot.User{Email: "alice@example.com"}, At: now, RequireIncident: true},
			bot.OnCallAnswer{Why: "require_incident needs a PagerDuty service"}},
		{"require_incident and no open incident",
			bot.OnCallQuery{Source: database, Person: bot.User{Email: "alice@example.com"}, At: now, RequireIncident: true},
			bot.OnCallAnswer{Why: `no triggered or acknowledged incident on PagerDuty service "Database"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := w.p.OnCall(ctxFor(t, 5*time.Second), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestOnCallWithAnOpenIncident(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.fake.AddIncident(pagerdutyfake.Incident{ID: "PINC001", Number: 1233, Title: "Old one", Status: "resolved", ServiceID: "PSVC001"})
	w.fake.AddIncident(pagerdutyfake.Incident{ID: "PINC002", Number: 1234, Title: "Replica lag", Status: "acknowledged", ServiceID: "PSVC001"})
	src := bot.OnCallSource{Schedules: []string{"P1ABCD2"}, Services: []string{"PSVC001"}}
	got, err := w.p.OnCall(ctxFor(t, 5*time.Second), bot.OnCallQuery{Source: src, Person: bot.User{Email: "alice@example.com"}, At: now, RequireIncident: true})
	if err != nil {
		t.Fatal(err)
	}
	want := bot.OnCallAnswer{OnCall: true, Via: `PagerDuty schedule "DB primary"`, Incident: `incident #1234 "Replica lag"`}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestNowListsThePeopleOnCall(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	got, err := w.p.Now(ctxFor(t, 5*time.Second), bot.OnCallSource{Schedules: []string{"P1ABCD2"}, Services: []string{"PSVC001"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d shifts, want 2: %+v", len(got), got)
	}
	if s := got[0]; s.Rota != `PagerDuty schedule "DB primary" (P1ABCD2)` || strings.Join(s.People, ",") != "Alice@Example.com" ||
		!s.Until.Equal(now.Add(6*time.Hour)) {
		t.Errorf("schedule shift = %+v", s)
	}
	if s := got[1]; s.Rota != `PagerDuty service "Database" (PSVC001)` || strings.Join(s.People, ",") != "Alice@Example.com,bob@example.com" ||
		!s.Until.Equal(now.Add(6*time.Hour)) {
		t.Errorf("service shift = %+v", s)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	bad := provider(t, w.fake, "not-the-token")
	tests := []struct {
		name     string
		run      func(ctx context.Context) error
		kind     error
		contains string
	}{
		{"a bad token is forbidden", func(ctx context.Context) error {
			_, err := bad.OnCall(ctx, query("alice@example.com", dbSchedule))
			return err
		}, bot.ErrForbidden, "PagerDuty refused the token (PAGERDUTY_TOKEN)"},
		{"Now with a bad token is forbidden", func(ctx context.Context) error {
			_, err := bad.Now(ctx, dbSchedule)
			return err
		}, bot.ErrForbidden, "PagerDuty refused the token (PAGERDUTY_TOKEN)"},
		{"an unknown schedule is not found", func(ctx context.Context) error {
			_, err := w.p.OnCall(ctx, query("alice@example.com", bot.OnCallSource{Schedules: []string{"PNOPE00"}}))
			return err
		}, bot.ErrNotFound, "PagerDuty schedule PNOPE00 does not exist"},
		{"Now with an unknown service is not found", func(ctx context.Context) error {
			_, err := w.p.Now(ctx, bot.OnCallSource{Services: []string{"PNOSVC0"}})
			return err
		}, bot.ErrNotFound, "PagerDuty service PNOSVC0 does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(ctxFor(t, 5*time.Second))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("err = %q, want it to say %q", err, tc.contains)
			}
			if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), "not-the-token") {
				t.Errorf("the token is in the error: %q", err)
			}
		})
	}
}

func TestServerErrorIsTemporary(t *testing.T) {
	t.Parallel()
	for _, status := range []int{500, 503} {
		w := newWorld(t)
		w.fake.Fail(1, status)
		_, err := w.p.OnCall(ctxFor(t, 5*time.Second), query("alice@example.com", dbSchedule))
		if !errors.Is(err, bot.ErrUnavailable) || errors.Is(err, bot.ErrForbidden) || errors.Is(err, bot.ErrNotFound) {
			t.Fatalf("%d: err = %v, want a temporary error only", status, err)
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("the token is in the error: %q", err)
		}
		if n := w.fake.Calls(); n != 1 {
			t.Errorf("%d: %d calls; a 5xx is not retried here (the approvers are asked)", status, n)
		}
	}
}

func TestRateLimitedCallWaitsAndRetriesOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.fake.RateLimit(1, time.Second)
	start := time.Now()
	got, err := w.p.OnCall(ctxFor(t, 5*time.Second), query("alice@example.com", dbSchedule))
	if err != nil {
		t.Fatal(err)
	}
	if !got.OnCall {
		t.Errorf("got %+v, want on call", got)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("answered after %s, before the 1 s Retry-After", waited)
	}
}

func TestRateLimitPastTheDeadlineFailsAtOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.fake.RateLimit(1, 5*time.Second)
	start := time.Now()
	_, err := w.p.OnCall(ctxFor(t, 2*time.Second), query("alice@example.com", dbSchedule))
	if !errors.Is(err, bot.ErrUnavailable) || !strings.Contains(err.Error(), "rate-limiting") {
		t.Fatalf("err = %v, want a temporary rate-limit error", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %s; a wait past the deadline is not waited for", took)
	}
	if n := w.fake.Calls(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

func TestRateLimitedTwiceGivesUp(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.fake.RateLimit(2, 0)
	_, err := w.p.OnCall(ctxFor(t, 5*time.Second), query("alice@example.com", dbSchedule))
	if !errors.Is(err, bot.ErrUnavailable) {
		t.Fatalf("err = %v, want a temporary error", err)
	}
	if n := w.fake.Calls(); n != 2 {
		t.Errorf("%d calls, want 2 (one retry)", n)
	}
}

func TestNoAnswerInTimeIsTemporary(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := w.p.OnCall(ctx, query("alice@example.com", dbSchedule))
	if !errors.Is(err, bot.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want temporary and canceled", err)
	}
}

func TestNewNeedsAToken(t *testing.T) {
	t.Parallel()
	if _, err := pagerduty.New(pagerduty.Options{}); err == nil || !strings.Contains(err.Error(), "PAGERDUTY_TOKEN") {
		t.Errorf("err = %v, want it to name PAGERDUTY_TOKEN", err)
	}
	if _, err := pagerduty.New(pagerduty.Options{Token: "x", BaseURL: "api.pagerduty.com"}); err == nil || !strings.Contains(err.Error(), "PAGERDUTY_URL") {
		t.Errorf("err = %v, want it to name PAGERDUTY_URL", err)
	}
}
