package bot_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// driftPolicy manages sandbox with standing_access: remove, prod with the default (report).
func driftPolicy() string {
	return strings.Replace(testPolicy, "    eligible: [group:engineering@example.com]\n    require_approval: false",
		"    eligible: [group:engineering@example.com]\n    standing_access: remove\n    require_approval: false", 1)
}

// hookLister lists through the local directory, running before first (a grant made while
// the round lists) and adding stale holders (Graph's listings lag behind removals).
type hookLister struct {
	bot.MemberLister
	before func(groupID string, a bot.Access)
	stale  map[string][]bot.User // group id|access -> holders Graph still lists
	fail   string                // group id whose listing fails
}

func (h *hookLister) Holders(ctx context.Context, groupID string, a bot.Access) ([]bot.User, error) {
	if h.before != nil {
		h.before(groupID, a)
	}
	if groupID == h.fail {
		return nil, errors.New("graph: list members: HTTP 503")
	}
	hs, err := h.MemberLister.Holders(ctx, groupID, a)
	return append(hs, h.stale[groupID+"|"+string(a)]...), err
}

func driftEvents(rec *recorder) []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, ev := range rec.events {
		if bot.IsDrift(ev.Type) {
			if ev.Request.Surface != "" || !strings.HasPrefix(ev.Request.ID, "drift-") {
				panic("a drift event must concern no request and no requester's surface")
			}
			out = append(out, ev.Type+" "+ev.Request.Requester.Email+" "+ev.Request.Group)
		}
	}
	slices.Sort(out)
	return out
}

func auditTypes(e *env, prefix string) []string {
	e.t.Helper()
	recs, err := e.store.AuditSince(e.ctx, time.Time{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, a := range recs {
		if strings.HasPrefix(a.Type, prefix) {
			out = append(out, a.Type+" "+a.Subject)
		}
	}
	slices.Sort(out)
	return out
}

func TestReconcile_ReportsOrRemovesAccessWithoutAGrant(t *testing.T) {
	e := newEnvPolicy(t, driftPolicy())
	// A grant through the bot: not drift.
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: time.Hour})
	e.drain()
	// Added behind the bot's back: erin to sandbox (remove), mallory to prod (report).
	erin, mallory := e.actor("erin").User, e.actor("mallory").User
	e.dir.Add(e.ctx, "g-sandbox", erin.ID, bot.Member)
	e.dir.Add(e.ctx, "g-prod", mallory.ID, bot.Owner)

	found, err := e.eng.Reconcile(e.ctx, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 {
		t.Fatalf("found %d drifts, want 2: %+v", len(found), found)
	}
	if e.holds("erin@example.com", "g-sandbox", bot.Member) || !e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatal("standing_access: remove must remove erin and keep alice's grant")
	}
	if !e.holds("mallory@example.com", "g-prod", bot.Owner) {
		t.Fatal("standing_access: report must not remove")
	}
	if got := strings.Join(auditTypes(e, "drift"), ","); got != "drift mallory@example.com,drift_removed erin@example.com" {
		t.Fatalf("audit: %v", got)
	}
	// The approvers hear of both through the job queue, as of any event.
	e.drain()
	if got := strings.Join(driftEvents(e.rec), ","); got != "drift mallory@example.com prod-db-admins,drift_removed erin@example.com sandbox" {
		t.Fatalf("notified: %v", got)
	}
	if got := e.get(r.ID); got.State != bot.StateActive {
		t.Fatalf("the reconciler touched a real grant: %s", got.State)
	}
	// Once alice's grant ends, her membership is gone too: only mallory is left, and she was
	// reported already (once a day, across replicas): no new record, no new message.
	e.clock.Advance(time.Hour)
	e.drain()
	found, err = e.eng.Reconcile(e.ctx, e.dir)
	if err != nil || len(found) != 1 || found[0].User.Email != "mallory@example.com" || found[0].Reported {
		t.Fatalf("second round: %+v %v", found, err)
	}
	e.drain()
	if n := len(auditTypes(e, "drift")); n != 2 {
		t.Fatalf("%d drift records after the second round, want 2", n)
	}
	if n := len(driftEvents(e.rec)); n != 2 {
		t.Fatalf("%d drift messages after the second round, want 2", n)
	}
}

// A grant made while the round lists the groups is not drift: its open key was taken before
// its member was added, and the round reads the open keys again after listing. Without that
// second read, standing_access: remove would take away access just granted.
func TestReconcile_GrantMadeDuringTheRoundIsLeftAlone(t *testing.T) {
	e := newEnvPolicy(t, driftPolicy())
	var granted atomic.Bool
	lister := &hookLister{MemberLister: e.dir, before: func(groupID string, a bot.Access) {
		if groupID == "g-sandbox" && granted.CompareAndSwap(false, true) {
			e.submit("alice", "sandbox", bot.SubmitInput{Duration: time.Hour})
			e.drain()
		}
	}}
	found, err := e.eng.Reconcile(e.ctx, lister)
	if err != nil || len(found) != 0 {
		t.Fatalf("found %+v, %v; want nothing", found, err)
	}
	if !e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatal("the reconciler removed a grant made during its round")
	}
}

// Graph's listings lag behind removals: a grant that ended a moment ago may still be listed.
// It is not drift within the grace period, and it is after.
func TestReconcile_RecentlyEndedGrantIsNotDriftYet(t *testing.T) {
	e := newEnvPolicy(t, driftPolicy())
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: time.Hour})
	e.drain()
	alice := e.actor("alice").User
	e.clock.Advance(time.Hour)
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateEnded {
		t.Fatalf("grant: %s", got.State)
	}
	lister := &hookLister{MemberLister: e.dir, stale: map[string][]bot.User{"g-sandbox|member": {alice}}}
	rc := bot.NewReconciler(bot.ReconcilerConfig{Policy: e.pol, Store: e.store, Lister: lister, Clock: e.clock})
	if found, err := rc.Once(e.ctx); err != nil || len(found) != 0 {
		t.Fatalf("within the grace period: %+v %v", found, err)
	}
	e.clock.Advance(bot.DriftGrace)
	found, err := rc.Once(e.ctx)
	if err != nil || len(found) != 1 || found[0].User.ID != alice.ID || found[0].Removed {
		t.Fatalf("after the grace period: %+v %v (no Directory given: report only)", found, err)
	}
}

// A group whose listing fails is named in the error; the others are still reconciled.
func TestReconcile_AFailingGroupDoesNotStopTheRound(t *testing.T) {
	e := newEnvPolicy(t, driftPolicy())
	e.dir.Add(e.ctx, "g-sandbox", e.actor("erin").User.ID, bot.Member)
	lister := &hookLister{MemberLister: e.dir, fail: "g-prod"}
	found, err := e.eng.Reconcile(e.ctx, lister)
	if err == nil || !strings.Contains(err.Error(), "prod-db-admins") {
		t.Fatalf("error: %v", err)
	}
	if len(found) != 1 || !found[0].Removed {
		t.Fatalf("sandbox was not reconciled: %+v", found)
	}
}

// A removal that fails is reported and tried again next round.
func TestReconcile_FailedRemovalIsRetried(t *testing.T) {
	e := newEnvPolicy(t, driftPolicy())
	erin := e.actor("erin").User
	e.dir.Add(e.ctx, "g-sandbox", erin.ID, bot.Member)
	e.dir.SetFault(func(op, groupID, userID string) error {
		if op == "remove" {
			return bot.ErrForbidden
		}
		return nil
	})
	found, err := e.eng.Reconcile(e.ctx, e.dir)
	if err == nil || len(found) != 1 || found[0].Removed || found[0].Err == nil {
		t.Fatalf("failing removal: %+v %v", found, err)
	}
	e.dir.SetFault(nil)
	found, err = e.eng.Reconcile(e.ctx, e.dir)
	if err != nil || len(found) != 1 || !found[0].Removed || e.holds("erin@example.com", "g-sandbox", bot.Member) {
		t.Fatalf("next round: %+v %v", found, err)
	}
	if got := strings.Join(auditTypes(e, "drift"), ","); got != "drift_remove_failed erin@example.com,drift_removed erin@example.com" {
		t.Fatalf("audit: %v", got)
	}
}

// Run does rounds until its context ends; with a KV, one replica does each round.
func TestReconcilerRun(t *testing.T) {
	e := newEnvPolicy(t, driftPolicy())
	rounds := make(chan struct{}, 100)
	lister := &hookLister{MemberLister: e.dir, before: func(groupID string, a bot.Access) {
		if groupID == "g-prod" && a == bot.Member {
			rounds <- struct{}{}
		}
	}}
	rc := bot.NewReconciler(bot.ReconcilerConfig{Policy: e.pol, Store: e.store, Lister: lister, Interval: 50 * time.Millisecond})
	ctx, stop := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { rc.Run(ctx); close(done) }()
	for i := 0; i < 3; i++ {
		select {
		case <-rounds:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d did not happen", i+1)
		}
	}
	stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop with its context")
	}

	a := e.eng.Reconciler(e.dir, time.Minute) // the engine's store is a KV: rounds are shared
	b := e.eng.Reconciler(e.dir, time.Minute)
	if found, err := a.Once(e.ctx); err != nil || len(found) != 0 {
		t.Fatal(found, err)
	}
	ok, err := a.TakeRound(e.ctx)
	if err != nil || !ok {
		t.Fatalf("first replica: %v %v", ok, err)
	}
	if ok, err := b.TakeRound(e.ctx); err != nil || ok {
		t.Fatalf("second replica took the same round: %v %v", ok, err)
	}
}
