package bot_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

func TestLifecycle_SubmitApproveActivateExpire(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.actor("alice"), e.actor("bob")
	r, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Duration: 2 * time.Hour, Reason: "fixing the outage"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bot.StatePending {
		t.Fatalf("state = %s, want pending", r.State)
	}
	e.clock.Advance(10 * time.Minute) // the approver takes ten minutes
	if _, err := e.eng.Approve(e.ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateActive || !e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatalf("after approval: state %s, holds=%v", got.State, e.holds("alice@example.com", "g-prod", bot.Member))
	}
	// The window counts from the actual start, not from submission.
	if want := e.clock.Now().Add(2 * time.Hour); !got.EndsAt.Equal(want) {
		t.Fatalf("ends at %s, want %s", got.EndsAt, want)
	}
	e.clock.Advance(2*time.Hour - time.Minute)
	e.drain()
	if !e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatal("removed a minute early")
	}
	e.clock.Advance(time.Minute)
	e.drain()
	got = e.get(r.ID)
	if got.State != bot.StateEnded || e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatalf("after the end: state %s, still holds=%v", got.State, e.holds("alice@example.com", "g-prod", bot.Member))
	}
	want := []string{bot.EvSubmitted, bot.EvApproved, bot.EvActivated, bot.EvReminder, bot.EvEnded}
	if ev := e.rec.types(r.ID); !slices.Equal(ev, want) {
		t.Fatalf("events %v, want %v", ev, want)
	}
}
