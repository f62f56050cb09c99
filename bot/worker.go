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
	var wg sync.WaitGroup
	defer func() { wg.Wait(); acks.close() }()
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
func (e *Engine) dispatch(ctx context.Context, limit int, slots, freed chan struct{}, wg *sync.WaitGroup, ack func(string)) (int, error) {
	now := e.clock.Now()
	claimed, err := e.store.Claim(ctx, now, limit, e.lease)
	if err != nil {
		return 0, fmt.Errorf("claim jobs: %w", err)
	}
	for _, group := range e.groupClaims(claimed) {
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
	ids  chan string
	done chan struct{}
}

func (e *Engine) newAcker(ctx context.Context) *acker {
	a := &acker{ids: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		var batch []string
		flush := func() {
			if len(batch) == 0 {
				return
			}
			if err := e.store.Commit(context.WithoutCancel(ctx), &Tx{Ack: batch}); err != nil {
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

func (a *acker) add(id string) { a.ids <- id }
func (a *acker) close()        { close(a.ids); <-a.done }

// groupClaims groups claimed jobs by request, each group in order: the jobs of one request
// run in order (its notifications arrive in the order things happened); different requests
// run in parallel.
func (e *Engine) groupClaims(claimed []Claimed) [][]Claimed {
	var order []string
	byReq := map[string][]Claimed{}
	for _, c := range claimed {
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

// runGroup runs one request's jobs in order and reports those to acknowledge.
// The first job starts at once; when ctx ends (shutdown) while a job runs, the jobs of the
// group after it are handed back to the queue, due at once, for another replica (or this
// one's next start).
func (e *Engine) runGroup(ctx context.Context, now time.Time, group []Claimed, ack func(string)) {
	for i, c := range group {
		if i > 0 && ctx.Err() != nil {
			ids := make([]string, 0, len(group)-i)
			for _, rest := range group[i:] {
				ids = append(ids, rest.Job.ID)
			}
			if err := e.store.Release(context.WithoutCancel(ctx), ids); err != nil {
				e.log.Warn("hand back unstarted jobs (they run when their lease runs out)", "request_id", c.Job.RequestID, "n", len(ids), "err", err)
			}
			return
		}
		// A job in flight finishes even during shutdown, within its own deadline, which
		// ends well inside the lease, so a slow job is not run twice at once.
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(JobTimeoutEach, e.lease*3/4))
		ok, err := e.runJob(jctx, c)
		cancel()
		if e.hooks.JobDone != nil {
			e.hooks.JobDone(c.Job.Kind, now.Sub(c.Job.Due), err)
		}
		if err != nil {
			e.log.Warn("job failed", "job", c.Job.ID, "request_id", c.Job.RequestID, "attempt", c.Job.Attempt, "err", err)
		}
		if ok {
			ack(c.Job.ID)
		}
	}
}

// RunDue claims one batch of due jobs and runs them to completion; it returns how many it
// claimed. Tests with an injected clock call it directly.
func (e *Engine) RunDue(ctx context.Context) (int, error) {
	now := e.clock.Now()
	claimed, err := e.store.Claim(ctx, now, ClaimBatch, e.lease)
	if err != nil {
		return 0, fmt.Errorf("claim jobs: %w", err)
	}
	var (
		mu   sync.Mutex
		acks []string
		wg   sync.WaitGroup
	)
	for _, group := range e.groupClaims(claimed) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.runGroup(ctx, now, group, func(id string) { mu.Lock(); acks = append(acks, id); mu.Unlock() })
		}()
	}
	wg.Wait()
	if len(acks) > 0 {
		if err := e.store.Commit(context.WithoutCancel(ctx), &Tx{Ack: acks}); err != nil {
			e.log.Warn("ack jobs (they will be re-delivered)", "n", len(acks), "err", err)
		}
	}
	return len(claimed), nil
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
		return e.runNotify(ctx, j)
	}
	r := c.Request
	if r == nil {
		// The request expired out of retention or never existed: nothing to do.
		return true, nil
	}
	switch j.Kind {
	case JobActivate:
		return e.runActivate(ctx, j, r)
	case JobEnd:
		return e.runEnd(ctx, j, r)
	case JobTimeout:
		return e.runTimeout(ctx, j, r)
	case JobRemind:
		return e.runRemind(ctx, j, r)
	}
	return true, fmt.Errorf("unknown job kind %q", j.Kind)
}

func (e *Engine) runNotify(ctx context.Context, j Job) (bool, error) {
	n, ok := e.notifiers[j.Notifier]
	if !ok || j.Event == nil {
		return true, nil // a surface that is no longer configured
	}
	if err := n.Notify(ctx, *j.Event); err != nil {
		if j.Attempt+1 >= NotifyAttempts {
			return true, fmt.Errorf("notify %s of %s: giving up after %d attempts: %w", j.Notifier, j.Event.Type, NotifyAttempts, err)
		}
		if rerr := e.store.Retry(ctx, j, e.clock.Now().Add(Backoff(j.Attempt+1))); rerr != nil {
			return false, rerr
		}
		return false, fmt.Errorf("notify %s of %s: %w", j.Notifier, j.Event.Type, err)
	}
	return true, nil
}

var system = Actor{User: User{ID: "pimbot", Name: "pimbot"}, Surface: "pimbot"}

// commitJob commits a job's transition together with its ack; on a concurrent change it
// returns ErrConflict so that the job is re-read and re-run.
func (e *Engine) commitJob(ctx context.Context, j Job, tx *Tx) error {
	tx.Ack = append(tx.Ack, j.ID)
	if err := e.store.Commit(ctx, tx); err != nil {
		return err
	}
	e.Kick()
	return nil
}

// runActivate adds the grant. If the request was canceled meanwhile it makes sure nothing
// is granted (an earlier run may have added it just before) and releases the open lock.
func (e *Engine) runActivate(ctx context.Context, j Job, r *Request) (bool, error) {
	for attempt := 0; attempt < 5; attempt++ {
		now := e.clock.Now()
		switch {
		case r.State == StateScheduled && r.Start.After(now.Add(time.Second)):
			return true, nil // moved later; the job was rescheduled
		case r.State == StateScheduled:
			if err := e.dir.Add(ctx, r.GroupID, r.Requester.ID, r.Access); err != nil {
				return e.activateFailed(ctx, j, r, err)
			}
			g, err := e.groupOf(r)
			if err != nil {
				return false, err
			}
			a := r.Clone()
			a.State, a.ActivatedAt, a.EndsAt = StateActive, now, now.Add(r.Duration)
			a.Failures, a.LastError = 0, ""
			tx := &Tx{Puts: []Put{{Request: a, Expect: r.Version}},
				Schedule: []Job{{ID: JobID(JobEnd, r.ID), Kind: JobEnd, RequestID: r.ID, Due: a.EndsAt}}}
			if rj, ok := remindJob(a, g); ok {
				tx.Schedule = append(tx.Schedule, rj)
			}
			e.emit(tx, Event{Type: EvActivated, Request: a, At: now}, system)
			err = e.commitJob(ctx, j, tx)
			if errors.Is(err, ErrConflict) {
				if r, err = e.store.Get(ctx, r.ID); err != nil {
					return false, err
				}
				continue
			}
			return false, err
		case r.State.Terminal() && r.ActivatedAt.IsZero():
			// Canceled (or failed) before activation: undo a possible add of an earlier run.
			if err := e.dir.Remove(ctx, r.GroupID, r.Requester.ID, r.Access); err != nil {
				return false, e.retry(ctx, j, err)
			}
			return false, e.commitJob(ctx, j, &Tx{OpenUnlock: []Lock{lockOf(r)}, Puts: nil})
		default:
			return true, nil // already active (a re-delivered job) or ended
		}
	}
	return false, fmt.Errorf("activate %s: the request kept changing", r.ID)
}

func (e *Engine) activateFailed(ctx context.Context, j Job, r *Request, cause error) (bool, error) {
	now := e.clock.Now()
	if errors.Is(cause, ErrForbidden) || errors.Is(cause, ErrNotFound) {
		f := r.Clone()
		f.State, f.EndedAt, f.EndReason, f.LastError = StateFailed, now, "the directory refused the grant", cause.Error()
		tx := &Tx{Puts: []Put{{Request: f, Expect: r.Version}}, OpenUnlock: []Lock{lockOf(r)}}
		e.emit(tx, Event{Type: EvFailed, Request: f, At: now, Detail: cause.Error()}, system)
		return false, errors.Join(cause, e.commitJob(ctx, j, tx))
	}
	if j.Attempt+1 == 2 {
		// Tell people once that activation is delayed; the job keeps retrying.
		f := r.Clone()
		f.Failures, f.LastError = j.Attempt+1, cause.Error()
		tx := &Tx{Puts: []Put{{Request: f, Expect: r.Version}}}
		e.emit(tx, Event{Type: EvDelayed, Request: f, At: now, Detail: cause.Error()}, system)
		if err := e.store.Commit(ctx, tx); err != nil && !errors.Is(err, ErrConflict) {
			return false, errors.Join(cause, err)
		}
	}
	return false, e.retry(ctx, j, cause)
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

func (e *Engine) retry(ctx context.Context, j Job, cause error) error {
	at := e.clock.Now().Add(retryDelay(j.Attempt+1, cause))
	if err := e.store.Retry(ctx, j, at); err != nil {
		return errors.Join(cause, fmt.Errorf("reschedule: %w", err))
	}
	return fmt.Errorf("attempt %d, next at %s: %w", j.Attempt+1, at.UTC().Format(time.TimeOnly), cause)
}

// runEnd removes the grant at its end. A failed removal is never dropped: it is retried
// with backoff for as long as it takes, and people are alerted.
func (e *Engine) runEnd(ctx context.Context, j Job, r *Request) (bool, error) {
	for attempt := 0; attempt < 5; attempt++ {
		now := e.clock.Now()
		if r.State != StateActive {
			return true, nil
		}
		if r.EndsAt.After(now.Add(time.Second)) {
			return true, nil // extended: the job was moved to the new end
		}
		if err := e.dir.Remove(ctx, r.GroupID, r.Requester.ID, r.Access); err != nil {
			n := j.Attempt + 1
			if n == AlertAfter || (n > AlertAfter && n%10 == 0) {
				f := r.Clone()
				f.Failures, f.LastError = n, err.Error()
				tx := &Tx{Puts: []Put{{Request: f, Expect: r.Version}}}
				e.emit(tx, Event{Type: EvRemovalFailing, Request: f, At: now,
					Detail: fmt.Sprintf("removal failed %d times; retrying: %v", n, err)}, system)
				if cerr := e.store.Commit(ctx, tx); cerr != nil && !errors.Is(cerr, ErrConflict) {
					err = errors.Join(err, cerr)
				}
			}
			return false, e.retry(ctx, j, err)
		}
		x := r.Clone()
		x.State, x.EndedAt, x.Failures, x.LastError = StateEnded, now, 0, ""
		if x.EndReason == "" {
			x.EndReason = "expired"
		}
		tx := &Tx{Puts: []Put{{Request: x, Expect: r.Version}}, Unschedule: []string{JobID(JobRemind, r.ID)}, OpenUnlock: []Lock{lockOf(r)}}
		e.emit(tx, Event{Type: EvEnded, Request: x, At: now, Detail: x.EndReason}, system)
		err := e.commitJob(ctx, j, tx)
		if errors.Is(err, ErrConflict) {
			var gerr error
			if r, gerr = e.store.Get(ctx, r.ID); gerr != nil {
				return false, gerr
			}
			continue
		}
		return false, err
	}
	return false, fmt.Errorf("end %s: the request kept changing", r.ID)
}

func (e *Engine) runTimeout(ctx context.Context, j Job, r *Request) (bool, error) {
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
	err := e.commitJob(ctx, j, tx)
	if errors.Is(err, ErrConflict) {
		return false, nil // decided meanwhile; the job is re-delivered and finds it so
	}
	return false, err
}

func (e *Engine) runRemind(ctx context.Context, j Job, r *Request) (bool, error) {
	g, err := e.groupOf(r)
	if err != nil || r.State != StateActive || r.EndReason != "" {
		return true, nil
	}
	now := e.clock.Now()
	if r.EndsAt.Add(-g.ReminderBefore).After(now.Add(time.Second)) {
		return true, nil // extended; a new reminder is scheduled
	}
	tx := &Tx{}
	e.emit(tx, Event{Type: EvReminder, Request: r, At: now}, system)
	return false, e.commitJob(ctx, j, tx)
}
