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
	if err := e.canVerify(ctx, a, r); err != nil {
		return nil, Challenge{}, err
	}
	ch, err := e.StartMFA(ctx, r)
	if err != nil {
		return nil, Challenge{}, err
	}
	return r, ch, nil
}
