package bot_test

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

var errDown = errors.New("directory answered 503")

func TestRemovalNeverDropped_RetriesAlertsAndLands(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 10 * time.Minute})
	e.drain()
	var down atomic.Bool
	down.Store(true)
	e.dir.SetFault(func(op, _, _ string) error {
		if op == "remove" && down.Load() {
			return errDown
		}
		return nil
	})
	e.clock.Advance(10 * time.Minute)
	// Keep failing for ten attempts with growing backoff: the grant stays and is retried.
	for i := 0; i < 10; i++ {
		e.drain()
		next, _ := e.store.NextDue(e.ctx)
		if next.IsZero() {
			t.Fatal("the removal job was dropped")
		}
		e.clock.Advance(next.Sub(e.clock.Now()))
	}
	got := e.get(r.ID)
	if got.State != bot.StateActive || !e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatalf("state %s", got.State)
	}
	if got.Failures < bot.AlertAfter || got.LastError == "" {
		t.Fatalf("failures %d, last error %q", got.Failures, got.LastError)
	}
	if n := countType(e.rec.types(r.ID), bot.EvRemovalFailing); n < 1 {
		t.Fatal("nobody was alerted")
	}
	down.Store(false)
	next, _ := e.store.NextDue(e.ctx)
	e.clock.Advance(next.Sub(e.clock.Now()))
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateEnded || e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatalf("after recovery: %s", got.State)
	}
}

func countType(xs []string, t string) int {
	n := 0
	for _, x := range xs {
		if x == t {
			n++
		}
	}
	return n
}

func TestActivation_DelayedWhileDirectoryDown_ThenGranted(t *testing.T) {
	e := newEnv(t)
	var down atomic.Bool
	down.Store(true)
	e.dir.SetFault(func(op, _, _ string) error {
		if down.Load() {
			return errDown
		}
		return nil
	})
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 10 * time.Minute})
	for i := 0; i < 3; i++ {
		e.drain()
		next, _ := e.store.NextDue(e.ctx)
		e.clock.Advance(next.Sub(e.clock.Now()))
	}
	if got := e.get(r.ID); got.State != bot.StateScheduled {
		t.Fatalf("state %s", got.State)
	}
	if countType(e.rec.types(r.ID), bot.EvDelayed) != 1 {
		t.Fatalf("requester not told of the delay once: %v", e.rec.types(r.ID))
	}
	down.Store(false)
	next, _ := e.store.NextDue(e.ctx)
	e.clock.Advance(next.Sub(e.clock.Now()))
	activatedAt := e.clock.Now()
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateActive || !got.EndsAt.Equal(activatedAt.Add(10*time.Minute)) {
		t.Fatalf("state %s ends %s (window must count from the real start %s)", got.State, got.EndsAt, activatedAt)
	}
}

func TestActivation_PermanentRefusalFailsTheRequest(t *testing.T) {
	e := newEnv(t)
	e.dir.SetFault(func(op, group, _ string) error {
		return fmt.Errorf("group %s is role-assignable and the app lacks RoleManagement.ReadWrite.Directory: %w", group, bot.ErrForbidden)
	})
	r := e.submit("alice", "sandbox", bot.SubmitInput{})
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateFailed || got.LastError == "" {
		t.Fatalf("state %s error %q", got.State, got.LastError)
	}
	if !slices.Contains(e.rec.types(r.ID), bot.EvFailed) {
		t.Fatal("nobody told")
	}
	e.dir.SetFault(nil)
	e.submit("alice", "sandbox", bot.SubmitInput{}) // the slot is free again
}

// A worker adds the grant, then dies before recording it: the lease runs out, another
// worker re-runs the job, the add is idempotent and the removal is scheduled.
func TestCrashAfterAdd_LeaseExpiryRecovers(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 10 * time.Minute})
	claimed, err := e.store.Claim(e.ctx, e.clock.Now(), 10, bot.JobLease)
	if err != nil || len(claimed) == 0 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	// The "crashed" worker recorded its intent, did the add and nothing else.
	crashAfterAdd(t, e, claimed[0], r)
	e.drain() // nothing is due: the job is leased
	if e.get(r.ID).State != bot.StateScheduled {
		t.Fatal("ran a leased job")
	}
	e.clock.Advance(bot.JobLease)
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateActive {
		t.Fatalf("state %s after lease expiry", got.State)
	}
	e.clock.Advance(10 * time.Minute)
	e.drain()
	if e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatal("grant leaked after a crash")
	}
}

// crashAfterAdd does what a worker does before its add, then the add, and dies: the intent
// to add is committed under the claim, and the directory holds the grant.
func crashAfterAdd(t *testing.T, e *env, c bot.Claimed, r *bot.Request) {
	t.Helper()
	cur := e.get(r.ID)
	next := cur.Clone()
	next.Grant, next.AddedAt = bot.GrantAdding, e.clock.Now()
	l := c.Lease()
	if err := e.store.Commit(e.ctx, &bot.Tx{Puts: []bot.Put{{Request: next, Expect: cur.Version}}, Fence: &l}); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.Add(e.ctx, r.GroupID, r.Requester.ID, r.Access); err != nil {
		t.Fatal(err)
	}
}

// A cancel that lands while the activation is in flight never leaves a grant behind.
func TestCancelDuringActivation_NoGrantLeft(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "sandbox", bot.SubmitInput{Start: e.clock.Now()})
	claimed, _ := e.store.Claim(e.ctx, e.clock.Now(), 10, bot.JobLease)
	if len(claimed) == 0 {
		t.Fatal("nothing claimed")
	}
	crashAfterAdd(t, e, claimed[0], r) // in flight...
	if _, err := e.eng.Cancel(e.ctx, e.actor("alice"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(bot.JobLease) // ...and the worker dies
	e.drain()
	if e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatal("a canceled request left a grant")
	}
	e.submit("alice", "sandbox", bot.SubmitInput{}) // and the slot is free
}

// throttled is a directory error that says when to come back, as Graph's 429 does.
type throttled struct{ after time.Duration }

func (t throttled) Error() string {
	return fmt.Sprintf("429 Too Many Requests, retry after %s", t.after)
}
func (t throttled) RetryDelay() time.Duration { return t.after }

func TestRetry_HonoursTheDirectorysRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		want  time.Duration
	}{
		{"longer than the backoff", 90 * time.Second, 90 * time.Second},
		{"shorter than the backoff", 500 * time.Millisecond, bot.Backoff(1)},
		{"beyond the longest backoff", time.Hour, bot.Backoff(99)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 10 * time.Minute})
			e.drain()
			e.dir.SetFault(func(op, _, _ string) error {
				if op == "remove" {
					return fmt.Errorf("remove: %w", throttled{tc.after})
				}
				return nil
			})
			e.clock.Advance(10 * time.Minute)
			failedAt := e.clock.Now()
			e.drain()
			next, _ := e.store.NextDue(e.ctx)
			if got := next.Sub(failedAt); got != tc.want {
				t.Fatalf("the removal is retried after %s, want %s", got, tc.want)
			}
			e.dir.SetFault(nil)
			e.clock.Advance(tc.want)
			e.drain()
			if got := e.get(r.ID); got.State != bot.StateEnded {
				t.Fatalf("after the wait: %s", got.State)
			}
		})
	}
}
