package bot

import (
	"context"
	"fmt"
	"time"
)

// Step-up verification: a group with require_mfa asks Entra to verify the requester (an
// OpenID Connect sign-in that must show MFA) before the request reaches its approvers.
// The sign-in itself lives in package entra; the engine only records its outcome.

// MFAVerifier starts a verification for a request and gives the link (or device code
// instructions) that surfaces show the requester. Package entra implements it.
type MFAVerifier interface {
	StartMFA(ctx context.Context, r *Request) (Challenge, error)
}

// Challenge is what the requester must do to verify.
type Challenge struct {
	URL      string // open this (authorization-code flow)
	UserCode string // or enter this code at URL (device-code flow)
	Expires  time.Time
}

// awaitMFA puts a new request on hold until the requester verifies.
func (e *Engine) awaitMFA(tx *Tx, r *Request, g *Group, a Actor, now time.Time) {
	r.State = StateVerifying
	tx.Schedule = append(tx.Schedule, Job{ID: JobID(JobTimeout, r.ID), Kind: JobTimeout, RequestID: r.ID, Due: now.Add(e.pol.Settings.MFATimeout)})
	e.emit(tx, Event{Type: EvMFARequired, Request: r, Actor: &a.User, At: now}, a)
}

// MFAVerified records that the requester passed step-up MFA at `at` (as the ID token says)
// and sends the request on to approval or scheduling. userID is the directory object id
// the token belongs to; it must be the requester's.
func (e *Engine) MFAVerified(ctx context.Context, id, userID string, at time.Time) (*Request, error) {
	return e.transition(ctx, "verify", id, func(cur *Request) (*Tx, error) {
		if cur.Requester.ID != userID {
			return nil, &PermissionError{Action: "verify", Reason: "the sign-in belongs to someone else than the requester (" + cur.Requester.Handle() + ")"}
		}
		if cur.State != StateVerifying {
			return nil, &StateError{ID: cur.ID, State: cur.State, Action: "verify"}
		}
		now := e.clock.Now()
		if at.Before(cur.CreatedAt.Add(-time.Minute)) || at.After(cur.CreatedAt.Add(e.pol.Settings.MFATimeout)) {
			return nil, &PermissionError{Action: "verify", Reason: fmt.Sprintf("the sign-in must happen within %s of the request", FormatDuration(e.pol.Settings.MFATimeout))}
		}
		g, err := e.groupOf(cur)
		if err != nil {
			return nil, err
		}
		r := cur.Clone()
		r.MFAVerifiedAt = at
		tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}, Unschedule: []string{JobID(JobTimeout, r.ID)}}
		tx.Audit = append(tx.Audit, AuditRecord{At: now, Type: "mfa_verified", RequestID: r.ID, Group: r.Group, Access: r.Access,
			Subject: r.Requester.Handle(), Actor: r.Requester.Handle(), Surface: r.Surface, Detail: "MFA at " + at.UTC().Format(time.RFC3339)})
		return e.route(ctx, tx, r, g, Actor{User: r.Requester, Surface: r.Surface}, now)
	})
}

// SetMFA installs the step-up verifier (before the engine serves).
func (e *Engine) SetMFA(v MFAVerifier) { e.mfa = v }

// StartMFA gives the requester's verification link for a request waiting for MFA.
func (e *Engine) StartMFA(ctx context.Context, r *Request) (Challenge, error) {
	if e.mfa == nil {
		return Challenge{}, fmt.Errorf("MFA verification is not configured: %w", ErrUnavailable)
	}
	if r.State != StateVerifying {
		return Challenge{}, &StateError{ID: r.ID, State: r.State, Action: "verify"}
	}
	return e.mfa.StartMFA(ctx, r)
}
