package bot_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
	"github.com/redis/go-redis/v9"
)

// counter counts Redis round trips (a pipeline is one).
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// The figures of the core: Redis round trips per step, asserted so they cannot regress.
func TestRoundTrips_SubmitApprovalExpiry(t *testing.T) {
	e := newEnv(t)
	rdb := storetest.Dedicated(t)
	// Load the scripts once so EVALSHA hits (as it does in a running process).
	warm := store.New(rdb, store.Options{Prefix: "warm-" + time.Now().Format("150405.000")})
	warm.Commit(e.ctx, &bot.Tx{})
	warm.Claim(e.ctx, time.Now(), 1, time.Second)
	c := &counter{}
	rdb.AddHook(c)
	s := store.New(rdb, store.Options{Prefix: storetest.Prefix(t)})
	eng := bot.New(bot.Config{Policy: e.pol, Store: s, Directory: e.dir, Clock: e.clock})
	measure := func(step string, want int64, f func()) {
		t.Helper()
		before := c.n.Load()
		f()
		if got := c.n.Load() - before; got != want {
			t.Errorf("%s: %d round trips, want %d", step, got, want)
		} else {
			t.Logf("%s: %d Redis round trip(s)", step, got)
		}
	}
	var r *bot.Request
	measure("submit", 1, func() {
		var err error
		if r, err = eng.Submit(e.ctx, e.actor("alice"), bot.SubmitInput{Group: "prod-db-admins", Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	})
	measure("approve (read + atomic write)", 2, func() {
		if _, err := eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
			t.Fatal(err)
		}
	})
	// No notifier here: notifications are jobs of their own, claimed and acknowledged in batches.
	// Activation and expiry each commit their intent (fenced by the claim) before the
	// directory call, and the outcome after it: a crash or a stalled replica between the two
	// leaves a record that says what may be held.
	measure("activation (one claim per batch + intent and outcome commits per grant)", 3, func() {
		if _, err := eng.RunDue(e.ctx); err != nil {
			t.Fatal(err)
		}
	})
	e.clock.Advance(50 * time.Minute)
	measure("reminder (one claim per batch + one commit)", 2, func() { eng.RunDue(e.ctx) })
	e.clock.Advance(10 * time.Minute)
	measure("expiry (one claim per batch + intent and outcome commits per grant)", 3, func() { eng.RunDue(e.ctx) })
	if got, _ := s.Get(e.ctx, r.ID); got.State != bot.StateEnded {
		t.Fatalf("state %s", got.State)
	}
}
