package bot_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

func (e *env) submit(who, group string, in bot.SubmitInput) *bot.Request {
	e.t.Helper()
	in.Group = group
	if in.Reason == "" {
		in.Reason = "testing"
	}
	r, err := e.eng.Submit(e.ctx, e.actor(who), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func TestApprove_OnlyApproversAndNeverSelf(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	var pe *bot.PermissionError
	_, err := e.eng.Approve(e.ctx, e.actor("mallory"), r.ID)
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "only bob@example.com or carol@example.com may approve requests for prod-db-admins") {
		t.Fatalf("mallory: %v", err)
	}
	_, err = e.eng.Deny(e.ctx, e.actor("erin"), r.ID, "no")
	if !errors.As(err, &pe) {
		t.Fatalf("erin deny: %v", err)
	}
	if got := e.get(r.ID); got.State != bot.StatePending || got.Version != 1 {
		t.Fatalf("refused decisions changed the request: %s v%d", got.State, got.Version)
	}
	// Self-approval: bob is an approver of "self" and eligible for it.
	s := e.submit("bob", "self", bot.SubmitInput{})
	_, err = e.eng.Approve(e.ctx, e.actor("bob"), s.ID)
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "it is your own request") {
		t.Fatalf("self approval: %v", err)
	}
	ok := e.submit("bob", "selfok", bot.SubmitInput{})
	if got, err := e.eng.Approve(e.ctx, e.actor("bob"), ok.ID); err != nil || got.State != bot.StateScheduled {
		t.Fatalf("allowed self approval: %v %v", got, err)
	}
}

func TestApprove_SecondClickChangesNothing(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
		t.Fatal(err)
	}
	var se *bot.StateError
	for _, who := range []string{"bob", "carol"} {
		if _, err := e.eng.Approve(e.ctx, e.actor(who), r.ID); !errors.As(err, &se) || se.State != bot.StateScheduled {
			t.Fatalf("%s second approve: %v", who, err)
		}
		if _, err := e.eng.Deny(e.ctx, e.actor(who), r.ID, "late"); !errors.As(err, &se) {
			t.Fatalf("%s late deny: %v", who, err)
		}
	}
	if got := e.get(r.ID); got.Version != 2 || len(got.Approvals) != 1 {
		t.Fatalf("version %d approvals %d", got.Version, len(got.Approvals))
	}
	if bot.Describe(se) != "Request "+r.ID+" is scheduled; it can no longer be denied." {
		t.Fatalf("words: %q", bot.Describe(se))
	}
}

func TestApprove_QuorumCountsDistinctApprovers(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "quorum", bot.SubmitInput{})
	got, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID)
	if err != nil || got.State != bot.StatePending || len(got.Approvals) != 1 {
		t.Fatalf("first vote: %v %v", got, err)
	}
	var pe *bot.PermissionError
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "you already approved it; it needs 1 more") {
		t.Fatalf("bob twice: %v", err)
	}
	got, err = e.eng.Approve(e.ctx, e.actor("carol"), r.ID)
	if err != nil || got.State != bot.StateScheduled {
		t.Fatalf("second vote: %v %v", got, err)
	}
	e.drain()
	if !slices.Equal(e.rec.types(r.ID), []string{bot.EvSubmitted, bot.EvApprovalAdded, bot.EvApproved, bot.EvActivated}) {
		t.Fatalf("events %v", e.rec.types(r.ID))
	}
	// Bob asks for quorum himself: he cannot be one of his own two approvers.
	b := e.submit("bob", "quorum", bot.SubmitInput{})
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), b.ID); !errors.As(err, &pe) {
		t.Fatalf("bob self-votes: %v", err)
	}
}

// 50 goroutines approve and deny one request at once: exactly one outcome, one activation.
func TestDecide_ConcurrentClicksGiveOneOutcome(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[string]int{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			who := []string{"bob", "carol"}[i%2]
			var err error
			action := "approve"
			if i%3 == 0 {
				action = "deny"
				_, err = e.eng.Deny(e.ctx, e.actor(who), r.ID, "race")
			} else {
				_, err = e.eng.Approve(e.ctx, e.actor(who), r.ID)
			}
			var se *bot.StateError
			if err != nil && !errors.As(err, &se) {
				t.Errorf("unexpected error: %v", err)
			}
			if err == nil {
				mu.Lock()
				wins[action]++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if wins["approve"]+wins["deny"] != 1 {
		t.Fatalf("outcomes: %v, want exactly one", wins)
	}
	e.drain()
	got := e.get(r.ID)
	adds := 0
	for _, op := range e.dir.Ops() {
		if op.Op == "add" {
			adds++
		}
	}
	if wins["approve"] == 1 && (got.State != bot.StateActive || adds != 1) {
		t.Fatalf("approved: state %s, %d adds", got.State, adds)
	}
	if wins["deny"] == 1 && (got.State != bot.StateDenied || adds != 0) {
		t.Fatalf("denied: state %s, %d adds", got.State, adds)
	}
}

func TestDeny_TellsTheReasonAndFreesTheSlot(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	got, err := e.eng.Deny(e.ctx, e.actor("carol"), r.ID, "use the read replica")
	if err != nil || got.State != bot.StateDenied || got.DenyReason != "use the read replica" || got.Denial.By.Email != "carol@example.com" {
		t.Fatalf("%+v %v", got, err)
	}
	e.drain()
	if ev := e.rec.types(r.ID); !slices.Equal(ev, []string{bot.EvSubmitted, bot.EvDenied}) {
		t.Fatalf("events %v", ev)
	}
	e.submit("alice", "prod-db-admins", bot.SubmitInput{}) // the open slot was released
	if ttl := e.store.Client().TTL(e.ctx, keyOf(e, r.ID)).Val(); ttl <= 0 || ttl > 31*24*time.Hour {
		t.Fatalf("a finished record must expire after the retention; TTL = %s", ttl)
	}
}

func keyOf(e *env, id string) string {
	keys, _ := e.store.Client().Keys(e.ctx, "*:req:"+id).Result()
	if len(keys) != 1 {
		e.t.Fatalf("keys for %s: %v", id, keys)
	}
	return keys[0]
}

func TestCancel_OnlyRequesterWhilePendingOrScheduled(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	var pe *bot.PermissionError
	if _, err := e.eng.Cancel(e.ctx, e.actor("bob"), r.ID); !errors.As(err, &pe) {
		t.Fatalf("bob cancels alice's: %v", err)
	}
	if got, err := e.eng.Cancel(e.ctx, e.actor("alice"), r.ID); err != nil || got.State != bot.StateCanceled {
		t.Fatalf("%v %v", got, err)
	}
	var se *bot.StateError
	if _, err := e.eng.Cancel(e.ctx, e.actor("alice"), r.ID); !errors.As(err, &se) {
		t.Fatalf("second cancel: %v", err)
	}
	// Scheduled for later, then canceled: nothing is ever granted.
	s := e.submit("alice", "sandbox", bot.SubmitInput{Start: e.clock.Now().Add(time.Hour)})
	if _, err := e.eng.Cancel(e.ctx, e.actor("alice"), s.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	e.drain()
	if e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatal("a canceled request was granted")
	}
	// Active: cancel says to deactivate.
	a := e.submit("alice", "sandbox", bot.SubmitInput{})
	e.drain()
	if _, err := e.eng.Cancel(e.ctx, e.actor("alice"), a.ID); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "deactivate it instead") {
		t.Fatalf("cancel active: %v", err)
	}
}

func TestDeactivate_RequesterOrApproverRemovesAtOnce(t *testing.T) {
	for _, who := range []string{"alice", "carol"} {
		t.Run(who, func(t *testing.T) {
			e := newEnv(t)
			r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
			if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
				t.Fatal(err)
			}
			e.drain()
			var pe *bot.PermissionError
			if _, err := e.eng.Deactivate(e.ctx, e.actor("mallory"), r.ID); !errors.As(err, &pe) {
				t.Fatalf("mallory deactivates: %v", err)
			}
			if _, err := e.eng.Deactivate(e.ctx, e.actor(who), r.ID); err != nil {
				t.Fatal(err)
			}
			e.drain()
			got := e.get(r.ID)
			if got.State != bot.StateEnded || e.holds("alice@example.com", "g-prod", bot.Member) || !strings.Contains(got.EndReason, "deactivated by "+who) {
				t.Fatalf("state %s reason %q", got.State, got.EndReason)
			}
		})
	}
}

func TestCustomStart_WindowCountsFromActualStart(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now().Add(time.Hour)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Start: start, Duration: 2 * time.Hour})
	e.clock.Advance(10 * time.Minute)
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if e.get(r.ID).State != bot.StateScheduled || e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatal("granted before its start time")
	}
	e.clock.Advance(50 * time.Minute)
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateActive || !got.ActivatedAt.Equal(start) || !got.EndsAt.Equal(start.Add(2*time.Hour)) {
		t.Fatalf("state %s activated %s ends %s", got.State, got.ActivatedAt, got.EndsAt)
	}
	// Approved only after the start time: the window still counts from activation. (The
	// group has a permanent owner, so an ownership can be granted and taken back.)
	if err := e.dir.Add(e.ctx, "g-prod", e.actor("dave").User.ID, bot.Owner); err != nil {
		t.Fatal(err)
	}
	l := e.submit("alice", "prod-db-admins", bot.SubmitInput{Access: bot.Owner, Duration: time.Hour})
	e.clock.Advance(45 * time.Minute)
	if _, err := e.eng.Approve(e.ctx, e.actor("carol"), l.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if got := e.get(l.ID); !got.EndsAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Fatalf("late approval: ends %s, want %s", got.EndsAt, e.clock.Now().Add(time.Hour))
	}
}

func TestPendingTimeout(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	e.clock.Advance(24*time.Hour - time.Minute)
	e.drain()
	if e.get(r.ID).State != bot.StatePending {
		t.Fatal("timed out early")
	}
	e.clock.Advance(time.Minute)
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateTimedOut {
		t.Fatalf("state %s", got.State)
	}
	var se *bot.StateError
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); !errors.As(err, &se) {
		t.Fatalf("approve after timeout: %v", err)
	}
}

func TestExtend_ThroughApprovalAndWithinMaximum(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Duration: 2 * time.Hour})
	e.eng.Approve(e.ctx, e.actor("bob"), r.ID)
	e.drain()
	end := e.get(r.ID).EndsAt
	var fe *bot.FieldError
	if _, err := e.eng.Extend(e.ctx, e.actor("alice"), r.ID, 3*time.Hour, ""); !errors.As(err, &fe) || !strings.Contains(fe.Message, "at most 2h") {
		t.Fatalf("extend past max: %v", err)
	}
	var pe *bot.PermissionError
	if _, err := e.eng.Extend(e.ctx, e.actor("bob"), r.ID, time.Hour, ""); !errors.As(err, &pe) {
		t.Fatalf("bob extends alice's: %v", err)
	}
	x, err := e.eng.Extend(e.ctx, e.actor("alice"), r.ID, time.Hour, "still fixing")
	if err != nil || x.State != bot.StatePending || x.Kind != bot.KindExtend {
		t.Fatalf("%v %v", x, err)
	}
	var de *bot.DuplicateError
	if _, err := e.eng.Extend(e.ctx, e.actor("alice"), r.ID, time.Hour, ""); !errors.As(err, &de) {
		t.Fatalf("second pending extension: %v", err)
	}
	if _, err := e.eng.Approve(e.ctx, e.actor("alice"), x.ID); !errors.As(err, &pe) {
		t.Fatalf("self-approval of extension: %v", err)
	}
	if _, err := e.eng.Approve(e.ctx, e.actor("carol"), x.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	got := e.get(r.ID)
	if !got.EndsAt.Equal(end.Add(time.Hour)) || e.get(x.ID).State != bot.StateApplied {
		t.Fatalf("ends %s, want %s; extension %s", got.EndsAt, end.Add(time.Hour), e.get(x.ID).State)
	}
	// At the old end nothing is removed; at the new end it is.
	e.clock.Advance(end.Sub(e.clock.Now()))
	e.drain()
	if !e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatal("removed at the old end")
	}
	e.clock.Advance(time.Hour)
	e.drain()
	if e.holds("alice@example.com", "g-prod", bot.Member) || e.get(r.ID).State != bot.StateEnded {
		t.Fatal("not removed at the new end")
	}
	if ev := e.rec.types(r.ID); !slices.Contains(ev, bot.EvExtended) {
		t.Fatalf("parent events %v", ev)
	}
}

func TestExtend_NoApprovalGroupAppliesAtOnce(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 10 * time.Minute})
	e.drain()
	x, err := e.eng.Extend(e.ctx, e.actor("alice"), r.ID, 5*time.Minute, "")
	if err != nil || x.State != bot.StateApplied {
		t.Fatalf("%v %v", x, err)
	}
	if got := e.get(r.ID); !got.EndsAt.Equal(got.ActivatedAt.Add(15 * time.Minute)) {
		t.Fatalf("ends %s", got.EndsAt)
	}
}

func TestGetAndList_OnlyOwnOrApprover(t *testing.T) {
	e := newEnv(t)
	r1 := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	e.clock.Advance(time.Second)
	r2 := e.submit("alice", "sandbox", bot.SubmitInput{})
	rs, err := e.eng.List(e.ctx, e.actor("alice"), 10)
	if err != nil || len(rs) != 2 || rs[0].ID != r2.ID || rs[1].ID != r1.ID {
		t.Fatalf("list not newest first: %v %v", rs, err)
	}
	if rs, _ := e.eng.List(e.ctx, e.actor("mallory"), 10); len(rs) != 0 {
		t.Fatal("mallory sees requests")
	}
	if _, err := e.eng.Get(e.ctx, e.actor("bob"), r1.ID); err != nil {
		t.Fatalf("approver view: %v", err)
	}
	var pe *bot.PermissionError
	if _, err := e.eng.Get(e.ctx, e.actor("mallory"), r1.ID); !errors.As(err, &pe) {
		t.Fatalf("mallory view: %v", err)
	}
	for _, id := range []string{"NOPE2345", "'; DROP", "", strings.Repeat("A", 500), "r*"} {
		if _, err := e.eng.Approve(e.ctx, e.actor("bob"), id); !errors.Is(err, bot.ErrNotFound) {
			t.Fatalf("approve %q: %v", id, err)
		}
	}
}
