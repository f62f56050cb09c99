package bot_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	oncalllocal "github.com/pimbot/pimbot/oncall/local"
	"github.com/pimbot/pimbot/oncall/pagerduty"
	"github.com/pimbot/pimbot/oncall/pagerduty/pagerdutyfake"
	"github.com/pimbot/pimbot/store/storetest"
)

// onCallPolicy: alice and erin take turns of an hour on the db-primary rota, alice first
// from 09:00 (the test clock's start); bob and carol approve.
const onCallPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - name: prod-db-admins
    id: g-prod
    eligible: [alice@example.com, erin@example.com, bob@example.com]
    approvers: [bob@example.com, carol@example.com]
    max_duration: 4h
    auto_approve:
      on_call:
        local: {schedules: [db-primary]}
      max_duration: 2h
  - name: paged
    id: g-paged
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    auto_approve:
      on_call:
        pagerduty: {schedules: [P1ABCD2]}
directory:
  users:
    - {email: alice@example.com, name: Alice}
    - {email: bob@example.com, name: Bob}
    - {email: carol@example.com, name: Carol}
    - {email: erin@example.com, name: Erin}
  on_call:
    - {name: db-primary, people: [alice@example.com, erin@example.com], shift: 1h, since: "2026-11-28T09:00:00Z"}
`

func newOnCallEnv(t *testing.T) *env {
	t.Helper()
	pol, err := policyfile.Parse("oncall.yaml", []byte(onCallPolicy))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: t.Context(), pol: pol, store: storetest.New(t), dir: local.New(pol),
		clock: &fakeClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}, rec: &recorder{}}
	rota := oncalllocal.New(pol.Rotas, e.clock.Now)
	e.eng = bot.New(bot.Config{Policy: pol, Store: e.store, Directory: e.dir, Clock: e.clock,
		Notifiers: []bot.Notifier{e.rec}, OnCall: []bot.OnCallProvider{rota}})
	return e
}

func (e *env) inbox(who string) []string {
	e.t.Helper()
	rs, err := e.eng.Inbox(e.ctx, e.actor(who))
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func TestOnCall_ApprovedAutomaticallyThenReviewed(t *testing.T) {
	e := newOnCallEnv(t)
	alice, bob, carol := e.actor("alice@example.com"), e.actor("bob@example.com"), e.actor("carol@example.com")
	r, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "paged: replica lag"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bot.StateScheduled || r.AutoApproval == nil {
		t.Fatalf("on call: want scheduled with an automatic approval, got %s %+v (note %q)", r.State, r.AutoApproval, r.OnCallNote)
	}
	if got, want := r.AutoApproval.Words(), `on-call (local rota "db-primary")`; got != want {
		t.Errorf("approved by %q, want %q", got, want)
	}
	e.drain()
	if !e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatal("alice was not added")
	}
	// The approvers see it at once, with Revoke and Looks good, and it waits for their review.
	if acts := e.eng.ApproverActions(e.get(r.ID)); !slices.Equal(acts, []bot.Action{bot.ActRevoke, bot.ActLooksGood}) {
		t.Errorf("approver actions on an active automatic approval: %v", acts)
	}
	if acts := e.eng.Actions(e.ctx, bob, e.get(r.ID)); !slices.Equal(acts, []bot.Action{bot.ActRevoke, bot.ActLooksGood}) {
		t.Errorf("bob's actions: %v (want Revoke and Looks good, Deactivate folded into Revoke)", acts)
	}
	if acts := e.eng.Actions(e.ctx, alice, e.get(r.ID)); slices.Contains(acts, bot.ActLooksGood) || slices.Contains(acts, bot.ActRevoke) {
		t.Errorf("the requester may not review or revoke her own automatic approval: %v", acts)
	}
	if got := e.inbox("bob@example.com"); !slices.Equal(got, []string{r.ID}) {
		t.Errorf("bob's inbox = %v, want the unreviewed approval %s", got, r.ID)
	}
	if _, err := e.eng.LooksGood(e.ctx, alice, r.ID); err == nil {
		t.Error("alice reviewed her own automatic approval")
	}
	rv, err := e.eng.LooksGood(e.ctx, carol, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rv.AutoApproval.Review == nil || rv.AutoApproval.Review.By.Email != "carol@example.com" || rv.AutoApproval.Review.Verdict != bot.VerdictLooksGood {
		t.Fatalf("review not recorded: %+v", rv.AutoApproval.Review)
	}
	if _, err := e.eng.LooksGood(e.ctx, bob, r.ID); err == nil || !strings.Contains(bot.Describe(err), "reviewed already by Carol") {
		t.Errorf("a second review: %v", err)
	}
	if got := e.inbox("bob@example.com"); len(got) != 0 {
		t.Errorf("bob's inbox after carol's review = %v, want empty", got)
	}
	if acts := e.eng.Actions(e.ctx, bob, e.get(r.ID)); !slices.Equal(acts, []bot.Action{bot.ActRevoke}) {
		t.Errorf("after the review bob may still revoke, nothing else: %v", acts)
	}
	e.drain()
	if got := e.rec.types(r.ID); !slices.Contains(got, bot.EvReviewed) {
		t.Errorf("no reviewed event: %v", got)
	}
	// The audit trail says who approved.
	recs, err := e.store.AuditSince(e.ctx, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, a := range recs {
		if a.RequestID == r.ID && a.Type == bot.EvSubmitted && strings.Contains(a.Detail, `approved by on-call (local rota "db-primary")`) {
			found = true
		}
	}
	if !found {
		t.Errorf("the audit trail does not say the on-call rota approved it: %+v", recs)
	}
}

func TestOnCall_NotOnCallOrTooLongAsksTheApprovers(t *testing.T) {
	e := newOnCallEnv(t)
	erin := e.actor("erin@example.com")
	r, err := e.eng.Submit(e.ctx, erin, bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "curious"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bot.StatePending || r.AutoApproval != nil {
		t.Fatalf("erin is not on call at 09:00: want pending, got %s", r.State)
	}
	if want := `not approved automatically: not on call for local rota "db-primary"`; r.OnCallNote != want {
		t.Errorf("note = %q, want %q", r.OnCallNote, want)
	}
	alice := e.actor("alice@example.com")
	r2, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Duration: 3 * time.Hour, Reason: "long migration"})
	if err != nil {
		t.Fatal(err)
	}
	if r2.State != bot.StatePending || !strings.Contains(r2.OnCallNote, "3h is longer than the 2h that on-call approval allows") {
		t.Errorf("3h > max_duration 2h: state %s, note %q", r2.State, r2.OnCallNote)
	}
	if got := e.inbox("bob@example.com"); len(got) != 2 {
		t.Errorf("bob's inbox = %v, want both pending requests", got)
	}
}

func TestOnCall_ProviderMissingNeverApproves(t *testing.T) {
	e := newOnCallEnv(t) // no PagerDuty provider configured
	r, err := e.eng.Submit(e.ctx, e.actor("alice@example.com"), bot.SubmitInput{Group: "paged", Reason: "paged"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bot.StatePending || r.OnCallNote != "not approved automatically: the on-call check failed (PagerDuty is not set up in this pimbot)" {
		t.Errorf("state %s, note %q", r.State, r.OnCallNote)
	}
}

func TestOnCall_RevokeEndsTheGrantAtOnce(t *testing.T) {
	e := newOnCallEnv(t)
	alice, bob := e.actor("alice@example.com"), e.actor("bob@example.com")
	r, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "paged"})
	if err != nil {
		t.Fatal(err)
	}
	e.drain()
	if _, err := e.eng.Revoke(e.ctx, alice, r.ID); err == nil {
		t.Error("the requester revoked her own automatic approval (she may deactivate it instead)")
	}
	if _, err := e.eng.Revoke(e.ctx, e.actor("erin@example.com"), r.ID); !errors.As(err, new(*bot.PermissionError)) {
		t.Errorf("erin is no approver, revoke: %v", err)
	}
	got, err := e.eng.Revoke(e.ctx, bob, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rv := got.AutoApproval.Review; rv == nil || rv.Verdict != bot.VerdictRevoked || rv.By.Email != "bob@example.com" {
		t.Errorf("revoke is not recorded as the review: %+v", rv)
	}
	e.drain()
	if e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatal("alice still holds the access after bob revoked it")
	}
	if end := e.get(r.ID); end.State != bot.StateEnded || !strings.Contains(end.EndReason, "revoked by bob@example.com") {
		t.Errorf("after revoke: %s (%s)", end.State, end.EndReason)
	}
	if got := e.inbox("carol@example.com"); len(got) != 0 {
		t.Errorf("a revoked approval still waits for review: %v", got)
	}
}

func TestOnCall_ReviewReminderDailyUntilReviewed(t *testing.T) {
	e := newOnCallEnv(t)
	r, err := e.eng.Submit(e.ctx, e.actor("alice@example.com"), bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "paged"})
	if err != nil {
		t.Fatal(err)
	}
	e.drain()
	e.clock.Advance(2 * time.Hour) // ended
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateEnded {
		t.Fatalf("state %s", got.State)
	}
	if got := e.inbox("bob@example.com"); !slices.Equal(got, []string{r.ID}) {
		t.Errorf("an ended automatic approval still waits for review: inbox %v", got)
	}
	count := func() int {
		n := 0
		for _, typ := range e.rec.types(r.ID) {
			if typ == bot.EvReviewDue {
				n++
			}
		}
		return n
	}
	e.clock.Advance(bot.ReviewEvery)
	e.drain()
	if count() != 1 {
		t.Fatalf("reminders after a day: %d", count())
	}
	e.clock.Advance(bot.ReviewEvery)
	e.drain()
	if count() != 2 {
		t.Fatalf("reminders after two days: %d", count())
	}
	if _, err := e.eng.LooksGood(e.ctx, e.actor("bob@example.com"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(bot.ReviewEvery)
	e.drain()
	if count() != 2 {
		t.Errorf("reminded after the review: %d", count())
	}
}

func TestOnCall_LaterStartAsksAgain(t *testing.T) {
	e := newOnCallEnv(t)
	alice := e.actor("alice@example.com")
	// On call at 09:00; the start at 10:30 falls in erin's shift.
	r, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "planned", Start: e.clock.Now().Add(90 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if r.AutoApproval == nil {
		t.Fatalf("on call at submission: want an automatic approval, got %s (%q)", r.State, r.OnCallNote)
	}
	e.clock.Advance(90 * time.Minute)
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StatePending || got.AutoApproval != nil {
		t.Fatalf("no longer on call at the start: want pending, got %s %+v", got.State, got.AutoApproval)
	}
	if !strings.HasPrefix(got.OnCallNote, "no longer approved automatically at the start") {
		t.Errorf("note %q", got.OnCallNote)
	}
	if e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatal("granted although no longer on call")
	}
	if ids := e.inbox("bob@example.com"); !slices.Equal(ids, []string{r.ID}) {
		t.Errorf("bob's inbox = %v, want the request back for approval", ids)
	}
	if _, err := e.eng.Approve(e.ctx, e.actor("bob@example.com"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if !e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Error("approved by bob but not added")
	}
}

// pagedPolicy: alice is on call for the Database service's escalation policy; automatic
// approval needs an open incident on it.
const pagedPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - name: prod-db-admins
    id: g-prod
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    auto_approve:
      on_call:
        pagerduty: {services: [PSVC001]}
      require_incident: true
directory:
  users:
    - {email: alice@example.com, name: Alice}
    - {email: bob@example.com, name: Bob}
`

// newPagedEnv runs the engine with the real PagerDuty client against the PagerDuty fake.
func newPagedEnv(t *testing.T) (*env, *pagerdutyfake.Server) {
	t.Helper()
	pol, err := policyfile.Parse("paged.yaml", []byte(pagedPolicy))
	if err != nil {
		t.Fatal(err)
	}
	pd := pagerdutyfake.New(t, "pd-token")
	pd.AddUser(pagerdutyfake.User{ID: "PALICE1", Name: "Alice", Email: "alice@example.com"})
	pd.AddService(pagerdutyfake.Service{ID: "PSVC001", Name: "Database", PolicyID: "PEP0001", PolicyName: "DB escalation"})
	e := &env{t: t, ctx: t.Context(), pol: pol, store: storetest.New(t), dir: local.New(pol),
		clock: &fakeClock{t: time.Now().UTC().Truncate(time.Second)}, rec: &recorder{}}
	pd.AddOnCall(pagerdutyfake.OnCall{UserID: "PALICE1", PolicyID: "PEP0001", Level: 1, Start: e.clock.Now().Add(-time.Hour), End: e.clock.Now().Add(8 * time.Hour)})
	p, err := pagerduty.New(pagerduty.Options{Token: "pd-token", BaseURL: pd.URL(), Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	e.eng = bot.New(bot.Config{Policy: pol, Store: e.store, Directory: e.dir, Clock: e.clock,
		Notifiers: []bot.Notifier{e.rec}, OnCall: []bot.OnCallProvider{p}})
	return e, pd
}

func TestOnCall_PagerDutyIncidentRequired(t *testing.T) {
	e, pd := newPagedEnv(t)
	alice := e.actor("alice@example.com")
	r, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Reason: "paged"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bot.StatePending || !strings.Contains(r.OnCallNote, `no triggered or acknowledged incident on PagerDuty service "Database"`) {
		t.Fatalf("no open incident: state %s, note %q", r.State, r.OnCallNote)
	}
	if _, err := e.eng.Cancel(e.ctx, alice, r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	pd.AddIncident(pagerdutyfake.Incident{ID: "Q1", Number: 1234, Title: "Replica lag", Status: "triggered", ServiceID: "PSVC001"})
	r, err = e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Reason: "paged"})
	if err != nil {
		t.Fatal(err)
	}
	if r.AutoApproval == nil {
		t.Fatalf("on call with an open incident: state %s, note %q", r.State, r.OnCallNote)
	}
	if got, want := r.AutoApproval.Words(), `on-call (PagerDuty service "Database", incident #1234 "Replica lag")`; got != want {
		t.Errorf("approved by %q, want %q", got, want)
	}
}

func TestOnCall_PagerDutyDownAsksTheApprovers(t *testing.T) {
	e, pd := newPagedEnv(t)
	pd.AddIncident(pagerdutyfake.Incident{ID: "Q1", Number: 1234, Title: "Replica lag", Status: "triggered", ServiceID: "PSVC001"})
	pd.Fail(100, 503)
	r, err := e.eng.Submit(e.ctx, e.actor("alice@example.com"), bot.SubmitInput{Group: "prod-db-admins", Reason: "paged"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bot.StatePending || r.AutoApproval != nil {
		t.Fatalf("PagerDuty down: want pending, got %s", r.State)
	}
	if want := "not approved automatically: the on-call check failed (PagerDuty did not answer)"; r.OnCallNote != want {
		t.Errorf("note %q, want %q", r.OnCallNote, want)
	}
	if ids := e.inbox("bob@example.com"); !slices.Equal(ids, []string{r.ID}) {
		t.Errorf("bob's inbox %v", ids)
	}
}
