package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PIM for Groups mode (a group's mode: pim): the grant is an active assignment with an
// expiration in Entra's Privileged Identity Management instead of a $ref membership, so Entra
// itself ends the access at the expiration even when pimbot, Redis and every replica are gone.
// pimbot's own end job stays the first lock; Entra's expiration is the second. A grant made
// this way (Request.PIM) is only ever changed through PIM: never with $ref.

// Group modes.
const (
	ModeDirect = "direct" // $ref membership (Directory.Add / Remove); pimbot's end job alone ends it
	ModePIM    = "pim"    // PIM for Groups assignments with an expiration (Scheduler)
)

// JobPIMExtend moves the expiration of a PIM assignment to its grant's end after an approved
// extension (applyExtension is a pure transaction; the directory call is this job's).
const JobPIMExtend = "pim_extend"

// PIM for Groups' own rules: "When a membership or ownership is assigned, the assignment can't
// be assigned for a duration of less than five minutes [and] can't be removed within five
// minutes of it being assigned" ("Assign eligibility for a group in Privileged Identity
// Management", https://learn.microsoft.com/entra/id-governance/privileged-identity-management/groups-assign-member-owner).
// Graph refuses both with 400 ActiveDurationTooShort ("The Active duration is too short.
// Miniumum Required is 5 minutes.", Graph's spelling, as reported by PIM clients).
const (
	PIMMinDuration = 5 * time.Minute // the shortest assignment Entra accepts: shorter ones are rounded up
	PIMMinHold     = 5 * time.Minute // an assignment cannot be removed sooner after it was made
)

// ErrPIMTooSoon wraps Entra's refusal to remove a PIM assignment within PIMMinHold of making
// it (or to make one shorter than PIMMinDuration): retry at the earliest allowed moment.
var ErrPIMTooSoon = errors.New("PIM for Groups keeps an assignment at least 5 minutes")

// Scheduler is what only some directories can do: assign a group's membership or ownership
// with an expiration that the directory enforces itself (Entra's PIM for Groups). Errors are
// those of Directory; removing what is not assigned wraps ErrNotHeld, and a refusal of the
// 5-minute rules wraps ErrPIMTooSoon.
type Scheduler interface {
	// AssignUntil makes an active assignment from start to end; one that exists already is success.
	AssignUntil(ctx context.Context, groupID, userID string, a Access, start, end time.Time, justification string) error
	// ExtendUntil moves the expiration of an existing active assignment to end.
	ExtendUntil(ctx context.Context, groupID, userID string, a Access, end time.Time, justification string) error
	// Unassign removes the active assignment (and with it the access) now.
	Unassign(ctx context.Context, groupID, userID string, a Access) error
	// Assigned reports whether the user holds the access through an active assignment now.
	Assigned(ctx context.Context, groupID, userID string, a Access) (bool, error)
}

// AccessPackageReader is what only some directories can tell: whether a user holds a group's
// membership or ownership through a delivered entitlement-management access package
// assignment (an access package whose resource roles include the group's Member or Owner role).
// name is the access package's display name. A directory that may not read entitlement
// management (no permission, no licence) answers ErrForbidden.
type AccessPackageReader interface {
	AccessPackages(ctx context.Context, groupID, userID string, a Access) (name string, ok bool, err error)
}

// PIM reports whether the group grants through PIM for Groups.
func (g *Group) PIM() bool { return g.Mode == ModePIM }

// CheckModes refuses a policy with a group in mode: pim when the directory cannot assign
// through PIM for Groups (the local directory): such a group would never be granted.
func CheckModes(p *Policy, dir Directory) error {
	if _, ok := dir.(Scheduler); ok {
		return nil
	}
	var names []string
	for _, g := range p.Groups {
		if g.PIM() {
			names = append(names, g.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%s: mode: pim needs Microsoft Graph (PIM for Groups), and this directory cannot assign through it; set mode: direct, or configure Graph credentials", strings.Join(names, ", "))
}

// pimDuration rounds a duration up to PIM's shortest assignment and says so ("" when not).
func pimDuration(d time.Duration) (time.Duration, string) {
	if d >= PIMMinDuration {
		return d, ""
	}
	return PIMMinDuration, fmt.Sprintf("PIM for Groups assigns for at least %s, so %s was rounded up to %s",
		FormatDuration(PIMMinDuration), FormatDuration(d), FormatDuration(PIMMinDuration))
}

// pimEarliestEnd is the first moment Entra lets the PIM assignment of r be removed.
func (r *Request) pimEarliestEnd() time.Time { return r.addedAt().Add(PIMMinHold) }

// maxJustification bounds the justification sent to Entra (it keeps it in its audit log).
const maxJustification = 500

// pimJustification is what Entra's audit log shows for the assignment: who, why, the ticket.
func pimJustification(r *Request) string {
	s := "pimbot request " + r.ID + " by " + r.Requester.Handle()
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	if r.Ticket != "" {
		s += " (ticket " + r.Ticket + ")"
	}
	if len(s) > maxJustification {
		s = truncate(s, maxJustification)
	}
	return s
}

func (e *Engine) scheduler() (Scheduler, error) {
	s, ok := e.dir.(Scheduler)
	if !ok {
		return nil, fmt.Errorf("the directory cannot assign through PIM for Groups (mode: pim): %w", ErrForbidden)
	}
	return s, nil
}

// grantAdd gives r's access until end: a PIM assignment for a PIM grant, a $ref otherwise.
func (e *Engine) grantAdd(ctx context.Context, r *Request, start, end time.Time) error {
	if !r.PIM {
		return e.dir.Add(ctx, r.GroupID, r.Requester.ID, r.Access)
	}
	s, err := e.scheduler()
	if err != nil {
		return err
	}
	return s.AssignUntil(ctx, r.GroupID, r.Requester.ID, r.Access, start, end, pimJustification(r))
}

// grantRemove takes r's access away the way it was given.
func (e *Engine) grantRemove(ctx context.Context, r *Request) error {
	if !r.PIM {
		return e.dir.Remove(ctx, r.GroupID, r.Requester.ID, r.Access)
	}
	s, err := e.scheduler()
	if err != nil {
		return err
	}
	return s.Unassign(ctx, r.GroupID, r.Requester.ID, r.Access)
}

// pimEndAt is when an early end of the active grant cur, asked for at now, can happen: now,
// or for a PIM grant the earliest moment Entra allows, with the words that say so.
func pimEndAt(cur *Request, now time.Time) (time.Time, string) {
	if !cur.PIM || !cur.pimEarliestEnd().After(now) {
		return now, ""
	}
	at := cur.pimEarliestEnd()
	return at, fmt.Sprintf("PIM for Groups refuses to remove an assignment within %s of making it, so the access ends at %s UTC, the earliest moment Entra allows",
		FormatDuration(PIMMinHold), at.UTC().Format(time.TimeOnly))
}

func pimExtendJob(r *Request, now time.Time) Job {
	return Job{ID: JobID(JobPIMExtend, r.ID), Kind: JobPIMExtend, RequestID: r.ID, Due: now}
}

// runPIMExtend moves the expiration of an active PIM grant's assignment to the grant's end
// (after an approved extension). It is idempotent: it always asks for the end as stored now.
// An assignment Entra already ended (its old expiration passed while this job was failing) is
// made again until the new end. Failures are retried with backoff, as long as the grant lasts.
func (e *Engine) runPIMExtend(ctx context.Context, c Claimed) (bool, error) {
	r := c.Request
	now := e.clock.Now()
	if r == nil || !r.PIM || r.State != StateActive || r.Ending() || r.Grant != GrantHeld || !r.EndsAt.After(now) {
		return true, nil // over, or being removed: nothing to extend
	}
	s, err := e.scheduler()
	if err != nil {
		return false, e.retryAt(ctx, c, now.Add(retryDelay(c.Job.Attempt+1, err)), err)
	}
	if err := e.mayAct(c); err != nil {
		return false, err
	}
	err = s.ExtendUntil(ctx, r.GroupID, r.Requester.ID, r.Access, r.EndsAt, pimJustification(r))
	if errors.Is(err, ErrNotHeld) {
		err = s.AssignUntil(ctx, r.GroupID, r.Requester.ID, r.Access, now, r.EndsAt, pimJustification(r))
	}
	if err != nil {
		e.log.Warn("PIM: moving the expiration of an extended grant failed; retrying (Entra may end it at the old expiration meanwhile)",
			"request_id", r.ID, "group", r.Group, "attempt", c.Job.Attempt+1, "err", err)
		return false, e.retryAt(ctx, c, now.Add(retryDelay(c.Job.Attempt+1, err)), err)
	}
	return true, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pimAssigned reports whether a holder of a PIM group's access holds it through an active PIM
// assignment (made by pimbot, by an administrator in PIM, or by an access package): legitimate,
// so drift neither reports nor removes it. On a doubt (the assignments cannot be read) it
// answers yes, as granted does.
func (rc *Reconciler) pimAssigned(ctx context.Context, g *Group, a Access, u User) bool {
	if !g.PIM() {
		return false
	}
	s, ok := rc.c.Lister.(Scheduler)
	if !ok {
		if s, ok = rc.c.Directory.(Scheduler); !ok {
			return false
		}
	}
	assigned, err := s.Assigned(ctx, g.ID, u.ID, a)
	if err != nil {
		rc.c.Logger.Warn("drift: cannot read the PIM assignments of a holder; not reporting them this round", "group", g.Name, "user", u.Handle(), "err", err)
		return true
	}
	return assigned
}
