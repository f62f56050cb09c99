package bot_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
	"github.com/redis/go-redis/v9"
)

// restart builds a new engine on the same store, directory and clock with another policy,
// as an operator's edit and restart does.
func (e *env) restart(policy string) {
	e.t.Helper()
	pol, err := policyfile.Parse("test.yaml", []byte(policy))
	if err != nil {
		e.t.Fatal(err)
	}
	e.pol = pol
	e.eng = bot.New(bot.Config{Policy: pol, Store: e.store, Directory: e.dir, Clock: e.clock, Notifiers: []bot.Notifier{e.rec}})
}

func edit(t *testing.T, policy, old, new string) string {
	t.Helper()
	if !strings.Contains(policy, old) {
		t.Fatalf("the test policy has no %q", old)
	}
	return strings.Replace(policy, old, new, 1)
}

// dirOps counts what the directory was asked to change for a group.
func (e *env) dirOps(groupID string) (adds, removes int) {
	for _, o := range e.dir.Ops() {
		if o.GroupID != groupID {
			continue
		}
		if o.Op == "add" {
			adds++
		} else {
			removes++
		}
	}
	return adds, removes
}

const sandboxBlock = `  - name: sandbox
    id: g-sandbox
`

// A group removed from the policy, or whose id changed, while a request waits for its start:
// the activation touches nothing in the directory, the request fails saying why, the lock is
// released and people are told.
func TestStart_GroupGoneFromThePolicy(t *testing.T) {
	for name, policy := range map[string]func(t *testing.T) string{
		"removed": func(t *testing.T) string {
			return edit(t, testPolicy, sandboxBlock, "  - name: other\n    id: g-other\n")
		},
		"id changed": func(t *testing.T) string { return edit(t, testPolicy, "id: g-sandbox", "id: g-sandbox-new") },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			r := e.submit("alice", "sandbox", bot.SubmitInput{Start: e.clock.Now().Add(time.Hour)})
			if got := e.get(r.ID); got.State != bot.StateScheduled {
				t.Fatalf("state %s", got.State)
			}
			e.restart(policy(t))
			e.clock.Advance(time.Hour)
			e.drain()
			got := e.get(r.ID)
			if got.State != bot.StateFailed || !strings.Contains(got.EndReason, "no longer in the policy") {
				t.Fatalf("state %s, reason %q", got.State, got.EndReason)
			}
			if adds, removes := e.dirOps("g-sandbox"); adds+removes != 0 {
				t.Fatalf("the directory was changed: %d adds, %d removes", adds, removes)
			}
			if !slices.Contains(e.rec.types(r.ID), bot.EvFailed) {
				t.Fatal("nobody was told")
			}
			if open, _ := e.store.OpenRequests(e.ctx); len(open) != 0 {
				t.Fatalf("locks left: %v", open)
			}
			audit, _ := e.store.AuditSince(e.ctx, time.Time{}, 0)
			if !slices.ContainsFunc(audit, func(a bot.AuditRecord) bool { return a.RequestID == r.ID && a.Type == bot.EvFailed }) {
				t.Fatal("no audit record of the failure")
			}
			e.clock.Advance(10 * time.Minute)
			e.drain()
			if adds, _ := e.dirOps("g-sandbox"); adds != 0 {
				t.Fatal("re-added later")
			}
		})
	}
}

// The group leaves the policy after a worker recorded its intent, added, and died: the grant
// is taken away before the request fails.
func TestStart_GroupGoneAfterAnAdd_IsUndone(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "sandbox", bot.SubmitInput{})
	claimed, err := e.store.Claim(e.ctx, e.clock.Now(), 10, bot.JobLease)
	if err != nil || len(claimed) == 0 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	crashAfterAdd(t, e, claimed[0], r)
	e.restart(edit(t, testPolicy, sandboxBlock, "  - name: other\n    id: g-other\n"))
	e.clock.Advance(bot.JobLease)
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateFailed || e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatalf("state %s, holds %v", got.State, e.holds("alice@example.com", "g-sandbox", bot.Member))
	}
	if got.Grant != bot.GrantRemoved {
		t.Fatalf("grant %q", got.Grant)
	}
}

// At its start a request is judged against the policy then in force, and the directory.
func TestStart_JudgedAgainstThePolicyInForce(t *testing.T) {
	cases := []struct {
		name   string
		group  string
		in     bot.SubmitInput
		change func(t *testing.T, e *env) string // returns the new policy
		reason string                            // "" means: activates
	}{
		{"no longer eligible", "sandbox", bot.SubmitInput{}, func(t *testing.T, e *env) string {
			return edit(t, testPolicy, "eligible: [group:engineering@example.com]", "eligible: [group:sre@example.com]")
		}, "no longer eligible"},
		{"now needs approval", "sandbox", bot.SubmitInput{}, func(t *testing.T, e *env) string {
			return edit(t, testPolicy, "    require_approval: false\n    require_justification: false\n    min_duration: 1s",
				"    approvers: [bob@example.com]\n    require_justification: false\n    min_duration: 1s")
		}, "now needs 1 approval"},
		{"now needs MFA", "sandbox", bot.SubmitInput{}, func(t *testing.T, e *env) string {
			return edit(t, testPolicy, "    require_approval: false\n    require_justification: false\n    min_duration: 1s",
				"    require_approval: false\n    require_mfa: true\n    require_justification: false\n    min_duration: 1s")
		}, "now requires MFA"},
		{"access no longer allowed", "prod-db-admins", bot.SubmitInput{Access: bot.Owner}, func(t *testing.T, e *env) string {
			return edit(t, testPolicy, "access: [member, owner]", "access: [member]")
		}, "no longer allows owner"},
		{"account disabled", "sandbox", bot.SubmitInput{}, func(t *testing.T, e *env) string {
			if err := e.dir.SetDisabled("alice@example.com", true); err != nil {
				t.Fatal(err)
			}
			return testPolicy
		}, "account is disabled"},
		{"standing access", "sandbox", bot.SubmitInput{}, func(t *testing.T, e *env) string {
			if err := e.dir.Add(e.ctx, "g-sandbox", e.actor("alice").User.ID, bot.Member); err != nil {
				t.Fatal(err)
			}
			return testPolicy
		}, "standing access"},
		{"still fine", "sandbox", bot.SubmitInput{}, func(t *testing.T, e *env) string { return testPolicy }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			c.in.Start = e.clock.Now().Add(2 * time.Hour)
			r := e.submit("alice", c.group, c.in)
			if r.State == bot.StatePending {
				if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
					t.Fatal(err)
				}
			}
			e.restart(c.change(t, e))
			before, _ := e.dirOps(r.GroupID)
			e.clock.Advance(2 * time.Hour)
			e.drain()
			got := e.get(r.ID)
			adds, removes := e.dirOps(r.GroupID)
			if c.reason == "" {
				if got.State != bot.StateActive || adds-before != 1 {
					t.Fatalf("state %s (%q), %d adds", got.State, got.EndReason, adds-before)
				}
				return
			}
			if got.State != bot.StateFailed || !strings.Contains(got.EndReason, c.reason) {
				t.Fatalf("state %s, reason %q, want %q", got.State, got.EndReason, c.reason)
			}
			if adds != before || removes != 0 {
				t.Fatalf("the directory was changed: %d adds, %d removes", adds-before, removes)
			}
			if c.name == "standing access" && !e.holds("alice@example.com", "g-sandbox", bot.Member) {
				t.Fatal("standing access was removed")
			}
			if !slices.Contains(e.rec.types(r.ID), bot.EvFailed) {
				t.Fatal("nobody was told")
			}
		})
	}
}

// A lower max_duration in force at the start clips the window.
func TestStart_ClipsToALowerMaxDuration(t *testing.T) {
	e := newEnv(t)
	start := e.clock.Now().Add(time.Hour)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Start: start, Duration: 4 * time.Hour})
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.restart(edit(t, testPolicy, "    max_duration: 4h\n", "    max_duration: 90m\n"))
	e.clock.Advance(time.Hour)
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateActive || got.Duration != 90*time.Minute || !got.EndsAt.Equal(start.Add(90*time.Minute)) {
		t.Fatalf("state %s, duration %s, ends %s", got.State, got.Duration, got.EndsAt)
	}
}

// An extension approved after the end job was claimed (but before it acted) wins: the job
// re-reads the request in its fenced intent commit, finds the new end, and removes nothing.
func TestEnd_ExtensionRacingTheEnd_ExtensionFirst(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Duration: time.Hour})
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	e.clock.Advance(time.Hour)
	claimed, err := e.store.Claim(e.ctx, e.clock.Now(), 10, bot.JobLease)
	if err != nil || !slices.ContainsFunc(claimed, func(c bot.Claimed) bool { return c.Job.Kind == bot.JobEnd }) {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	// The extension lands between the claim and the run.
	ext, err := e.eng.Extend(e.ctx, e.actor("alice"), r.ID, 30*time.Minute, "more")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Approve(e.ctx, e.actor("carol"), ext.ID); err != nil {
		t.Fatal(err)
	}
	e.eng.RunClaimed(e.ctx, claimed)
	got := e.get(r.ID)
	if got.State != bot.StateActive || !e.holds("alice@example.com", "g-prod", bot.Member) || got.Ending() {
		t.Fatalf("the end job acted on a stale copy: state %s, holds %v, grant %q", got.State, e.holds("alice@example.com", "g-prod", bot.Member), got.Grant)
	}
	e.clock.Advance(30 * time.Minute)
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateEnded || e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatalf("after the extended end: state %s", got.State)
	}
}

// Once the end job has recorded its intent to remove, an extension is refused (and one
// already asked for is canceled when approved): the record never says active while the
// access is gone.
func TestEnd_ExtensionRacingTheEnd_RemovalFirst(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Duration: time.Hour})
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	e.clock.Advance(time.Hour - 30*time.Second)
	ext, err := e.eng.Extend(e.ctx, e.actor("alice"), r.ID, 30*time.Minute, "more")
	if err != nil {
		t.Fatal(err)
	}
	// The removal is under way (the directory answers 503 for now).
	e.dir.SetFault(func(op, _, _ string) error {
		if op == "remove" {
			return fmt.Errorf("directory answered 503: %w", bot.ErrUnavailable)
		}
		return nil
	})
	e.clock.Advance(30 * time.Second)
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateActive || got.Grant != bot.GrantRemoving || !got.Ending() {
		t.Fatalf("state %s grant %q", got.State, got.Grant)
	}
	var se *bot.StateError
	if _, err := e.eng.Extend(e.ctx, e.actor("alice"), r.ID, 30*time.Minute, "more"); !errors.As(err, &se) {
		t.Fatalf("extend while being removed: %v", err)
	}
	if got, err := e.eng.Approve(e.ctx, e.actor("carol"), ext.ID); err != nil || got.State != bot.StateCanceled {
		t.Fatalf("approving the earlier extension: %v %v", got, err)
	}
	e.dir.SetFault(nil)
	e.clock.Advance(time.Minute)
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateEnded || e.holds("alice@example.com", "g-prod", bot.Member) || len(got.Extensions) != 0 {
		t.Fatalf("state %s, extensions %v", got.State, got.Extensions)
	}
}

// max_pending counts requests that wait (for approval, MFA or their start), not active grants.
func TestMaxPending_CountsWaitingRequestsOnly(t *testing.T) {
	e := newEnvPolicy(t, edit(t, testPolicy, "max_pending: 0", "max_pending: 1"))
	alice := e.actor("alice")
	a := e.submit("alice", "sandbox", bot.SubmitInput{})
	e.drain()
	if e.get(a.ID).State != bot.StateActive {
		t.Fatal("not active")
	}
	// The active grant does not count: one request may still wait.
	p, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Reason: "x"})
	if err != nil {
		t.Fatalf("with one active grant: %v", err)
	}
	_, err = e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "quorum", Reason: "x"})
	var le *bot.LimitError
	if !errors.As(err, &le) || !strings.Contains(le.Message, "1 request waiting") || strings.Contains(le.Message, "open") {
		t.Fatalf("second waiting request: %v", err)
	}
	// Approved and active: the slot is free again.
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), p.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if _, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "quorum", Reason: "x"}); err != nil {
		t.Fatalf("after the waiting one started: %v", err)
	}
}

// A claim that another replica took over (its lease ran out while it stalled) acts on
// nothing: its fenced intent commit is refused before any directory call.
func TestFencing_StaleClaimActsOnNothing(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 10 * time.Minute})
	stale := e.claimActivation(r, e.clock.Now())
	// Seen from Redis, the lease ran out and another replica claimed the job; the stalled
	// replica's clock has not moved (it was paused).
	fresh := e.claimActivation(r, e.clock.Now().Add(bot.JobLease+time.Second))
	if !fresh[0].TakenOver {
		t.Fatalf("take over: %+v", fresh)
	}
	v := e.get(r.ID).Version
	e.eng.RunClaimed(e.ctx, stale)
	if adds, removes := e.dirOps("g-sandbox"); adds+removes != 0 {
		t.Fatalf("a stale claim called the directory: %d adds, %d removes", adds, removes)
	}
	if got := e.get(r.ID); got.Version != v || got.Grant != bot.GrantNone {
		t.Fatalf("a stale claim wrote the request: v%d grant %q", got.Version, got.Grant)
	}
	// The new holder runs it, once.
	e.eng.RunClaimed(e.ctx, fresh)
	if got := e.get(r.ID); got.State != bot.StateActive {
		t.Fatalf("state %s", got.State)
	}
	if adds, _ := e.dirOps("g-sandbox"); adds != 1 {
		t.Fatalf("%d adds", adds)
	}
}

// claimActivation claims due jobs as of now and keeps the request's activation job (the
// others, its notifications, stay leased).
func (e *env) claimActivation(r *bot.Request, now time.Time) []bot.Claimed {
	e.t.Helper()
	c, err := e.store.Claim(e.ctx, now, 10, bot.JobLease)
	i := slices.IndexFunc(c, func(c bot.Claimed) bool { return c.Job.ID == bot.JobID(bot.JobActivate, r.ID) })
	if err != nil || i < 0 {
		e.t.Fatalf("claim: %+v %v", c, err)
	}
	return c[i : i+1]
}

// A claim whose lease is (nearly) over starts no directory call, even if nobody took over
// yet: a call started then could outlive the lease.
func TestFencing_NoDirectoryCallNearTheEndOfTheLease(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 10 * time.Minute})
	claimed := e.claimActivation(r, e.clock.Now())
	e.clock.Advance(bot.JobLease - time.Second) // stalled until just before the lease ends
	e.eng.RunClaimed(e.ctx, claimed)
	if adds, _ := e.dirOps("g-sandbox"); adds != 0 {
		t.Fatal("a directory call started at the end of the lease")
	}
	e.clock.Advance(2 * time.Second)
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateActive {
		t.Fatalf("state %s after the lease ran out", got.State)
	}
}

// A job that cannot be decoded leaves the queue for the dead-letter set, raises the alert,
// and does not hold up the others.
func TestPoisonRow_DeadLetteredOthersRun(t *testing.T) {
	e := newEnv(t)
	prefix := storetest.Prefix(t)
	e.store = store.New(storetest.Client(t), store.Options{Prefix: prefix})
	var dead []string
	e.eng = bot.New(bot.Config{Policy: e.pol, Store: e.store, Directory: e.dir, Clock: e.clock, Notifiers: []bot.Notifier{e.rec},
		Hooks: bot.Hooks{DeadLettered: func(kind string) { dead = append(dead, kind) }}})
	rdb := e.store.Client()
	k := "{" + prefix + "}:"
	now := e.clock.Now()
	if err := rdb.HSet(e.ctx, k+"job", "remind:BADJOB01", `{"id": "remind:BADJOB01", "kind": 7`).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.ZAdd(e.ctx, k+"due", redis.Z{Score: float64(now.UnixMilli()), Member: "remind:BADJOB01"})
	// A request record another build wrote, with its activation due.
	bad := e.submit("bob", "selfok", bot.SubmitInput{})
	e.drain() // its notifications go out while it is readable
	if err := rdb.HSet(e.ctx, k+"req:"+bad.ID, "d", `{"id": "`+bad.ID+`", "state": [1]}`).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), bad.ID); err == nil {
		t.Fatal("approved an unreadable record")
	}
	rdb.HSet(e.ctx, k+"job", "activate:"+bad.ID, `{"id":"activate:`+bad.ID+`","kind":"activate","request_id":"`+bad.ID+`"}`)
	rdb.ZAdd(e.ctx, k+"due", redis.Z{Score: float64(now.UnixMilli()), Member: "activate:" + bad.ID})
	good := e.submit("alice", "sandbox", bot.SubmitInput{})
	e.drain()
	if got := e.get(good.ID); got.State != bot.StateActive {
		t.Fatalf("the good request: %s", got.State)
	}
	if len(dead) != 2 {
		t.Fatalf("dead-letter alerts: %v, want 2", dead)
	}
	dl, err := e.store.DeadLetters(e.ctx)
	if err != nil || len(dl) != 2 || dl[0].JobID != "activate:"+bad.ID || dl[1].JobID != "remind:BADJOB01" || dl[1].Job == "" {
		t.Fatalf("dead letters: %+v %v", dl, err)
	}
	audit, _ := e.store.AuditSince(e.ctx, time.Time{}, 0)
	n := 0
	for _, a := range audit {
		if a.Type == bot.EvDeadLetter {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d dead-letter audit records", n)
	}
	// The audit channels hear of each, under an id of its own.
	var lines []string
	for _, ev := range e.rec.events {
		if ev.Type == bot.EvDeadLetter {
			line, ok := bot.AuditLine(ev, time.UTC)
			if !ok || !strings.Contains(line, "DEAD LETTER") || !strings.Contains(line, ev.Request.ParentID) {
				t.Fatalf("audit line %q", line)
			}
			lines = append(lines, line)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("surfaces told of %d dead letters, want 2", len(lines))
	}
	if c, _ := e.store.Claim(e.ctx, now.Add(time.Hour), 10, time.Minute); slices.ContainsFunc(c, func(c bot.Claimed) bool { return c.Err != nil }) {
		t.Fatal("a poison row came back")
	}
}

// A directory call that runs out the job's deadline still gets its retry scheduled: the
// retry is written on a fresh deadline, not the job's expired one.
func TestDeadline_RetryIsScheduledAfterTheJobsDeadline(t *testing.T) {
	e := newEnv(t)
	const lease = 2 * time.Second // the job's deadline is 3/4 of it, in real time
	e.eng = bot.New(bot.Config{Policy: e.pol, Store: e.store, Directory: e.dir, Clock: e.clock, Lease: lease})
	r := e.submit("alice", "sandbox", bot.SubmitInput{})
	e.dir.SetDelay(time.Minute)
	claimed, err := e.store.Claim(e.ctx, e.clock.Now(), 10, time.Hour) // a lease that cannot run out here
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	e.eng.RunClaimed(e.ctx, claimed)
	e.dir.SetDelay(0)
	again, err := e.store.Claim(e.ctx, e.clock.Now().Add(bot.Backoff(1)), 10, time.Minute)
	if err != nil || len(again) != 1 || again[0].Job.Attempt != 1 || again[0].TakenOver {
		t.Fatalf("after the deadline: %+v %v (want the job retried, attempt 1, not taken over)", again, err)
	}
	e.eng.RunClaimed(e.ctx, again)
	if got := e.get(r.ID); got.State != bot.StateActive {
		t.Fatalf("state %s", got.State)
	}
}

// Owner grants need another permanent user owner: Entra refuses to remove the last owner.
func TestOwner_RefusedWithoutAnotherPermanentOwner(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Access: bot.Owner})
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateFailed || !strings.Contains(got.EndReason, "no other permanent user owner") {
		t.Fatalf("state %s reason %q", got.State, got.EndReason)
	}
	if adds, _ := e.dirOps("g-prod"); adds != 0 {
		t.Fatal("the ownership was granted")
	}
}

// If the other owner goes while the grant runs, the removal hits Entra's last-owner rule:
// pimbot alerts at once, with what to do, and keeps trying until it succeeds.
func TestOwner_LastOwnerAtRemovalAlertsAtOnce(t *testing.T) {
	e := newEnv(t)
	dave := e.actor("dave").User
	if err := e.dir.Add(e.ctx, "g-prod", dave.ID, bot.Owner); err != nil {
		t.Fatal(err)
	}
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Access: bot.Owner, Duration: time.Hour})
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if e.get(r.ID).State != bot.StateActive {
		t.Fatal("not active")
	}
	if err := e.dir.Remove(e.ctx, "g-prod", dave.ID, bot.Owner); err != nil { // an admin removes dave
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	e.drain()
	got := e.get(r.ID)
	if got.State != bot.StateActive || !e.holds("alice@example.com", "g-prod", bot.Owner) {
		t.Fatalf("state %s", got.State)
	}
	var alert *bot.Event
	for _, ev := range e.rec.events {
		if ev.Request.ID == r.ID && ev.Type == bot.EvRemovalFailing {
			alert = &ev
		}
	}
	if alert == nil || !strings.Contains(alert.Detail, "last owner") || !strings.Contains(alert.Detail, "Add another permanent owner") {
		t.Fatalf("alert after the first failure: %+v", alert)
	}
	if err := e.dir.Add(e.ctx, "g-prod", dave.ID, bot.Owner); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateEnded || e.holds("alice@example.com", "g-prod", bot.Owner) {
		t.Fatalf("state %s after an owner came back", got.State)
	}
}

// Within the replication lag, "not a member" on a removal is retried, not taken as done:
// the record never says ended while the access is still held.
func TestEnd_ReplicationLagIsRetried(t *testing.T) {
	e := newEnv(t)
	e.dir.SetClock(e.clock.Now)
	e.dir.SetLag(10 * time.Minute)
	e.restart(testPolicy) // the engine reads the directory's lag when it starts
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: 3 * time.Minute})
	e.drain()
	if e.get(r.ID).State != bot.StateActive {
		t.Fatal("not active")
	}
	for i := 0; i < 60 && e.get(r.ID).State != bot.StateEnded; i++ {
		e.clock.Advance(30 * time.Second)
		e.drain()
		if got := e.get(r.ID); got.State == bot.StateEnded && e.holds("alice@example.com", "g-sandbox", bot.Member) {
			t.Fatalf("ended at %s while the access is still held", e.clock.Now())
		}
	}
	if e.get(r.ID).State != bot.StateEnded || e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatal("not removed once the lag had passed")
	}
}

// An add answered "not found" within minutes (a user or group created minutes ago, not yet
// replicated) is retried, not failed.
func TestStart_NotFoundWithinTheLagIsRetried(t *testing.T) {
	e := newEnv(t)
	e.dir.SetLag(time.Minute)
	e.restart(testPolicy)
	n := 0
	e.dir.SetFault(func(op, group, _ string) error {
		if op == "add" && n < 2 {
			n++
			return fmt.Errorf("group %s does not exist: %w", group, bot.ErrNotFound)
		}
		return nil
	})
	r := e.submit("alice", "sandbox", bot.SubmitInput{})
	for i := 0; i < 5 && e.get(r.ID).State != bot.StateActive; i++ {
		e.drain()
		if got := e.get(r.ID); got.State == bot.StateFailed {
			t.Fatalf("failed on a 404 seconds after the add: %q", got.LastError)
		}
		e.clock.Advance(10 * time.Second)
	}
	if got := e.get(r.ID); got.State != bot.StateActive {
		t.Fatalf("state %s", got.State)
	}
}

// A disabled account can neither request nor approve.
func TestDisabledAccount_CannotRequestOrApprove(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.actor("alice"), e.actor("bob")
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	r = e.get(r.ID)
	if err := e.dir.SetDisabled("bob@example.com", true); err != nil {
		t.Fatal(err)
	}
	var pe *bot.PermissionError
	if _, err := e.eng.Approve(e.ctx, bob, r.ID); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "disabled") {
		t.Fatalf("disabled approver: %v", err)
	}
	if got := e.get(r.ID); got.Version != r.Version {
		t.Fatal("a refused approval changed the request")
	}
	if err := e.dir.SetDisabled("alice@example.com", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "quorum", Reason: "x"}); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "disabled") {
		t.Fatalf("disabled requester: %v", err)
	}
	if _, err := e.eng.Approve(e.ctx, e.actor("carol"), r.ID); err != nil {
		t.Fatalf("an enabled approver: %v", err)
	}
}
