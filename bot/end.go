package bot

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The jobs that end things: the removal at the end of a grant, a pending request that
// timed out, and the reminder before the end.

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
		if err := e.grantRemove(ctx, r); err != nil && !e.notHeldForGood(err, r.addedAt(), now) {
			if r.PIM && errors.Is(err, ErrPIMTooSoon) {
				// Entra keeps a PIM assignment 5 minutes (its clock may run ahead of ours):
				// remove it at the earliest moment it allows, without alerting anyone.
				return false, e.retryAt(ctx, c, later(r.pimEarliestEnd(), now.Add(lagRetry(c.Job.Attempt+1))), err)
			}
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
