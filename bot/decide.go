package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Decisions on a request after it was made: approve, deny, cancel, deactivate, extend.
// Who may take each, and when, is judged by the rules in actions.go, which also tell the
// surfaces what to offer (Engine.Actions).

// Approve records an approver's vote; with the quorum reached the request is approved.
func (e *Engine) Approve(ctx context.Context, a Actor, id string) (*Request, error) {
	r, err := e.transition(ctx, "approve", id, func(cur *Request) (*Tx, error) {
		if err := e.canDecide(ctx, a, cur, ActApprove); err != nil {
			return nil, err
		}
		now := e.clock.Now()
		r := cur.Clone()
		r.Approvals = append(r.Approvals, Decision{By: a.User, At: now, Surface: a.Surface})
		tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}}
		if len(r.Approvals) < r.ApprovalsRequired {
			e.emit(tx, Event{Type: EvApprovalAdded, Request: r, Actor: &a.User, At: now}, a)
			return tx, nil
		}
		r.DecidedAt = now
		tx.Unschedule = []string{JobID(JobTimeout, r.ID)}
		if r.Kind == KindExtend {
			return e.applyExtension(ctx, tx, r, a, now)
		}
		r.State = StateScheduled
		if r.Start.Before(now) {
			r.Start = now
		}
		tx.Schedule = append(tx.Schedule, activateJob(r))
		e.emit(tx, Event{Type: EvApproved, Request: r, Actor: &a.User, At: now}, a)
		return tx, nil
	})
	if err == nil && e.hooks.Decided != nil {
		e.hooks.Decided("approve")
	}
	return r, err
}

// Deny refuses a pending request, with an optional reason.
func (e *Engine) Deny(ctx context.Context, a Actor, id, reason string) (*Request, error) {
	reason = strings.TrimSpace(reason)
	if n := utf8.RuneCountInString(reason); n > MaxReasonLen {
		return nil, fieldErr(FieldReason, "the reason is %d characters long; at most %d are allowed", n, MaxReasonLen)
	}
	r, err := e.transition(ctx, "deny", id, func(cur *Request) (*Tx, error) {
		if err := e.canDecide(ctx, a, cur, ActDeny); err != nil {
			return nil, err
		}
		now := e.clock.Now()
		r := cur.Clone()
		r.State, r.DecidedAt, r.EndedAt = StateDenied, now, now
		r.Denial = &Decision{By: a.User, At: now, Surface: a.Surface}
		r.DenyReason = reason
		tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}, Unschedule: []string{JobID(JobTimeout, r.ID)}, OpenUnlock: []Lock{lockOf(r)}}
		e.emit(tx, Event{Type: EvDenied, Request: r, Actor: &a.User, At: now, Detail: reason}, a)
		return tx, nil
	})
	if err == nil && e.hooks.Decided != nil {
		e.hooks.Decided("deny")
	}
	return r, err
}

// checkEnabled refuses a person whose directory account is disabled (Entra accountEnabled:
// false): they may neither request nor approve. Ending access (cancel, deactivate) stays open.
// The account is read from the directory (whose cache is short), not trusted from the
// surface's identity cache, which may be an hour old.
func (e *Engine) checkEnabled(ctx context.Context, a Actor, action string) error {
	u := a.User
	if !u.Disabled {
		fresh, err := e.resolveActor(ctx, a.User.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			return &PermissionError{Action: action, Reason: "your account (" + u.Handle() + ") is no longer in the directory"}
		case err != nil:
			return fmt.Errorf("%s: look up %s: %w", action, u.Handle(), Unavailable("the directory", err))
		}
		u.Disabled = fresh.Disabled
	}
	if u.Disabled {
		return &PermissionError{Action: action, Reason: "your directory account (" + u.Handle() + ") is disabled; ask your administrators"}
	}
	return nil
}

func approverWords(g *Group) string {
	if len(g.Approvers) == 0 {
		return "nobody (the group needs no approval)"
	}
	return ApproverWords(g.Approvers)
}

// ApproverWords names approvers (policy entries) for people: "a, b or members of c"; "" for
// none. Every surface words its approver lists with it (escaping the result as its markup needs).
func ApproverWords(entries []string) string {
	xs := make([]string, len(entries))
	for i, x := range entries {
		if ref, ok := strings.CutPrefix(x, "group:"); ok {
			xs[i] = "members of " + ref
		} else {
			xs[i] = x
		}
	}
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// Cancel withdraws the requester's own request that has not started (waiting for MFA, for
// approval or for its start time).
func (e *Engine) Cancel(ctx context.Context, a Actor, id string) (*Request, error) {
	return e.transition(ctx, "cancel", id, func(cur *Request) (*Tx, error) {
		if err := canCancel(a, cur); err != nil {
			return nil, err
		}
		now := e.clock.Now()
		r := cur.Clone()
		r.State, r.EndedAt, r.EndReason = StateCanceled, now, "canceled by the requester"
		r.EndedBy = &Decision{By: a.User, At: now, Surface: a.Surface}
		tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}, Unschedule: []string{JobID(JobTimeout, r.ID)}}
		if cur.State == StateScheduled && r.Kind == KindActivate {
			// An activation may be in flight: let the activate job run now, find the request
			// canceled, make sure nothing was granted, and only then release the open lock.
			j := activateJob(r)
			j.Due = now
			tx.Schedule = append(tx.Schedule, j)
		} else {
			tx.OpenUnlock = []Lock{lockOf(r)}
		}
		e.emit(tx, Event{Type: EvCanceled, Request: r, Actor: &a.User, At: now}, a)
		return tx, nil
	})
}

// Deactivate ends an active grant early (the requester or an approver of the group). An
// approver may also stop an approved grant before it starts: it is canceled.
func (e *Engine) Deactivate(ctx context.Context, a Actor, id string) (*Request, error) {
	return e.transition(ctx, "deactivate", id, func(cur *Request) (*Tx, error) {
		if err := e.canDeactivate(ctx, a, cur); err != nil {
			return nil, err
		}
		now := e.clock.Now()
		r := cur.Clone()
		switch cur.State {
		case StateActive:
			return e.endNow(r, cur, a, "deactivated by "+a.User.Handle(), "deactivate", now), nil
		case StateScheduled:
			return e.cancelScheduled(r, cur, a, "canceled by "+a.User.Handle(), now), nil
		}
		return nil, &StateError{ID: cur.ID, State: cur.State, Action: "deactivate"} // canDeactivate lets no other state through
	})
}

// endNow ends the active grant r (a clone of cur) at once: its end job runs now. It is
// audited now (as op); people hear of it when the removal is done (the ended event).
// A PIM grant ends at the earliest moment Entra allows (pimEndAt), and the reason says so.
func (e *Engine) endNow(r, cur *Request, a Actor, reason, op string, now time.Time) *Tx {
	at, why := pimEndAt(cur, now)
	if why != "" {
		reason += "; " + why
	}
	r.EndsAt, r.EndReason = at, reason
	r.EndedBy = &Decision{By: a.User, At: now, Surface: a.Surface}
	return &Tx{Puts: []Put{{Request: r, Expect: cur.Version}},
		Schedule:   []Job{{ID: JobID(JobEnd, r.ID), Kind: JobEnd, RequestID: r.ID, Due: at}},
		Unschedule: []string{JobID(JobRemind, r.ID)},
		Audit: []AuditRecord{{At: now, Type: op, RequestID: r.ID, Group: r.Group, Access: r.Access,
			Subject: r.Requester.Handle(), Actor: a.User.Handle(), Surface: a.Surface, Detail: r.EndReason}}}
}

// cancelScheduled cancels the approved request r (a clone of cur) before its start. As a
// cancel does, the activate job runs now, finds the request canceled, makes sure nothing was
// granted, and only then releases the open lock.
func (e *Engine) cancelScheduled(r, cur *Request, a Actor, reason string, now time.Time) *Tx {
	r.State, r.EndedAt, r.EndReason = StateCanceled, now, reason
	r.EndedBy = &Decision{By: a.User, At: now, Surface: a.Surface}
	j := activateJob(r)
	j.Due = now
	tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}, Unschedule: []string{JobID(JobTimeout, r.ID)}, Schedule: []Job{j}}
	e.emit(tx, Event{Type: EvCanceled, Request: r, Actor: &a.User, At: now}, a)
	return tx
}

// Extend asks for more time on an active grant. The extension is judged like a new
// request (eligibility, duration, approval); once approved it moves the end.
func (e *Engine) Extend(ctx context.Context, a Actor, id string, d time.Duration, reason string) (r *Request, err error) {
	defer func() { e.observeSubmit(a.Surface, err) }()
	parent, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := e.canExtend(ctx, a, parent); err != nil {
		return nil, err
	}
	g, err := e.groupOf(parent)
	if err != nil {
		return nil, err
	}
	now := e.clock.Now()
	if d == 0 {
		d = extensionDefault(parent, g)
	}
	if room := extensionRoom(parent, g); d <= 0 || d > room {
		return nil, fieldErr(FieldDuration, "you can extend by at most %s (the maximum for %s is %s in total)", FormatDuration(room), g.Name, FormatDuration(g.MaxDuration))
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = parent.Reason
	}
	if n := utf8.RuneCountInString(reason); n > MaxReasonLen {
		return nil, fieldErr(FieldReason, "the reason is %d characters long; at most %d are allowed", n, MaxReasonLen)
	}
	r = &Request{
		ID: NewID(), Kind: KindExtend, ParentID: parent.ID, Group: g.Name, GroupID: g.ID, Access: parent.Access,
		Requester: a.User, Surface: a.Surface, Reason: reason, Ticket: parent.Ticket, Duration: d,
		CreatedAt: now, ApprovalsRequired: g.ApprovalsRequired,
	}
	return e.create(ctx, r, g, a, now)
}

func minDur(a, b time.Duration) time.Duration {
	if b < time.Minute {
		b = time.Minute
	}
	if a < b {
		return a
	}
	return b
}

// applyExtension moves the parent's end by the extension's duration, in the same tx.
func (e *Engine) applyExtension(ctx context.Context, tx *Tx, ext *Request, a Actor, now time.Time) (*Tx, error) {
	parent, err := e.load(ctx, ext.ParentID)
	if err != nil {
		return nil, err
	}
	g, err := e.groupOf(parent)
	if err != nil {
		return nil, err
	}
	ext.State, ext.EndedAt = StateApplied, now
	tx.OpenUnlock = append(tx.OpenUnlock, lockOf(ext))
	// A grant already ended early (EndedBy) is not revived: a PIM grant's early end waits up to
	// 5 minutes for Entra, and an extension approved meanwhile must not undo it.
	if parent.State != StateActive || parent.Ending() || parent.EndedBy != nil {
		ext.State, ext.EndReason = StateCanceled, "the grant it extends is no longer active"
		e.emit(tx, Event{Type: EvCanceled, Request: ext, Parent: parent, At: now, Detail: ext.EndReason}, a)
		return tx, nil
	}
	p := parent.Clone()
	p.EndsAt = p.EndsAt.Add(ext.Duration)
	if max := p.ActivatedAt.Add(g.MaxDuration); p.EndsAt.After(max) {
		p.EndsAt = max
	}
	p.Extensions = append(p.Extensions, ext.ID)
	tx.Puts = append(tx.Puts, Put{Request: p, Expect: parent.Version})
	tx.Schedule = append(tx.Schedule, Job{ID: JobID(JobEnd, p.ID), Kind: JobEnd, RequestID: p.ID, Due: p.EndsAt})
	if p.PIM { // Entra's expiration (the second lock) moves too, in a job of its own
		tx.Schedule = append(tx.Schedule, pimExtendJob(p, now))
	}
	if rj, ok := remindJob(p, g); ok {
		tx.Schedule = append(tx.Schedule, rj)
	}
	var actor *User
	if len(ext.Approvals) > 0 {
		actor = &ext.Approvals[len(ext.Approvals)-1].By
	}
	e.emit(tx, Event{Type: EvApproved, Request: ext, Parent: p, Actor: actor, At: now}, a)
	e.emit(tx, Event{Type: EvExtended, Request: p, Actor: actor, At: now, Detail: "by " + FormatDuration(ext.Duration) + " (request " + ext.ID + ")"}, a)
	return tx, nil
}

func remindJob(r *Request, g *Group) (Job, bool) {
	if g.ReminderBefore <= 0 || r.EndsAt.Sub(r.ActivatedAt) < 2*g.ReminderBefore {
		return Job{}, false
	}
	return Job{ID: JobID(JobRemind, r.ID), Kind: JobRemind, RequestID: r.ID, Due: r.EndsAt.Add(-g.ReminderBefore)}, true
}
