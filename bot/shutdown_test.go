package bot_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// On shutdown, a request's jobs that have not started are handed back to the queue at once
// (another replica takes them on its next claim) instead of waiting for their lease to run
// out; the job in flight finishes.
func TestRun_ShutdownHandsBackUnstartedJobs(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 10 * time.Minute})
	// The activation and the "submitted" notification are due now, in one group: the
	// activation runs first. Hold it in the directory and shut down meanwhile.
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	e.dir.SetFault(func(op, _, _ string) error {
		if op == "add" {
			once.Do(func() { close(started) })
			<-release
		}
		return nil
	})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { e.eng.Run(ctx); close(done) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the activation never started")
	}
	cancel()
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after shutdown")
	}
	if got := e.get(r.ID); got.State != bot.StateActive || !e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatalf("the job in flight did not finish: %s", got.State)
	}
	if got := e.rec.types(r.ID); len(got) != 0 {
		t.Fatalf("notifications ran after shutdown began: %v", got)
	}
	// The handed-back jobs are due now, not at the end of a 60 s lease.
	next, err := e.store.NextDue(e.ctx)
	if err != nil || next.IsZero() || next.After(e.clock.Now()) {
		t.Fatalf("next due %s (err %v), want at once (now %s)", next, err, e.clock.Now())
	}
	e.dir.SetFault(nil)
	e.drain()
	if got := e.rec.types(r.ID); countType(got, bot.EvSubmitted) != 1 || countType(got, bot.EvActivated) != 1 {
		t.Fatalf("after the hand-back: %v", got)
	}
}
