package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Worker tuning. Named so that operators and tests can reason about them.
const (
	ClaimBatch      = 200              // jobs claimed per round trip
	JobLease        = 60 * time.Second // a claim not acknowledged by then is re-delivered
	JobTimeoutEach  = 30 * time.Second // one job's deadline (directory call included)
	PollInterval    = 500 * time.Millisecond
	WorkerParallel  = ClaimBatch // requests whose jobs run at once per process (the directory bounds its own calls)
	AlertAfter      = 3          // failed removals before people are alerted
	NotifyAttempts  = 6          // a notification is dropped (and logged) after this many failures
	maxRetryBackoff = 5 * time.Minute
)

// Backoff is the delay before retry number attempt (1-based): 2s, 4s, 8s ... up to 5 minutes.
func Backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 20 {
		return maxRetryBackoff
	}
	d := time.Second << attempt
	if d > maxRetryBackoff {
		return maxRetryBackoff
	}
	return d
}

// Run claims and runs due jobs until ctx ends. Many processes may run it on one store.
// It claims only as many jobs as it has free slots and claims again as soon as slots free
// up, so one slow job (a throttled Graph call) never holds back the rest of its batch.
// On return, every job it claimed has run (jobs in flight finish within their deadline) or,
// when ctx ended before it started, has been handed back to the queue.
func (e *Engine) Run(ctx context.Context) error {
	slots := make(chan struct{}, WorkerParallel)
	freed := make(chan struct{}, 1)
	acks := e.newAcker(ctx)
	gc := newGroupCommit(e.store)
	ctx = withGroupCommit(ctx, gc)
	var wg sync.WaitGroup
	defer func() { wg.Wait(); gc.close(); acks.close() }()
	var failing time.Duration // how long the queue has been failing; 0 when healthy
	for {
		if ctx.Err() != nil {
			return nil
		}
		limit := min(cap(slots)-len(slots), ClaimBatch)
		n, err := 0, error(nil)
		if limit > 0 {
			n, err = e.dispatch(ctx, limit, slots, freed, &wg, acks.add)
		}
		switch {
		case err != nil && failing == 0:
			e.log.Warn("job queue unavailable; retrying until it answers", "err", err)
			failing = e.poll
		case err != nil:
			failing = min(2*failing, 5*time.Second)
		case failing > 0:
			e.log.Info("job queue answers again; resuming")
			failing = 0
		}
		if limit > 0 && n >= limit {
			continue // more may be due
		}
		wait := e.poll
		if failing > 0 {
			wait = failing
		} else if next, err := e.store.NextDue(ctx); err == nil && !next.IsZero() {
			if d := next.Sub(e.clock.Now()); d < wait {
				wait = max(d, 5*time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-e.kick:
		case <-t.C:
		case <-freed:
		}
		t.Stop()
	}
}

// dispatch claims up to limit jobs and starts them, one goroutine per request.
func (e *Engine) dispatch(ctx context.Context, limit int, slots, freed chan struct{}, wg *sync.WaitGroup, ack func(Lease)) (int, error) {
	now := e.clock.Now()
	claimed, err := e.store.Claim(ctx, now, limit, e.lease)
	if err != nil {
		return 0, fmt.Errorf("claim jobs: %w", err)
	}
	for _, group := range e.groupClaims(ctx, claimed) {
		slots <- struct{}{} // never blocks: at most limit groups, and limit slots were free
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.runGroup(ctx, now, group, ack)
			<-slots
			select {
			case freed <- struct{}{}:
			default:
			}
		}()
	}
	return len(claimed), nil
}

// acker acknowledges finished jobs in batches (one round trip for many notifications).
type acker struct {
	ids  chan Lease
	done chan struct{}
}

// storeCallTimeout bounds each bookkeeping call to Redis (acks, retries, hand-backs), which
// run on a context of their own so that they also work after the job's deadline passed.
const storeCallTimeout = 5 * time.Second

// storeCtx is a fresh deadline for a bookkeeping call, independent of the caller's.
func storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeCallTimeout)
}

func (e *Engine) newAcker(ctx context.Context) *acker {
	a := &acker{ids: make(chan Lease, 1024), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		var batch []Lease
		flush := func() {
			if len(batch) == 0 {
				return
			}
			sctx, cancel := storeCtx(ctx)
			defer cancel()
			if err := e.store.Commit(sctx, &Tx{Ack: batch}); err != nil {
				e.log.Warn("ack jobs (they will be re-delivered)", "n", len(batch), "err", err)
			}
			batch = nil
		}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case id, ok := <-a.ids:
				if !ok {
					flush()
					return
				}
				if batch = append(batch, id); len(batch) >= 100 {
					flush()
				}
			case <-t.C:
				flush()
			}
		}
	}()
	return a
}

func (a *acker) add(l Lease) { a.ids <- l }
func (a *acker) close()      { close(a.ids); <-a.done }

// groupClaims groups claimed jobs by request, each group in order: the jobs of one request
// run in order (its notifications arrive in the order things happened); different requests
// run in parallel. Poison rows (already dead-lettered by the store) are alerted on here.
func (e *Engine) groupClaims(ctx context.Context, claimed []Claimed) [][]Claimed {
	var order []string
	byReq := map[string][]Claimed{}
	for _, c := range claimed {
		if c.Err != nil {
			e.deadLettered(ctx, c)
			continue
		}
		if c.TakenOver && e.hooks.TakenOver != nil {
			e.hooks.TakenOver()
		}
		if _, ok := byReq[c.Job.RequestID]; !ok {
			order = append(order, c.Job.RequestID)
		}
		byReq[c.Job.RequestID] = append(byReq[c.Job.RequestID], c)
	}
	out := make([][]Claimed, 0, len(order))
	for _, rid := range order {
		group := byReq[rid]
		sort.SliceStable(group, func(i, j int) bool { return jobBefore(group[i].Job, group[j].Job) })
		out = append(out, group)
	}
	return out
}

// EvDeadLetter is the audit type of a job moved out of the queue because it (or its request)
// could not be decoded.
const EvDeadLetter = "dead_letter"

// deadLettered raises the alarm about a poison row: an error log, the metric hook, an audit
// record and a line in the audit channels. The job no longer runs; if it was a removal, the
// grant stays until an operator repairs the record and puts the job back (docs/operations.md).
func (e *Engine) deadLettered(ctx context.Context, c Claimed) {
	e.log.Error("job could not be decoded; moved to the dead-letter set (other jobs keep running)",
		"job", c.Job.ID, "request_id", c.Job.RequestID, "err", c.Err)
	if e.hooks.DeadLettered != nil {
		e.hooks.DeadLettered(c.Job.Kind)
	}
	now := e.clock.Now()
	detail := "job " + c.Job.ID + " (request " + c.Job.RequestID + ") could not be read and was moved to the dead-letter set; " +
		"if it was a removal, the access stays until an operator repairs it: " + c.Err.Error()
	tx := &Tx{Audit: []AuditRecord{{At: now, Type: EvDeadLetter, RequestID: c.Job.RequestID, Actor: "pimbot", Surface: "pimbot", Detail: detail}}}
	// The surfaces hear of it under an id of its own: a notification job under the request's
	// id would read the unreadable record again.
	sum := sha256.Sum256([]byte(c.Job.ID + "|" + now.UTC().Format(time.RFC3339Nano)))
	snap := &Request{ID: "dead-" + hex.EncodeToString(sum[:6]), ParentID: c.Job.RequestID, CreatedAt: now,
		Requester: User{Name: "unreadable record"}}
	ev := Event{Type: EvDeadLetter, Request: snap, At: now, Detail: detail}
	tx.Schedule = e.announce(ev)
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := e.store.Commit(sctx, tx); err != nil {
		e.log.Warn("record a dead-lettered job", "job", c.Job.ID, "err", err)
	}
}

// leaseMargin is how long before its lease runs out a job stops starting directory calls:
// a call started later could still be running when another replica takes the job over.
const leaseMargin = 5 * time.Second

// jobDeadline is when a claimed job must have finished: its own time limit, and never past
// its lease (minus the margin), measured on the engine's clock.
func (e *Engine) jobDeadline(c Claimed) time.Duration {
	d := min(JobTimeoutEach, e.lease*3/4)
	if !c.LeaseUntil.IsZero() {
		d = min(d, c.LeaseUntil.Sub(e.clock.Now())-e.margin())
	}
	return d
}

func (e *Engine) margin() time.Duration { return min(leaseMargin, e.lease/4) }

// mayAct reports whether the claim may still start a directory call: its lease has not run
// (nearly) out. The fenced commit that precedes each call checks that no other claim took over.
func (e *Engine) mayAct(c Claimed) error {
	if !c.LeaseUntil.IsZero() && !e.clock.Now().Before(c.LeaseUntil.Add(-e.margin())) {
		return fmt.Errorf("job %s: lease (nearly) ran out; not starting a directory call: %w", c.Job.ID, ErrFenced)
	}
	return nil
}

// runGroup runs one request's jobs in order and reports those to acknowledge.
// The first job starts at once; when ctx ends (shutdown) while a job runs, the jobs of the
// group after it are handed back to the queue, due at once, for another replica (or this
// one's next start).
func (e *Engine) runGroup(ctx context.Context, now time.Time, group []Claimed, ack func(Lease)) {
	for i, c := range group {
		if i > 0 && ctx.Err() != nil {
			ls := make([]Lease, 0, len(group)-i)
			for _, rest := range group[i:] {
				ls = append(ls, rest.Lease())
			}
			sctx, cancel := storeCtx(ctx)
			if err := e.store.Release(sctx, ls); err != nil {
				e.log.Warn("hand back unstarted jobs (they run when their lease runs out)", "request_id", c.Job.RequestID, "n", len(ls), "err", err)
			}
			cancel()
			return
		}
		// A job in flight finishes even during shutdown, within its own deadline, which
		// ends before its lease does, so a slow job is never run twice at once.
		d := e.jobDeadline(c)
		if d <= 0 {
			return // its lease is (nearly) over: it is re-delivered; nothing is started late
		}
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
		ok, err := e.runJob(jctx, c)
		cancel()
		if e.hooks.JobDone != nil {
			e.hooks.JobDone(c.Job.Kind, now.Sub(c.Job.Due), err)
		}
		switch {
		case errors.Is(err, ErrFenced):
			e.log.Warn("job lease taken over or run out; leaving the job to its new holder", "job", c.Job.ID, "request_id", c.Job.RequestID, "err", err)
			return
		case err != nil:
			e.log.Warn("job failed", "job", c.Job.ID, "request_id", c.Job.RequestID, "attempt", c.Job.Attempt, "err", err)
		}
		if ok {
			ack(c.Lease())
		}
	}
}

// RunDue claims one batch of due jobs and runs them to completion; it returns how many it
// claimed. Tests with an injected clock call it directly.
func (e *Engine) RunDue(ctx context.Context) (int, error) {
	claimed, err := e.store.Claim(ctx, e.clock.Now(), ClaimBatch, e.lease)
	if err != nil {
		return 0, fmt.Errorf("claim jobs: %w", err)
	}
	e.RunClaimed(ctx, claimed)
	return len(claimed), nil
}

// RunClaimed runs jobs claimed earlier (by RunDue, or by a test that holds a claim past its
// lease) to completion and acknowledges those that are done.
func (e *Engine) RunClaimed(ctx context.Context, claimed []Claimed) {
	now := e.clock.Now()
	gc := newGroupCommit(e.store)
	defer gc.close()
	ctx = withGroupCommit(ctx, gc)
	var (
		mu   sync.Mutex
		acks []Lease
		wg   sync.WaitGroup
	)
	for _, group := range e.groupClaims(ctx, claimed) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.runGroup(ctx, now, group, func(l Lease) { mu.Lock(); acks = append(acks, l); mu.Unlock() })
		}()
	}
	wg.Wait()
	if len(acks) > 0 {
		sctx, cancel := storeCtx(ctx)
		defer cancel()
		if err := e.store.Commit(sctx, &Tx{Ack: acks}); err != nil {
			e.log.Warn("ack jobs (they will be re-delivered)", "n", len(acks), "err", err)
		}
	}
}

// jobBefore orders the jobs of one request: by due time, then by the version of the
// request each notification describes.
func jobBefore(a, b Job) bool {
	if !a.Due.Equal(b.Due) {
		return a.Due.Before(b.Due)
	}
	if a.Event != nil && b.Event != nil {
		return a.Event.Request.Version < b.Event.Request.Version
	}
	return a.Event == nil && b.Event != nil
}

// runJob runs one job. It returns ack=true when the caller should acknowledge the job
// (jobs that commit their own transition acknowledge inside that commit).
func (e *Engine) runJob(ctx context.Context, c Claimed) (ack bool, err error) {
	j := c.Job
	if j.Kind == JobNotify {
		return e.runNotify(ctx, c)
	}
	if c.Request == nil {
		// The request expired out of retention or never existed: nothing to do.
		return true, nil
	}
	switch j.Kind {
	case JobActivate:
		return e.runActivate(ctx, c)
	case JobEnd:
		return e.runEnd(ctx, c)
	case JobTimeout:
		return e.runTimeout(ctx, c)
	case JobRemind:
		return e.runRemind(ctx, c)
	case JobMFAPoll:
		return e.runMFAPoll(ctx, c)
	}
	return true, fmt.Errorf("unknown job kind %q", j.Kind)
}

func (e *Engine) runNotify(ctx context.Context, c Claimed) (bool, error) {
	j := c.Job
	n, ok := e.notifiers[j.Notifier]
	if !ok || j.Event == nil {
		return true, nil // a surface that is no longer configured
	}
	if err := e.mayAct(c); err != nil {
		return false, err
	}
	if err := n.Notify(ctx, *j.Event); err != nil {
		if j.Attempt+1 >= NotifyAttempts {
			return true, fmt.Errorf("notify %s of %s: giving up after %d attempts: %w", j.Notifier, j.Event.Type, NotifyAttempts, err)
		}
		return false, e.retryAt(ctx, c, e.clock.Now().Add(Backoff(j.Attempt+1)), fmt.Errorf("notify %s of %s: %w", j.Notifier, j.Event.Type, err))
	}
	return true, nil
}

var system = Actor{User: User{ID: "pimbot", Name: "pimbot"}, Surface: "pimbot"}

// commitJob commits a job's transition and acknowledges the job, only while the claim still
// holds the job's lease (ErrFenced otherwise, nothing written). On a concurrent change of the
// request it returns ErrConflict so that the job re-reads and decides again. It runs on a
// fresh deadline: the directory call before it may have used up the job's, and what the
// directory did must still be recorded (the fence keeps a late commit harmless).
func (e *Engine) commitJob(ctx context.Context, c Claimed, tx *Tx) error {
	l := c.Lease()
	tx.Fence, tx.Ack = &l, append(tx.Ack, l)
	if err := e.commit(ctx, tx); err != nil {
		return err
	}
	e.Kick()
	return nil
}

// intend records, fenced by the claim, what the job is about to ask of the directory, so
// that no other decision (an extension, a cancel, another replica's run) can be taken on a
// stale copy meanwhile. It returns the record as stored.
func (e *Engine) intend(ctx context.Context, c Claimed, cur, next *Request) (*Request, error) {
	l := c.Lease()
	if err := e.commit(ctx, &Tx{Puts: []Put{{Request: next, Expect: cur.Version}}, Fence: &l}); err != nil {
		return nil, err
	}
	next.Version = cur.Version + 1
	return next, nil
}

// reread loads the request again after a conflict.
func (e *Engine) reread(ctx context.Context, r *Request) (*Request, error) {
	x, err := e.store.Get(ctx, r.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return x, err
}

// DefaultReplicationLag is how long after an add the directory may still answer "not a
// member" unless it says otherwise (Lagging): Entra replicates directory writes, and a read
// or delete can reach a replica that has not seen the add yet ("Designing for eventual
// consistency for Microsoft Entra"). A removal answered "not held" within it is retried,
// never taken as done.
const DefaultReplicationLag = 5 * time.Minute

// lagRetry is the delay before re-trying a call that replication lag may have refused.
func lagRetry(attempt int) time.Duration { return min(Backoff(attempt), 30*time.Second) }

// runActivate adds the grant at its start. The request is first judged again against the
// policy in force and the directory's state, and the intent to add is recorded (fenced by the
// claim) before the directory is called. If the request was canceled meanwhile it makes sure
// nothing is granted (an earlier run may have added it just before) and releases the open lock.
func (e *Engine) runActivate(ctx context.Context, c Claimed) (bool, error) {
	r := c.Request
	for attempt := 0; attempt < 5; attempt++ {
		if r == nil {
			return true, nil
		}
		now := e.clock.Now()
		var err error
		switch {
		case r.State == StateScheduled && r.Start.After(now.Add(time.Second)):
			return true, nil // moved later; the job was rescheduled
		case r.State == StateScheduled:
			g, gerr := e.groupOf(r)
			if gerr != nil {
				err = e.refuseAtStart(ctx, c, r, fmt.Sprintf("the group %s is no longer in the policy: it was removed, or its id changed", r.Group))
				break
			}
			if r.Grant == GrantNone {
				if r, err = e.prepareAdd(ctx, c, r, g); err != nil || r == nil || r.Grant != GrantAdding {
					break
				}
			}
			if err = e.mayAct(c); err != nil {
				return false, err
			}
			if aerr := e.dir.Add(ctx, r.GroupID, r.Requester.ID, r.Access); aerr != nil {
				return e.activateFailed(ctx, c, r, aerr)
			}
			a := r.Clone()
			a.State, a.Grant, a.ActivatedAt, a.EndsAt = StateActive, GrantHeld, now, now.Add(r.Duration)
			a.Failures, a.LastError = 0, ""
			tx := &Tx{Puts: []Put{{Request: a, Expect: r.Version}},
				Schedule: []Job{{ID: JobID(JobEnd, r.ID), Kind: JobEnd, RequestID: r.ID, Due: a.EndsAt}}}
			if rj, ok := remindJob(a, g); ok {
				tx.Schedule = append(tx.Schedule, rj)
			}
			e.emit(tx, Event{Type: EvActivated, Request: a, At: now}, system)
			err = e.commitJob(ctx, c, tx)
		case r.State.Terminal() && r.ActivatedAt.IsZero():
			// Canceled (or refused) before activation: undo a possible add of an earlier run.
			if r.Grant == GrantAdding {
				if err = e.mayAct(c); err != nil {
					return false, err
				}
				if rerr := e.dir.Remove(ctx, r.GroupID, r.Requester.ID, r.Access); rerr != nil && !e.notHeldForGood(rerr, r.AddedAt, now) {
					return false, e.retryAt(ctx, c, now.Add(e.removeRetryDelay(c.Job.Attempt+1, rerr)), rerr)
				}
				x := r.Clone()
				x.Grant = GrantRemoved
				err = e.commitJob(ctx, c, &Tx{Puts: []Put{{Request: x, Expect: r.Version}}, OpenUnlock: []Lock{lockOf(r)}})
			} else {
				err = e.commitJob(ctx, c, &Tx{OpenUnlock: []Lock{lockOf(r)}})
			}
		default:
			return true, nil // already active (a re-delivered job) or ended
		}
		if errors.Is(err, ErrConflict) {
			if r, err = e.reread(ctx, r); err != nil {
				return false, err
			}
			continue
		}
		return false, err
	}
	return false, fmt.Errorf("activate %s: the request kept changing", c.Job.RequestID)
}

// prepareAdd judges a scheduled request again at its start, against the policy then in force
// and what the directory holds, and records the intent to add. It returns the request as
// stored: Grant is GrantAdding when the add may go ahead; otherwise the request was refused.
func (e *Engine) prepareAdd(ctx context.Context, c Claimed, r *Request, g *Group) (*Request, error) {
	reason, clipped, err := e.judgeAtStart(ctx, r, g)
	if err != nil {
		return nil, e.retryAt(ctx, c, e.clock.Now().Add(retryDelay(c.Job.Attempt+1, err)), err)
	}
	if reason != "" {
		return r, e.refuseAtStart(ctx, c, r, reason)
	}
	if err := e.mayAct(c); err != nil {
		return nil, err
	}
	held, err := e.dir.Holds(ctx, r.GroupID, r.Requester.ID, r.Access)
	if err != nil {
		return nil, e.retryAt(ctx, c, e.clock.Now().Add(retryDelay(c.Job.Attempt+1, err)), fmt.Errorf("read %s of %s: %w", r.Access, r.Group, err))
	}
	if held {
		// Standing access is never pimbot's to take away: grant nothing, remove nothing.
		return r, e.refuseAtStart(ctx, c, r, fmt.Sprintf("you already hold %s of %s outside pimbot (standing access); pimbot grants nothing and will never remove it", r.Access, r.Group))
	}
	if r.Access == Owner {
		ok, err := e.otherPermanentOwner(ctx, r)
		if err != nil {
			return nil, e.retryAt(ctx, c, e.clock.Now().Add(retryDelay(c.Job.Attempt+1, err)), err)
		}
		if !ok {
			return r, e.refuseAtStart(ctx, c, r, fmt.Sprintf("%s has no other permanent user owner; Entra refuses to remove the last owner, so the ownership could never end. Ask its administrators to add a permanent owner first", r.Group))
		}
	}
	next := r.Clone()
	next.Grant, next.AddedAt = GrantAdding, e.clock.Now()
	if clipped > 0 {
		next.Duration = clipped
	}
	return e.intend(ctx, c, r, next)
}

// judgeAtStart checks a request again when it is due to start, against the policy in force
// then: the requester's account, eligibility, the access, approval and MFA the group asks
// for now. It returns why the request no longer qualifies (empty when it does) and, when the
// group now allows less time, the shorter duration.
func (e *Engine) judgeAtStart(ctx context.Context, r *Request, g *Group) (reason string, clipped time.Duration, err error) {
	u, err := e.dir.ResolveUser(ctx, r.Requester.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		return "your account no longer exists in the directory", 0, nil
	case err != nil:
		return "", 0, fmt.Errorf("look up %s: %w", r.Requester.Handle(), err)
	case u.Disabled:
		return "your directory account is disabled", 0, nil
	}
	if !g.Allows(r.Access) {
		return fmt.Sprintf("%s no longer allows %s (it allows %s)", g.Name, r.Access, accessList(g.Access)), 0, nil
	}
	eligible, err := e.IsEligible(ctx, u, g)
	if err != nil {
		return "", 0, err
	}
	if !eligible {
		return fmt.Sprintf("you are no longer eligible for %s", g.Name), 0, nil
	}
	if g.RequireApproval && len(r.Approvals) < g.ApprovalsRequired {
		return fmt.Sprintf("%s now needs %d approval(s) and this request has %d; request it again", g.Name, g.ApprovalsRequired, len(r.Approvals)), 0, nil
	}
	if g.RequireMFA && r.MFAVerifiedAt.IsZero() {
		return fmt.Sprintf("%s now requires MFA verification; request it again", g.Name), 0, nil
	}
	if r.Duration > g.MaxDuration {
		clipped = g.MaxDuration
	}
	return "", clipped, nil
}

// otherPermanentOwner reports whether the group has a user owner other than the requester
// who does not hold the ownership through pimbot (and so will still be there when this
// grant ends). Without a directory that lists holders, it cannot tell and says yes.
func (e *Engine) otherPermanentOwner(ctx context.Context, r *Request) (bool, error) {
	ml, ok := e.dir.(MemberLister)
	if !ok {
		return true, nil
	}
	owners, err := ml.Holders(ctx, r.GroupID, Owner)
	if err != nil {
		return false, fmt.Errorf("list owners of %s: %w", r.Group, err)
	}
	open, err := e.store.OpenRequests(ctx)
	if err != nil {
		return false, fmt.Errorf("read open grants: %w", err)
	}
	for _, o := range owners {
		if o.ID == r.Requester.ID {
			continue
		}
		if _, viaPimbot := open[o.ID+"|"+r.GroupID+"|"+string(Owner)]; !viaPimbot {
			return true, nil
		}
	}
	return false, nil
}

// refuseAtStart ends a scheduled request that no longer qualifies at its start (or whose
// group is gone). An add that may already have happened is undone first, so a refusal never
// leaves access behind. The requester and the approvers are told (EvFailed), with the reason.
func (e *Engine) refuseAtStart(ctx context.Context, c Claimed, r *Request, reason string) error {
	now := e.clock.Now()
	grant := r.Grant
	if r.Grant == GrantAdding {
		if err := e.mayAct(c); err != nil {
			return err
		}
		if err := e.dir.Remove(ctx, r.GroupID, r.Requester.ID, r.Access); err != nil && !e.notHeldForGood(err, r.AddedAt, now) {
			return e.retryAt(ctx, c, now.Add(e.removeRetryDelay(c.Job.Attempt+1, err)), err)
		}
		grant = GrantRemoved
	}
	f := r.Clone()
	f.State, f.Grant, f.EndedAt, f.EndReason = StateFailed, grant, now, reason
	tx := &Tx{Puts: []Put{{Request: f, Expect: r.Version}}, OpenUnlock: []Lock{lockOf(r)}}
	e.emit(tx, Event{Type: EvFailed, Request: f, At: now, Detail: reason}, system)
	return e.commitJob(ctx, c, tx)
}

// addedAt is when the add was first asked for (ActivatedAt for records written before
// AddedAt existed).
func (r *Request) addedAt() time.Time {
	if r.AddedAt.IsZero() {
		return r.ActivatedAt
	}
	return r.AddedAt
}

// notHeldForGood reports whether a removal error means the access is gone: the directory
// says it is not held, and the add (at addedAt) is old enough that this is not replication lag.
func (e *Engine) notHeldForGood(err error, addedAt, now time.Time) bool {
	return errors.Is(err, ErrNotHeld) && (addedAt.IsZero() || now.Sub(addedAt) >= e.lag)
}

// removeRetryDelay is the wait before retrying a removal: short while replication lag may
// be the cause, the usual backoff otherwise.
func (e *Engine) removeRetryDelay(attempt int, cause error) time.Duration {
	if errors.Is(cause, ErrNotHeld) {
		return lagRetry(attempt)
	}
	return retryDelay(attempt, cause)
}

func (e *Engine) activateFailed(ctx context.Context, c Claimed, r *Request, cause error) (bool, error) {
	j := c.Job
	now := e.clock.Now()
	if errors.Is(cause, ErrNotFound) && now.Sub(r.AddedAt) < e.lag {
		// A user or group created minutes ago may not have reached every replica yet.
		return false, e.retryAt(ctx, c, now.Add(lagRetry(j.Attempt+1)), fmt.Errorf("may be replication lag: %w", cause))
	}
	if errors.Is(cause, ErrForbidden) || errors.Is(cause, ErrNotFound) {
		// The add was refused: nothing is held, so nothing needs to be removed.
		f := r.Clone()
		f.State, f.Grant, f.EndedAt, f.EndReason, f.LastError = StateFailed, GrantNone, now, "the directory refused the grant", cause.Error()
		tx := &Tx{Puts: []Put{{Request: f, Expect: r.Version}}, OpenUnlock: []Lock{lockOf(r)}}
		e.emit(tx, Event{Type: EvFailed, Request: f, At: now, Detail: cause.Error()}, system)
		return false, errors.Join(cause, e.commitJob(ctx, c, tx))
	}
	if j.Attempt+1 == 2 {
		// Tell people once that activation is delayed; the job keeps retrying.
		f := r.Clone()
		f.Failures, f.LastError = j.Attempt+1, cause.Error()
		l := c.Lease()
		tx := &Tx{Puts: []Put{{Request: f, Expect: r.Version}}, Fence: &l}
		e.emit(tx, Event{Type: EvDelayed, Request: f, At: now, Detail: cause.Error()}, system)
		if err := e.commit(ctx, tx); err != nil && !errors.Is(err, ErrConflict) {
			return false, errors.Join(cause, err)
		}
	}
	return false, e.retryAt(ctx, c, now.Add(retryDelay(j.Attempt+1, cause)), cause)
}

// retryAfter is an error that says how long to wait (Graph's Retry-After on a 429 or 503).
type retryAfter interface{ RetryDelay() time.Duration }

// retryDelay is the backoff for the job's next attempt, or longer when the directory asked
// for longer (never more than the longest backoff).
func retryDelay(attempt int, cause error) time.Duration {
	d := Backoff(attempt)
	var ra retryAfter
	if errors.As(cause, &ra) {
		d = max(d, min(ra.RetryDelay(), maxRetryBackoff))
	}
	return d
}

// retryAt puts the claimed job back in the queue for another attempt at the given time, on a
// fresh deadline (the job's own may have run out: that is often why it failed). It returns
// cause, annotated; ErrFenced if the claim was taken over meanwhile.
func (e *Engine) retryAt(ctx context.Context, c Claimed, at time.Time, cause error) error {
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := e.store.Retry(sctx, c.Lease(), c.Job, at); err != nil {
		return errors.Join(cause, fmt.Errorf("reschedule: %w", err))
	}
	return fmt.Errorf("attempt %d, next at %s: %w", c.Job.Attempt+1, at.UTC().Format(time.TimeOnly), cause)
}

// runEnd removes the grant at its end. The intent to remove is recorded first (fenced by the
// claim), so an extension approved at the same moment either lands before (and the end
// moves) or is refused; never both. A failed removal is never dropped: it is retried with
// backoff for as long as it takes, and people are alerted.
func (e *Engine) runEnd(ctx context.Context, c Claimed) (bool, error) {
	r := c.Request
	for attempt := 0; attempt < 5; attempt++ {
		if r == nil {
			return true, nil
		}
		now := e.clock.Now()
		if r.State != StateActive {
			return true, nil
		}
		var err error
		if r.Grant != GrantRemoving {
			if r.EndsAt.After(now.Add(time.Second)) {
				return true, nil // extended: the job was moved to the new end
			}
			x := r.Clone()
			x.Grant = GrantRemoving
			if x.EndReason == "" {
				x.EndReason = "expired"
			}
			if r, err = e.intend(ctx, c, r, x); errors.Is(err, ErrConflict) {
				if r, err = e.reread(ctx, c.Request); err != nil {
					return false, err
				}
				continue
			} else if err != nil {
				return false, err
			}
		}
		if err := e.mayAct(c); err != nil {
			return false, err
		}
		if err := e.dir.Remove(ctx, r.GroupID, r.Requester.ID, r.Access); err != nil && !e.notHeldForGood(err, r.addedAt(), now) {
			if errors.Is(err, ErrNotHeld) {
				// Within minutes of the add a "not a member" may come from a lagging replica:
				// try again shortly, without alerting anyone yet.
				return false, e.retryAt(ctx, c, now.Add(lagRetry(c.Job.Attempt+1)), fmt.Errorf("may be replication lag: %w", err))
			}
			return false, e.removalFailed(ctx, c, r, err)
		}
		x := r.Clone()
		x.State, x.Grant, x.EndedAt, x.Failures, x.LastError = StateEnded, GrantRemoved, now, 0, ""
		tx := &Tx{Puts: []Put{{Request: x, Expect: r.Version}}, Unschedule: []string{JobID(JobRemind, r.ID)}, OpenUnlock: []Lock{lockOf(r)}}
		e.emit(tx, Event{Type: EvEnded, Request: x, At: now, Detail: x.EndReason}, system)
		err = e.commitJob(ctx, c, tx)
		if errors.Is(err, ErrConflict) {
			if r, err = e.reread(ctx, r); err != nil {
				return false, err
			}
			continue
		}
		return false, err
	}
	return false, fmt.Errorf("end %s: the request kept changing", c.Job.RequestID)
}

// removalFailed alerts people (after AlertAfter failures, then every tenth; at once when
// Entra refuses to remove the last owner, which only a person can fix) and retries.
func (e *Engine) removalFailed(ctx context.Context, c Claimed, r *Request, cause error) error {
	now := e.clock.Now()
	n := c.Job.Attempt + 1
	lastOwner := errors.Is(cause, ErrLastOwner)
	if n == AlertAfter || (n > AlertAfter && n%10 == 0) || (lastOwner && (n == 1 || n%10 == 0)) {
		detail := fmt.Sprintf("removal failed %d times; retrying: %v", n, cause)
		if lastOwner {
			detail = fmt.Sprintf("Entra refuses to remove %s because they are the last owner of %s. Add another permanent owner to the group; pimbot keeps retrying and removes them as soon as it can (attempt %d)", r.Requester.Handle(), r.Group, n)
		}
		f := r.Clone()
		f.Failures, f.LastError = n, cause.Error()
		l := c.Lease()
		tx := &Tx{Puts: []Put{{Request: f, Expect: r.Version}}, Fence: &l}
		e.emit(tx, Event{Type: EvRemovalFailing, Request: f, At: now, Detail: detail}, system)
		if cerr := e.commit(ctx, tx); cerr != nil && !errors.Is(cerr, ErrConflict) {
			cause = errors.Join(cause, cerr)
		}
	}
	return e.retryAt(ctx, c, now.Add(e.removeRetryDelay(n, cause)), cause)
}

func (e *Engine) runTimeout(ctx context.Context, c Claimed) (bool, error) {
	r := c.Request
	now := e.clock.Now()
	if r.State != StatePending && r.State != StateVerifying {
		return true, nil
	}
	t := r.Clone()
	t.State, t.EndedAt, t.EndReason = StateTimedOut, now, "nobody decided in time"
	if r.State == StateVerifying {
		t.EndReason = "the requester did not complete MFA in time"
	}
	tx := &Tx{Puts: []Put{{Request: t, Expect: r.Version}}, OpenUnlock: []Lock{lockOf(r)}}
	e.emit(tx, Event{Type: EvTimedOut, Request: t, At: now}, system)
	err := e.commitJob(ctx, c, tx)
	if errors.Is(err, ErrConflict) {
		return false, nil // decided meanwhile; the job is re-delivered and finds it so
	}
	return false, err
}

func (e *Engine) runRemind(ctx context.Context, c Claimed) (bool, error) {
	r := c.Request
	g, err := e.groupOf(r)
	if err != nil || r.State != StateActive || r.Ending() {
		return true, nil
	}
	now := e.clock.Now()
	if r.EndsAt.Add(-g.ReminderBefore).After(now.Add(time.Second)) {
		return true, nil // extended; a new reminder is scheduled
	}
	tx := &Tx{}
	e.emit(tx, Event{Type: EvReminder, Request: r, At: now}, system)
	return false, e.commitJob(ctx, c, tx)
}
