package graphclient_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/graphfake"
	"github.com/pimbot/pimbot/store/storetest"
)

const pimPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - {name: prod, id: ` + gProd + `, mode: pim, access: [member], eligible: [alice@example.com], approvers: [bob@example.com], require_justification: false, min_duration: 1m, standing_access: report}
`

// pimWorld is the real engine on real Redis against the fake Graph, on one clock that both
// pimbot and the fake's Entra (its PIM expirations) follow.
type pimWorld struct {
	f          *graphfake.Server
	eng        *bot.Engine
	clk        *clock
	rec        *recorder
	alice, bob bot.User
}

func newPIMWorld(t *testing.T) *pimWorld {
	t.Helper()
	f, d := tenant(t)
	pol, err := policyfile.Parse("pim.yaml", []byte(pimPolicy))
	if err != nil {
		t.Fatal(err)
	}
	if err := bot.CheckModes(pol, d); err != nil {
		t.Fatalf("the Graph directory must implement PIM: %v", err)
	}
	w := &pimWorld{f: f, clk: &clock{t: time.Now().UTC().Truncate(time.Second)}, rec: &recorder{}}
	f.SetClock(w.clk.Now)
	w.eng = bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: d, Clock: w.clk, Logger: quiet, Notifiers: []bot.Notifier{w.rec}})
	ctx := context.Background()
	if w.alice, err = d.ResolveUser(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if w.bob, err = d.ResolveUser(ctx, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	return w
}

// activate submits, approves and runs the activation; it returns the active request.
func (w *pimWorld) activate(t *testing.T, d time.Duration) *bot.Request {
	t.Helper()
	ctx := context.Background()
	r, err := w.eng.Submit(ctx, bot.Actor{User: w.alice, Surface: "test"}, bot.SubmitInput{Group: "prod", Duration: d, Reason: "incident 42", Ticket: "INC-42"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Approve(ctx, bot.Actor{User: w.bob, Surface: "test"}, r.ID); err != nil {
		t.Fatal(err)
	}
	w.eng.RunDue(ctx)
	w.eng.RunDue(ctx) // the notifications of the activation
	return w.get(t, r.ID)
}

func (w *pimWorld) get(t *testing.T, id string) *bot.Request {
	t.Helper()
	r, err := w.eng.Get(context.Background(), bot.Actor{User: w.alice}, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// noRefCalls fails if the PIM group ever saw a $ref call (it must only change through PIM).
func noRefCalls(t *testing.T, f *graphfake.Server) {
	t.Helper()
	for _, c := range f.Calls() {
		if strings.Contains(c.Path, "/groups/"+gProd) && strings.HasSuffix(c.Path, "/$ref") {
			t.Errorf("a PIM group was changed with $ref: %s %s", c.Method, c.Path)
		}
	}
}

// The whole life of a PIM grant: request, approval, an assignment whose expiration is the
// window's end, an approved extension that moves Entra's expiration too, and then pimbot
// stopped for good: Entra (the fake) still ends the membership at the expiration.
func TestPIM_LifecycleEndsWithPimbotStopped(t *testing.T) {
	w := newPIMWorld(t)
	ctx := context.Background()
	start := w.clk.Now()
	r := w.activate(t, time.Hour)
	if r.State != bot.StateActive || !r.PIM {
		t.Fatalf("state %s, PIM %v; want an active PIM grant", r.State, r.PIM)
	}
	as := w.f.Assignments(gProd)
	if len(as) != 1 || as[0].PrincipalID != uAlice || as[0].AccessID != "member" || !as[0].End.Equal(start.Add(time.Hour)) {
		t.Fatalf("assignments = %+v; want alice's membership until %s", as, start.Add(time.Hour))
	}
	if j := as[0].Justification; !strings.Contains(j, "incident 42") || !strings.Contains(j, "INC-42") || !strings.Contains(j, r.ID) {
		t.Errorf("justification %q lacks the reason, the ticket or the request id", j)
	}
	if !w.f.Holds(gProd, uAlice, false) || !w.f.Onboarded(gProd) {
		t.Fatal("the PIM assignment did not make alice a member (or the group was not onboarded)")
	}

	// Extension: 30 minutes more, approved; the pim_extend job moves Entra's expiration.
	w.clk.Advance(10 * time.Minute)
	ext, err := w.eng.Extend(ctx, bot.Actor{User: w.alice, Surface: "test"}, r.ID, 30*time.Minute, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.eng.Approve(ctx, bot.Actor{User: w.bob, Surface: "test"}, ext.ID); err != nil {
		t.Fatal(err)
	}
	w.eng.RunDue(ctx)
	want := start.Add(90 * time.Minute)
	if r = w.get(t, r.ID); !r.EndsAt.Equal(want) {
		t.Fatalf("pimbot's end %s, want %s", r.EndsAt, want)
	}
	if as = w.f.Assignments(gProd); len(as) != 1 || !as[0].End.Equal(want) {
		t.Fatalf("Entra's expiration after the extension: %+v, want %s", as, want)
	}
	reqs := w.f.PIMRequests()
	if len(reqs) != 2 || reqs[0]["action"] != "adminAssign" || reqs[1]["action"] != "adminExtend" {
		t.Errorf("PIM requests = %v; want adminAssign then adminExtend", reqs)
	}

	// pimbot stops for good (no RunDue, no Redis) just before the end: Entra ends it alone.
	w.clk.Advance(79 * time.Minute)
	if !w.f.Holds(gProd, uAlice, false) {
		t.Fatal("alice lost the membership before the expiration")
	}
	w.clk.Advance(time.Minute + time.Second)
	if w.f.Holds(gProd, uAlice, false) || len(w.f.Assignments(gProd)) != 0 {
		t.Fatal("with pimbot stopped, Entra did not end the membership at the expiration")
	}
	if r = w.get(t, r.ID); r.State != bot.StateActive {
		t.Fatalf("pimbot (stopped) should not have ended it itself: %s", r.State)
	}
	// pimbot back: its end job finds the assignment gone (RoleAssignmentDoesNotExist) and ends the grant.
	w.eng.RunDue(ctx)
	if r = w.get(t, r.ID); r.State != bot.StateEnded || r.Grant != bot.GrantRemoved {
		t.Fatalf("after the restart: %s/%s, want ended/removed", r.State, r.Grant)
	}
	noRefCalls(t, w.f)
}

// An early end within 5 minutes of the assignment waits for the earliest moment Entra allows,
// and says so; a request shorter than 5 minutes is rounded up to 5, and says so.
func TestPIM_FiveMinuteRules(t *testing.T) {
	w := newPIMWorld(t)
	ctx := context.Background()
	start := w.clk.Now()
	r := w.activate(t, 2*time.Minute)
	if !r.EndsAt.Equal(start.Add(5*time.Minute)) || r.Duration != 5*time.Minute {
		t.Fatalf("a 2m PIM grant ends at %s (duration %s); want rounded up to 5m", r.EndsAt, r.Duration)
	}
	if as := w.f.Assignments(gProd); len(as) != 1 || !as[0].End.Equal(start.Add(5*time.Minute)) {
		t.Fatalf("Entra's expiration: %+v", as)
	}
	rounded := false
	w.rec.mu.Lock()
	events := append([]bot.Event(nil), w.rec.events...)
	w.rec.mu.Unlock()
	for _, ev := range events {
		rounded = rounded || (ev.Type == bot.EvActivated && strings.Contains(ev.Detail, "rounded up to 5m"))
	}
	if !rounded {
		t.Error("the activation did not say the duration was rounded up")
	}

	// Deactivated a minute in: the end is moved to 5 minutes after the assignment.
	w.clk.Advance(time.Minute)
	d, err := w.eng.Deactivate(ctx, bot.Actor{User: w.alice, Surface: "test"}, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !d.EndsAt.Equal(start.Add(5*time.Minute)) || !strings.Contains(d.EndReason, "earliest moment Entra allows") {
		t.Fatalf("early end at %s (%q); want at %s, saying why", d.EndsAt, d.EndReason, start.Add(5*time.Minute))
	}
	// An extension approved while the early end waits for Entra does not revive the grant.
	if ext, err := w.eng.Extend(ctx, bot.Actor{User: w.alice, Surface: "test"}, r.ID, 30*time.Minute, "more"); err == nil {
		if _, err := w.eng.Approve(ctx, bot.Actor{User: w.bob, Surface: "test"}, ext.ID); err != nil {
			t.Fatal(err)
		}
	}
	w.eng.RunDue(ctx)
	if !w.f.Holds(gProd, uAlice, false) {
		t.Fatal("removed before Entra allows it")
	}
	if x := w.get(t, r.ID); !x.EndsAt.Equal(start.Add(5 * time.Minute)) {
		t.Fatalf("an extension undid the early end: ends at %s", x.EndsAt)
	}
	w.clk.Advance(4 * time.Minute)
	w.eng.RunDue(ctx)
	if r = w.get(t, r.ID); r.State != bot.StateEnded || w.f.Holds(gProd, uAlice, false) {
		t.Fatalf("at the earliest moment: %s, holds %v", r.State, w.f.Holds(gProd, uAlice, false))
	}
	noRefCalls(t, w.f)
}

// The fake refuses as Entra does, and the client turns the refusals into the engine's kinds.
func TestPIM_GraphRefusals(t *testing.T) {
	f, d := tenant(t)
	clk := &clock{t: time.Now().UTC()}
	f.SetClock(clk.Now)
	ctx := context.Background()
	now := clk.Now()
	if err := d.AssignUntil(ctx, gProd, uAlice, bot.Member, now, now.Add(3*time.Minute), "x"); !errors.Is(err, bot.ErrPIMTooSoon) {
		t.Fatalf("a 3-minute assignment: %v, want ErrPIMTooSoon (ActiveDurationTooShort)", err)
	}
	if err := d.AssignUntil(ctx, gProd, uAlice, bot.Owner, now, now.Add(time.Hour), "x"); err != nil {
		t.Fatal(err)
	}
	if err := d.AssignUntil(ctx, gProd, uAlice, bot.Owner, now, now.Add(time.Hour), "x"); err != nil {
		t.Fatalf("assigning again (RoleAssignmentExists) is success: %v", err)
	}
	if ok, err := d.Assigned(ctx, gProd, uAlice, bot.Owner); !ok || err != nil {
		t.Fatalf("Assigned = %v, %v", ok, err)
	}
	if ok, _ := d.Assigned(ctx, gProd, uAlice, bot.Member); ok {
		t.Fatal("assigned as member too?")
	}
	if err := d.Unassign(ctx, gProd, uAlice, bot.Owner); !errors.Is(err, bot.ErrPIMTooSoon) {
		t.Fatalf("removal within 5 minutes: %v, want ErrPIMTooSoon", err)
	}
	clk.Advance(5 * time.Minute)
	if err := d.Unassign(ctx, gProd, uAlice, bot.Owner); err != nil {
		t.Fatal(err)
	}
	if err := d.Unassign(ctx, gProd, uAlice, bot.Owner); !errors.Is(err, bot.ErrNotHeld) {
		t.Fatalf("removing nothing: %v, want ErrNotHeld (RoleAssignmentDoesNotExist)", err)
	}
	if err := d.ExtendUntil(ctx, gProd, uAlice, bot.Owner, now.Add(2*time.Hour), "x"); !errors.Is(err, bot.ErrNotHeld) {
		t.Fatalf("extending nothing: %v, want ErrNotHeld", err)
	}
	f.PutGroup(graphfake.Group{ID: gEng, Mail: "dyn@example.com", Dynamic: true})
	if err := d.AssignUntil(ctx, gEng, uAlice, bot.Member, now, now.Add(time.Hour), "x"); !errors.Is(err, bot.ErrForbidden) {
		t.Fatalf("a dynamic group: %v, want ErrForbidden", err)
	}
}

// Drift of a PIM group: a holder through a PIM assignment (pimbot's or an administrator's) is
// neither reported nor removed; a $ref holder added behind pimbot's back is reported.
func TestPIM_DriftLeavesAssignmentsAlone(t *testing.T) {
	w := newPIMWorld(t)
	ctx := context.Background()
	d := w.eng.Directory().(bot.Scheduler)
	now := w.clk.Now()
	if err := d.AssignUntil(ctx, gProd, uBob, bot.Member, now, now.Add(8*time.Hour), "an administrator in PIM"); err != nil {
		t.Fatal(err)
	}
	w.f.Grant(gProd, uCarol, false)
	found, err := w.eng.Reconcile(ctx, w.eng.Directory().(bot.MemberLister))
	if err != nil {
		t.Fatal(err)
	}
	var who []string
	for _, f := range found {
		who = append(who, f.User.Email)
	}
	if !slices.Equal(who, []string{"carol@example.com"}) {
		t.Fatalf("drift found %v; want only carol (bob holds it through PIM)", who)
	}
}

// The latency of a PIM-mode grant against the fake: from the activation job's start to the
// membership, through the real SDK client (median of 20).
func TestPIM_GrantLatency(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	var ds []time.Duration
	for i := 0; i < 20; i++ {
		uid := uAlice
		a := bot.Member
		if i%2 == 1 {
			a = bot.Owner
		}
		start := time.Now()
		if err := d.AssignUntil(ctx, gProd, uid, a, start, start.Add(time.Hour), "latency"); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
		if !f.Holds(gProd, uid, a == bot.Owner) {
			t.Fatal("not held")
		}
		f.SetClock(func() time.Time { return time.Now().Add(10 * time.Minute) })
		if err := d.Unassign(ctx, gProd, uid, a); err != nil {
			t.Fatal(err)
		}
		f.SetClock(nil)
	}
	slices.Sort(ds)
	t.Logf("PIM-mode grant latency against the fake (adminAssign through msgraph-sdk-go, %d runs): median %s, max %s", len(ds), ds[len(ds)/2], ds[len(ds)-1])

	// The whole grant through the engine on real Redis: the activation job claimed, judged
	// again (user, eligibility, standing access), the intent committed, adminAssign, the
	// outcome committed.
	w := newPIMWorld(t)
	ds = ds[:0]
	for i := 0; i < 20; i++ {
		r, err := w.eng.Submit(ctx, bot.Actor{User: w.alice, Surface: "test"}, bot.SubmitInput{Group: "prod", Duration: time.Hour, Reason: "latency"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.eng.Approve(ctx, bot.Actor{User: w.bob, Surface: "test"}, r.ID); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		w.eng.RunDue(ctx)
		ds = append(ds, time.Since(start))
		if !w.f.Holds(gProd, uAlice, false) {
			t.Fatal("not granted")
		}
		w.clk.Advance(time.Hour)
		w.eng.RunDue(ctx)
		w.eng.RunDue(ctx)
	}
	slices.Sort(ds)
	t.Logf("PIM-mode grant through the engine (activation job on Redis + adminAssign against the fake, %d runs): median %s, max %s", len(ds), ds[len(ds)/2], ds[len(ds)-1])
}
