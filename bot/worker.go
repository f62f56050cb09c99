package bot

import (
	"context"
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
	NotifyAttempts  = 6          // a notification that does not matter (NotifyMatters) is dropped after this many failures
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
func (e *Engine) Run(ctx context.Context) {
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
			return
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

func (a *acker) close() { close(a.ids); <-a.done }

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
	snap := &Request{ID: eventID("dead", now, c.Job.ID), ParentID: c.Job.RequestID, CreatedAt: now,
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
	done := map[string]bool{} // jobs of this group finished (acks batched, maybe not stored yet)
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
		jctx = context.WithValue(jctx, groupDoneKey{}, done)
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
			done[c.Job.ID] = true
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
	case JobReview:
		return e.runReview(ctx, c)
	case JobPIMExtend:
		return e.runPIMExtend(ctx, c)
	}
	return true, fmt.Errorf("unknown job kind %q", j.Kind)
}

// notifyGiveUp says why a notification that matters and failed is no longer worth retrying
// ("" to retry it).
func (e *Engine) notifyGiveUp(ctx context.Context, j Job) string {
	var cur *Request
	if ev := j.Event; ev.Request != nil && ev.Request.Version > 0 && e.clock.Now().Sub(ev.At) <= NotifyMaxAge {
		sctx, cancel := storeCtx(ctx)
		r, err := e.store.Get(sctx, j.RequestID)
		cancel()
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return "" // the store did not answer: keep trying
		default:
			cur = r
		}
	}
	return notifyOver(*j.Event, cur, e.clock.Now())
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
