package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Step-up verification: a group with require_mfa asks Entra to verify the requester (an
// OpenID Connect sign-in that must show MFA) before the request reaches its approvers.
// The sign-in itself lives in package entra; the engine only records its outcome.

// MFAVerifier starts a verification for a request and gives the link (or device code
// instructions) that surfaces show the requester. Package entra implements it.
type MFAVerifier interface {
	StartMFA(ctx context.Context, r *Request) (Challenge, error)
	// AuthContext is the Conditional Access authentication context (e.g. "c1") the sign-in
	// asks Entra for; its presence in the token's acrs is what proves the step-up. Empty:
	// none is configured, and no sign-in can prove MFA (Entra's v2.0 ID tokens carry no amr).
	AuthContext() string
}

// DevicePoller is implemented by a verifier whose device-code sign-ins are polled by the job
// queue (JobMFAPoll), so that a sign-in in progress survives a restart and any replica can
// finish it. PollDevice asks once; again > 0 asks for another poll after that long, 0 says
// the sign-in is over (verified, refused or expired: the verifier has applied it).
type DevicePoller interface {
	PollDevice(ctx context.Context, r *Request) (again time.Duration, err error)
}

// ScheduleMFAPoll (for the verifier) puts a poll of the request's device sign-in in the queue.
func (e *Engine) ScheduleMFAPoll(ctx context.Context, requestID string, at time.Time) error {
	return e.store.Commit(ctx, &Tx{Schedule: []Job{{ID: JobID(JobMFAPoll, requestID), Kind: JobMFAPoll, RequestID: requestID, Due: at}}})
}

// runMFAPoll polls a device sign-in while its request still waits for MFA.
func (e *Engine) runMFAPoll(ctx context.Context, c Claimed) (bool, error) {
	r := c.Request
	p, ok := e.mfa.(DevicePoller)
	if r == nil || r.State != StateVerifying || !ok {
		return true, nil
	}
	if err := e.mayAct(c); err != nil {
		return false, err
	}
	again, err := p.PollDevice(ctx, r)
	if again <= 0 {
		return true, err
	}
	if rerr := e.retryAt(ctx, c, e.clock.Now().Add(again), errDevicePending); !errors.Is(rerr, errDevicePending) || err != nil {
		return false, errors.Join(err, rerr)
	}
	return false, nil
}

var errDevicePending = errors.New("device sign-in pending")

// ClockSkew is the one allowance for clocks that differ, between pimbot and Entra and
// between replicas: on a token's times and on when a sign-in happened.
const ClockSkew = 2 * time.Minute

// StepUpProof is what a finished sign-in says, as the verifier read it from a token whose
// signature, issuer, audience, nonce and expiry it checked.
type StepUpProof struct {
	UserID   string    // oid: the directory object id of the person who signed in
	AuthTime time.Time // auth_time: when they authenticated; zero when the token did not say
	ACRS     []string  // authentication contexts Entra says the sign-in satisfied
	AMR      []string  // authentication methods, if any (never trusted on their own)
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

// MFAVerified judges a finished sign-in against the request it was for and, if it proves the
// step-up, sends the request on to approval or scheduling. The sign-in must be the
// requester's, must satisfy the configured authentication context (an amr claim alone never
// does: with a context configured it is required), and must have happened after the request
// was made and before it timed out.
func (e *Engine) MFAVerified(ctx context.Context, id string, p StepUpProof) (*Request, error) {
	return e.transition(ctx, "verify", id, func(cur *Request) (*Tx, error) {
		if cur.State != StateVerifying {
			return nil, &StateError{ID: cur.ID, State: cur.State, Action: "verify"}
		}
		now := e.clock.Now()
		if err := e.judgeStepUp(cur, p, now); err != nil {
			return nil, err
		}
		at := p.AuthTime
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

// judgeStepUp decides whether a sign-in proves the step-up for a request.
func (e *Engine) judgeStepUp(cur *Request, p StepUpProof, now time.Time) error {
	refuse := func(format string, args ...any) error {
		return &PermissionError{Action: "verify", Reason: fmt.Sprintf(format, args...)}
	}
	if p.UserID == "" || p.UserID != cur.Requester.ID {
		return refuse("the sign-in belongs to someone else than the requester (%s); sign in with the requester's account", cur.Requester.Handle())
	}
	required := ""
	if e.mfa != nil {
		required = e.mfa.AuthContext()
	}
	switch {
	case required == "":
		return refuse("MFA cannot be proven: no Conditional Access authentication context is configured (ENTRA_AUTH_CONTEXT); ask your administrators")
	case !slices.Contains(p.ACRS, required):
		return refuse("the sign-in did not satisfy the authentication context %s that MFA requires here; the request stays on hold", required)
	case p.AuthTime.IsZero():
		return refuse("the sign-in did not say when you authenticated; sign in again")
	case p.AuthTime.Before(cur.CreatedAt.Add(-ClockSkew)):
		return refuse("the sign-in (at %s) is older than the request; sign in again", p.AuthTime.UTC().Format(time.RFC3339))
	case p.AuthTime.After(now.Add(ClockSkew)):
		return refuse("the sign-in claims a time in the future (%s); check the clocks", p.AuthTime.UTC().Format(time.RFC3339))
	case p.AuthTime.After(cur.CreatedAt.Add(e.pol.Settings.MFATimeout + ClockSkew)):
		return refuse("the sign-in came after the request's %s to verify had run out", FormatDuration(e.pol.Settings.MFATimeout))
	}
	return nil
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
