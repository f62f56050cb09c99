package bot

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The activation job: the request judged again at its start, the intent recorded, the grant
// added; and what a refusal or a failure of the directory leads to.

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
				if ok, oerr := e.onCallAtStart(ctx, c, r, g); oerr != nil || !ok {
					err = oerr
					break
				}
				if r, err = e.prepareAdd(ctx, c, r, g); err != nil || r == nil || r.Grant != GrantAdding {
					break
				}
			}
			if err = e.mayAct(c); err != nil {
				return false, err
			}
			d, note := r.Duration, ""
			if r.PIM { // Entra ends the assignment at now+d by itself (the second lock)
				d, note = pimDuration(d)
			}
			if aerr := e.grantAdd(ctx, r, now, now.Add(d)); aerr != nil {
				return e.activateFailed(ctx, c, r, aerr)
			}
			a := r.Clone()
			a.State, a.Grant, a.ActivatedAt, a.EndsAt, a.Duration = StateActive, GrantHeld, now, now.Add(d), d
			a.Failures, a.LastError = 0, ""
			tx := &Tx{Puts: []Put{{Request: a, Expect: r.Version}},
				Schedule: []Job{{ID: JobID(JobEnd, r.ID), Kind: JobEnd, RequestID: r.ID, Due: a.EndsAt}}}
			if rj, ok := remindJob(a, g); ok {
				tx.Schedule = append(tx.Schedule, rj)
			}
			e.emit(tx, Event{Type: EvActivated, Request: a, At: now, Detail: note}, system)
			err = e.commitJob(ctx, c, tx)
		case r.State.Terminal() && r.ActivatedAt.IsZero():
			// Canceled (or refused) before activation: undo a possible add of an earlier run.
			if r.Grant == GrantAdding {
				if err = e.mayAct(c); err != nil {
					return false, err
				}
				if rerr := e.grantRemove(ctx, r); rerr != nil && !e.notHeldForGood(rerr, r.AddedAt, now) {
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
	next.PIM = g.PIM() // the grant is ended the way it is made, whatever the policy says later
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
	if g.RequireApproval && r.AutoApproval != nil && len(r.Approvals) == 0 {
		switch aa := g.AutoApprove; {
		case aa == nil:
			return fmt.Sprintf("%s no longer approves whoever is on call automatically; request it again", g.Name), 0, nil
		case r.Duration > aa.MaxDuration:
			return fmt.Sprintf("%s now approves whoever is on call automatically for at most %s; request it again", g.Name, FormatDuration(aa.MaxDuration)), 0, nil
		}
	} else if g.RequireApproval && len(r.Approvals) < g.ApprovalsRequired {
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
		if err := e.grantRemove(ctx, r); err != nil && !e.notHeldForGood(err, r.AddedAt, now) {
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
	switch {
	case errors.Is(cause, ErrNotHeld):
		return lagRetry(attempt)
	case errors.Is(cause, ErrPIMTooSoon): // Entra keeps a PIM assignment 5 minutes; try again within a minute
		return min(Backoff(attempt), time.Minute)
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
