package bot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store/storetest"
)

// waitErr is a platform's "wait this long" (a 429 with Retry-After).
type waitErr struct{ d time.Duration }

func (e *waitErr) Error() string             { return fmt.Sprintf("429, retry after %s", e.d) }
func (e *waitErr) RetryAfter() time.Duration { return e.d }

// scripted is a surface whose answers tests set per event type: the errors it returns on
// its next calls, in order, then success. It records what it delivered, in order.
type scripted struct {
	mu        sync.Mutex
	errs      map[string][]error
	calls     map[string]int
	delivered []bot.Event
}

func newScripted() *scripted {
	return &scripted{errs: map[string][]error{}, calls: map[string]int{}}
}

func (s *scripted) Name() string { return "scripted" }

func (s *scripted) Notify(_ context.Context, ev bot.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[ev.Type]++
	if q := s.errs[ev.Type]; len(q) > 0 {
		s.errs[ev.Type] = q[1:]
		return q[0]
	}
	s.delivered = append(s.delivered, ev)
	return nil
}

func (s *scripted) fail(evType string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[evType] = append(s.errs[evType], errs...)
}

func (s *scripted) got(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range s.delivered {
		if ev.Request.ID == id || ev.Request.ParentID == id {
			out = append(out, ev.Type)
		}
	}
	return out
}

func (s *scripted) tries(evType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[evType]
}

type deliveryEnv struct {
	*env
	sur         *scripted
	undelivered []string
	mu          sync.Mutex
}

func newDeliveryEnv(t *testing.T) *deliveryEnv {
	t.Helper()
	pol, err := policyfile.Parse("test.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	d := &deliveryEnv{sur: newScripted()}
	d.env = &env{t: t, ctx: context.Background(), pol: pol, store: storetest.New(t), dir: local.New(pol),
		clock: &fakeClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}, rec: &recorder{}}
	d.eng = bot.New(bot.Config{Policy: pol, Store: d.store, Directory: d.dir, Clock: d.clock,
		Notifiers: []bot.Notifier{d.sur}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hooks: bot.Hooks{Undelivered: func(notifier, event string) {
			d.mu.Lock()
			d.undelivered = append(d.undelivered, notifier+"/"+event)
			d.mu.Unlock()
		}}})
	return d
}

func (d *deliveryEnv) submit() *bot.Request {
	d.t.Helper()
	r, err := d.eng.Submit(d.ctx, d.actor("alice@example.com"), bot.SubmitInput{Group: "prod-db-admins", Reason: "delivery", Duration: time.Hour})
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

func (d *deliveryEnv) hooked() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.undelivered...)
}

func TestRetryAfter_FindsTheWaitAnywhereInTheChain(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want time.Duration
		ok   bool
	}{
		"wrapped":          {fmt.Errorf("post: %w", &waitErr{3 * time.Second}), 3 * time.Second, true},
		"joined":           {errors.Join(errors.New("dm: timeout"), fmt.Errorf("channel: %w", &waitErr{time.Minute})), time.Minute, true},
		"marked permanent": {bot.Undeliverable(&waitErr{time.Second}), time.Second, true},
		"none":             {errors.New("timeout"), 0, false},
		"zero wait":        {&waitErr{0}, 0, false},
		"nil":              {nil, 0, false},
	} {
		t.Run(name, func(t *testing.T) {
			got, ok := bot.RetryAfter(tc.err)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("RetryAfter(%v) = %s, %v; want %s, %v", tc.err, got, ok, tc.want, tc.ok)
			}
		})
	}
	if !errors.Is(bot.Undeliverable(errors.New("channel_not_found")), bot.ErrUndeliverable) {
		t.Fatal("an Undeliverable error is not ErrUndeliverable")
	}
}

// Given a surface that fails the approval request more often than the old budget of six
// attempts, when the queue keeps running, then the request is still delivered, once.
func TestNotify_ThatMattersIsRetriedUntilDelivered(t *testing.T) {
	d := newDeliveryEnv(t)
	var errs []error
	for i := 0; i < 2*bot.NotifyAttempts; i++ {
		errs = append(errs, errors.New("i/o timeout"))
	}
	d.sur.fail(bot.EvSubmitted, errs...)
	r := d.submit()
	for i := 0; i < 3*bot.NotifyAttempts && len(d.sur.got(r.ID)) == 0; i++ {
		d.drain()
		d.clock.Advance(5 * time.Minute)
	}
	if got := d.sur.got(r.ID); !slices.Equal(got, []string{bot.EvSubmitted}) {
		t.Fatalf("delivered %v after %d tries; want the approval request once", got, d.sur.tries(bot.EvSubmitted))
	}
	if n := d.sur.tries(bot.EvSubmitted); n != 2*bot.NotifyAttempts+1 {
		t.Fatalf("%d tries, want %d", n, 2*bot.NotifyAttempts+1)
	}
	if h := d.hooked(); len(h) != 0 {
		t.Fatalf("reported undelivered: %v", h)
	}
}

// Given a surface that answers "wait 90 s", then the notification is not tried again before
// 90 s (the backoff would have said 2 s), and is tried soon after.
func TestNotify_WaitsTheRetryAfter(t *testing.T) {
	d := newDeliveryEnv(t)
	d.sur.fail(bot.EvSubmitted, fmt.Errorf("slack: %w", &waitErr{90 * time.Second}))
	r := d.submit()
	d.drain()
	d.clock.Advance(89 * time.Second)
	d.drain()
	if n := d.sur.tries(bot.EvSubmitted); n != 1 {
		t.Fatalf("tried %d times within the Retry-After", n)
	}
	d.clock.Advance(10 * time.Second) // 99 s: past 90 s plus at most 10% jitter
	d.drain()
	if got := d.sur.got(r.ID); !slices.Equal(got, []string{bot.EvSubmitted}) {
		t.Fatalf("after the Retry-After: delivered %v", got)
	}
}

// Given a surface that refuses for good, then the job stops at once, and someone is told:
// the hook, the audit trail, and an announcement the audit channels hear.
func TestNotify_PermanentRefusalStopsAndTells(t *testing.T) {
	d := newDeliveryEnv(t)
	d.sur.fail(bot.EvSubmitted, fmt.Errorf("post: %w", bot.Undeliverable(errors.New("channel_not_found"))))
	r := d.submit()
	d.drain()
	d.clock.Advance(time.Hour)
	d.drain()
	if n := d.sur.tries(bot.EvSubmitted); n != 1 {
		t.Fatalf("tried %d times; a permanent refusal is not retried", n)
	}
	if h := d.hooked(); !slices.Equal(h, []string{"scripted/" + bot.EvSubmitted}) {
		t.Fatalf("Undelivered hook calls %v", h)
	}
	if got := d.sur.got(r.ID); !slices.Equal(got, []string{bot.EvUndelivered}) {
		t.Fatalf("announced %v; want the undelivered notice (its ParentID is the request)", got)
	}
	recs, err := d.store.AuditSince(d.ctx, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range recs {
		found = found || (a.Type == bot.EvUndelivered && a.RequestID == r.ID && a.Surface == "scripted")
	}
	if !found {
		t.Fatalf("no %s audit record for %s: %+v", bot.EvUndelivered, r.ID, recs)
	}
	line, ok := bot.AuditLine(bot.Event{Type: bot.EvUndelivered, Request: &bot.Request{ID: "x"}, At: d.clock.Now(), Detail: "scripted could not tell"}, nil)
	if !ok || line == "" {
		t.Fatal("the undelivered notice has no audit line")
	}
}

// A failure that is part permanent, part transient is retried (the rest may still go out),
// and the permanent part is reported.
func TestNotify_PartlyPermanentIsRetried(t *testing.T) {
	d := newDeliveryEnv(t)
	d.sur.fail(bot.EvSubmitted, errors.Join(bot.Undeliverable(errors.New("not_in_channel")), errors.New("dm: timeout")))
	r := d.submit()
	d.drain()
	d.clock.Advance(bot.Backoff(1) + time.Second)
	d.drain()
	if got := d.sur.got(r.ID); !slices.Contains(got, bot.EvSubmitted) {
		t.Fatalf("not retried: %v", got)
	}
	if h := d.hooked(); len(h) != 1 {
		t.Fatalf("Undelivered hook calls %v, want one", h)
	}
}

// Given "approved" failing for a while, when the grant starts meanwhile, then "activated"
// waits for "approved": people hear them in the order they happened.
func TestNotify_InOrderAcrossRetries(t *testing.T) {
	d := newDeliveryEnv(t)
	r := d.submit()
	d.drain()
	d.sur.fail(bot.EvApproved, errors.New("timeout"), errors.New("timeout"))
	if _, err := d.eng.Approve(d.ctx, d.actor("bob@example.com"), r.ID); err != nil {
		t.Fatal(err)
	}
	d.drain() // approved fails (retried at +2 s); the grant starts; activated is held back
	if got := d.sur.got(r.ID); !slices.Equal(got, []string{bot.EvSubmitted}) {
		t.Fatalf("delivered %v while approved was failing; want only submitted", got)
	}
	if d.get(r.ID).State != bot.StateActive {
		t.Fatalf("the grant did not start: %s", d.get(r.ID).State)
	}
	for i := 0; i < 10; i++ {
		d.clock.Advance(5 * time.Second)
		d.drain()
	}
	got := d.sur.got(r.ID)
	if !slices.Equal(got, []string{bot.EvSubmitted, bot.EvApproved, bot.EvActivated}) {
		t.Fatalf("delivered %v; want submitted, approved, activated", got)
	}
}

// Given one replica holding the claim of "submitted" (it stalls), when another replica
// claims "approved", then it holds it back until the first one is done.
func TestNotify_InOrderAcrossReplicas(t *testing.T) {
	d := newDeliveryEnv(t)
	r := d.submit()
	first, err := d.store.Claim(d.ctx, d.clock.Now(), 10, time.Minute)
	if err != nil || len(first) != 1 || first[0].Job.Event.Type != bot.EvSubmitted {
		t.Fatalf("claim: %v %+v", err, first)
	}
	if _, err := d.eng.Approve(d.ctx, d.actor("bob@example.com"), r.ID); err != nil {
		t.Fatal(err)
	}
	other := bot.New(bot.Config{Policy: d.pol, Store: d.store, Directory: d.dir, Clock: d.clock,
		Notifiers: []bot.Notifier{d.sur}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if _, err := other.RunDue(d.ctx); err != nil {
		t.Fatal(err)
	}
	if got := d.sur.got(r.ID); len(got) != 0 {
		t.Fatalf("the second replica delivered %v while the first still held submitted", got)
	}
	d.eng.RunClaimed(d.ctx, first)
	for i := 0; i < 5; i++ {
		d.clock.Advance(time.Second)
		if _, err := other.RunDue(d.ctx); err != nil {
			t.Fatal(err)
		}
	}
	got := d.sur.got(r.ID)
	if len(got) < 2 || got[0] != bot.EvSubmitted || got[1] != bot.EvApproved {
		t.Fatalf("delivered %v; want submitted, then approved", got)
	}
}

// An MFA link that cannot be delivered stops being retried once the request no longer waits
// for MFA (it was canceled): nobody needs it any more.
func TestNotify_StopsWhenTheMomentPassed(t *testing.T) {
	d := newDeliveryEnv(t)
	d.sur.fail(bot.EvSubmitted, errors.New("timeout"))
	r := d.submit()
	d.drain()
	if _, err := d.eng.Cancel(d.ctx, d.actor("alice@example.com"), r.ID); err != nil {
		t.Fatal(err)
	}
	d.sur.fail(bot.EvSubmitted, errors.New("timeout"))
	d.clock.Advance(bot.Backoff(1) + time.Second)
	d.drain()
	d.clock.Advance(time.Hour)
	d.drain()
	if n := d.sur.tries(bot.EvSubmitted); n != 2 {
		t.Fatalf("the approval request of a canceled request was tried %d times; want 2 (then given up)", n)
	}
	if got := d.sur.got(r.ID); !slices.Contains(got, bot.EvCanceled) {
		t.Fatalf("canceled not delivered after the approval request was given up: %v", got)
	}
}
