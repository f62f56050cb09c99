package bot

import "context"

// VerifyAgain gives the requester a fresh step-up sign-in for their own request that still
// waits for MFA: after a refused sign-in (the wrong account, MFA not satisfied), a device
// code that failed or ran out, or a message that got lost. Only the requester may ask, only
// while the request is verifying. Nothing is written: the request stays verifying and the
// time it has to verify (settings.mfa_timeout, counted from the request) keeps running.
func (e *Engine) VerifyAgain(ctx context.Context, a Actor, id string) (*Request, Challenge, error) {
	r, err := e.load(ctx, id)
	if err != nil {
		return nil, Challenge{}, err
	}
	if r.Requester.ID != a.User.ID {
		return nil, Challenge{}, &PermissionError{Action: "verify", Reason: "only the requester (" + r.Requester.Handle() + ") may verify it"}
	}
	if r.State != StateVerifying {
		return nil, Challenge{}, &StateError{ID: r.ID, State: r.State, Action: "verify"}
	}
	if err := e.checkEnabled(ctx, a, "verify"); err != nil {
		return nil, Challenge{}, err
	}
	ch, err := e.StartMFA(ctx, r)
	if err != nil {
		return nil, Challenge{}, err
	}
	return r, ch, nil
}
