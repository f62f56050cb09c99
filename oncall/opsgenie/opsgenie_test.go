package opsgenie_test

// These tests do not run in parallel: building an SDK client writes a package variable of the
// SDK (its User-Agent) that requests in flight read.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/oncall/opsgenie"
	"github.com/pimbot/pimbot/oncall/opsgenie/opsgeniefake"
)

const (
	apiKey = "0a1b2c3d-og-secret-key-9999"
	dbID   = "8f2d6c1e-4b7a-4c2d-9e1f-0a1b2c3d4e5f"
)

var now = time.Now().UTC().Truncate(time.Second)

type world struct {
	fake *opsgeniefake.Server
	p    *opsgenie.Provider
}

// newWorld: alice is on call for "DB primary" until now+6h, then bob; carol is on call for
// "Web" from 30 s from now.
func newWorld(t *testing.T) *world {
	t.Helper()
	fake := opsgeniefake.New(t, apiKey)
	fake.AddSchedule(opsgeniefake.Schedule{ID: dbID, Name: "DB primary"})
	fake.AddSchedule(opsgeniefake.Schedule{ID: "1c2d3e4f-0000-4000-8000-000000000002", Name: "Web"})
	fake.AddShift(opsgeniefake.Shift{ScheduleID: dbID, Username: "alice@example.com", Start: now.Add(-2 * time.Hour), End: now.Add(6 * time.Hour)})
	fake.AddShift(opsgeniefake.Shift{ScheduleID: dbID, Username: "bob@example.com", Start: now.Add(6 * time.Hour), End: now.Add(30 * time.Hour)})
	fake.AddShift(opsgeniefake.Shift{ScheduleID: "1c2d3e4f-0000-4000-8000-000000000002", Username: "carol@example.com",
		Start: now.Add(30 * time.Second)})
	return &world{fake: fake, p: provider(t, fake, apiKey)}
}

func provider(t *testing.T, fake *opsgeniefake.Server, key string) *opsgenie.Provider {
	t.Helper()
	p, err := opsgenie.New(opsgenie.Options{APIKey: key, BaseURL: fake.URL(), HTTPClient: &http.Client{Timeout: 5 * time.Second},
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

func query(email string, schedules ...string) bot.OnCallQuery {
	return bot.OnCallQuery{Source: bot.OnCallSource{Provider: bot.OnCallOpsgenie, Schedules: schedules},
		Person: bot.User{ID: "u1", Email: email}, At: now}
}

func TestOnCallAnswers(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name string
		q    bot.OnCallQuery
		want bot.OnCallAnswer
	}{
		{"on call, schedule by name, e-mail in any case", query("Alice@Example.COM", "DB primary"),
			bot.OnCallAnswer{OnCall: true, Via: `Opsgenie schedule "DB primary"`}},
		{"on call, schedule by id", query("alice@example.com", dbID),
			bot.OnCallAnswer{OnCall: true, Via: `Opsgenie schedule "DB primary"`}},
		{"matched by UPN", bot.OnCallQuery{Source: bot.OnCallSource{Schedules: []string{"DB primary"}},
			Person: bot.User{Email: "a.admin@corp.example", UPN: "alice@example.com"}, At: now},
			bot.OnCallAnswer{OnCall: true, Via: `Opsgenie schedule "DB primary"`}},
		{"the next shift is not on call yet", query("bob@example.com", "DB primary"),
			bot.OnCallAnswer{Why: `not on call for Opsgenie schedule "DB primary"`}},
		{"on call at a later moment", bot.OnCallQuery{Source: bot.OnCallSource{Schedules: []string{"DB primary"}},
			Person: bot.User{Email: "bob@example.com"}, At: now.Add(7 * time.Hour).In(time.FixedZone("CEST", 2*3600))},
			bot.OnCallAnswer{OnCall: true, Via: `Opsgenie schedule "DB primary"`}},
		{"not on call for either schedule", query("carol@example.com", "DB primary", "Web"),
			bot.OnCallAnswer{Why: `not on call for Opsgenie schedule "DB primary" or Opsgenie schedule "Web"`}},
		{"require_incident is PagerDuty's",
			bot.OnCallQuery{Source: bot.OnCallSource{Schedules: []string{"DB primary"}}, Person: bot.User{Email: "alice@example.com"},
				At: now, RequireIncident: true},
			bot.OnCallAnswer{Why: "require_incident needs a PagerDuty service"}},
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

func TestNowListsThePeopleOnCall(t *testing.T) {
	w := newWorld(t)
	got, err := w.p.Now(ctxFor(t, 5*time.Second), bot.OnCallSource{Schedules: []string{"DB primary", "Web"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d shifts, want 2: %+v", len(got), got)
	}
	if s := got[0]; s.Rota != `Opsgenie schedule "DB primary" (`+dbID+`)` || strings.Join(s.People, ",") != "alice@example.com" ||
		!s.Until.Equal(now.Add(6*time.Hour)) {
		t.Errorf("DB primary = %+v", s)
	}
	if s := got[1]; s.Rota != `Opsgenie schedule "Web" (1c2d3e4f-0000-4000-8000-000000000002)` || len(s.People) != 0 || !s.Until.IsZero() {
		t.Errorf("Web = %+v", s)
	}
}

func TestRefusals(t *testing.T) {
	w := newWorld(t)
	bad := provider(t, w.fake, "wrong-key")
	tests := []struct {
		name     string
		run      func(ctx context.Context) error
		kind     error
		contains string
	}{
		{"a bad key is forbidden", func(ctx context.Context) error {
			_, err := bad.OnCall(ctx, query("alice@example.com", "DB primary"))
			return err
		}, bot.ErrForbidden, "Opsgenie refused the API key (OPSGENIE_API_KEY)"},
		{"Now with a bad key is forbidden", func(ctx context.Context) error {
			_, err := bad.Now(ctx, bot.OnCallSource{Schedules: []string{"DB primary"}})
			return err
		}, bot.ErrForbidden, "Opsgenie refused the API key (OPSGENIE_API_KEY)"},
		{"an unknown schedule is not found", func(ctx context.Context) error {
			_, err := w.p.OnCall(ctx, query("alice@example.com", "DB secondary"))
			return err
		}, bot.ErrNotFound, `Opsgenie schedule "DB secondary" does not exist`},
		{"Now with an unknown schedule id is not found", func(ctx context.Context) error {
			_, err := w.p.Now(ctx, bot.OnCallSource{Schedules: []string{"00000000-0000-4000-8000-000000000000"}})
			return err
		}, bot.ErrNotFound, `Opsgenie schedule "00000000-0000-4000-8000-000000000000" does not exist`},
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
			if strings.Contains(err.Error(), apiKey) || strings.Contains(err.Error(), "wrong-key") {
				t.Errorf("the key is in the error: %q", err)
			}
		})
	}
}

func TestServerErrorIsTemporaryAndNotRetriedBySDK(t *testing.T) {
	for _, status := range []int{500, 503} {
		w := newWorld(t)
		w.fake.Fail(1, status)
		start := time.Now()
		_, err := w.p.OnCall(ctxFor(t, 5*time.Second), query("alice@example.com", "DB primary"))
		if !errors.Is(err, bot.ErrUnavailable) || errors.Is(err, bot.ErrForbidden) || errors.Is(err, bot.ErrNotFound) {
			t.Fatalf("%d: err = %v, want a temporary error only", status, err)
		}
		if strings.Contains(err.Error(), apiKey) {
			t.Errorf("the key is in the error: %q", err)
		}
		if n := w.fake.Calls(); n != 1 {
			t.Errorf("%d: %d calls; the SDK's own retries are off", status, n)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("%d: took %s", status, took)
		}
	}
}

func TestRateLimitedCallWaitsAndRetriesOnce(t *testing.T) {
	w := newWorld(t)
	w.fake.RateLimit(1, time.Second)
	start := time.Now()
	got, err := w.p.OnCall(ctxFor(t, 5*time.Second), query("alice@example.com", "DB primary"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.OnCall {
		t.Errorf("got %+v, want on call", got)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("answered after %s, before the 1 s Retry-After", waited)
	}
	if n := w.fake.Calls(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestRateLimitPastTheDeadlineFailsAtOnce(t *testing.T) {
	w := newWorld(t)
	w.fake.RateLimit(1, 5*time.Second)
	start := time.Now()
	_, err := w.p.OnCall(ctxFor(t, 2*time.Second), query("alice@example.com", "DB primary"))
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

func TestDeadlineIsHonoured(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := w.p.OnCall(ctx, query("alice@example.com", "DB primary"))
	if !errors.Is(err, bot.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want temporary and canceled", err)
	}
}

func TestNewChecksItsOptions(t *testing.T) {
	for _, tc := range []struct {
		o    opsgenie.Options
		want string
	}{
		{opsgenie.Options{}, "OPSGENIE_API_KEY"},
		{opsgenie.Options{APIKey: "k", Region: "apac"}, "OPSGENIE_REGION"},
		{opsgenie.Options{APIKey: "k", BaseURL: "api.opsgenie.com"}, "OPSGENIE_URL"},
	} {
		if _, err := opsgenie.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.o, err, tc.want)
		}
	}
	if _, err := opsgenie.New(opsgenie.Options{APIKey: "k", Region: "EU"}); err != nil {
		t.Errorf("region EU: %v", err)
	}
}

// An https BaseURL whose host has no "api" in it still gets https (the SDK alone would send the
// key over http to such a host), and its path prefix is kept.
func TestBaseURLSchemeAndPathAreKept(t *testing.T) {
	w := newWorld(t)
	target, _ := url.Parse(w.fake.URL())
	proxy := httputil.NewSingleHostReverseProxy(target)
	var sawPath string
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sawPath = r.URL.Path
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/opsgenie")
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(tlsSrv.Close)
	hc := tlsSrv.Client()
	hc.Timeout = 5 * time.Second
	p, err := opsgenie.New(opsgenie.Options{APIKey: apiKey, BaseURL: tlsSrv.URL + "/opsgenie/", HTTPClient: hc, Clock: fixedClock{now}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.OnCall(ctxFor(t, 5*time.Second), query("alice@example.com", "DB primary"))
	if err != nil || !got.OnCall {
		t.Fatalf("got %+v, %v", got, err)
	}
	if sawPath != "/opsgenie/v2/schedules/DB primary/on-calls" {
		t.Errorf("the TLS server saw path %q", sawPath)
	}
}
