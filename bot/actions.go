package bot

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Action is something a person may do with a request. The engine says which ones a person
// may take now (Actions); surfaces show those and nothing else, so that Slack, Teams and the
// shell offer the same buttons for the same request.
type Action string

const (
	ActApprove    Action = "approve"    // an approver's vote (Approve)
	ActDeny       Action = "deny"       // an approver's refusal (Deny)
	ActVerify     Action = "verify"     // a fresh step-up sign-in for a request waiting for MFA (VerifyAgain)
	ActExtend     Action = "extend"     // more time on an active grant (Extend)
	ActDeactivate Action = "deactivate" // end an active grant now (Deactivate)
	ActCancel     Action = "cancel"     // withdraw a request that has not started (Cancel)
	ActRevoke     Action = "revoke"     // an approver ends an automatic (on-call) approval at once (Revoke)
	ActLooksGood  Action = "looks_good" // an approver reviews an automatic approval: it was right (LooksGood)
)

// actionOrder is the order in which actions are shown, everywhere.
var actionOrder = []Action{ActApprove, ActDeny, ActVerify, ActExtend, ActDeactivate, ActRevoke, ActLooksGood, ActCancel}

// Actions lists what the person may do with the request now, in display order. Each action
// is judged by the rule the engine applies when it is taken, so an action listed is one the
// engine accepts and an action left out is one it refuses. A rule that needs the directory
// and cannot get an answer leaves its action out.
func (e *Engine) Actions(ctx context.Context, a Actor, r *Request) []Action {
	order := actionOrder
	if r.State.Terminal() {
		if !r.Unreviewed() {
			return nil // every rule refuses a request that can never change again; no need to ask the directory
		}
		order = []Action{ActLooksGood} // an ended automatic approval is still reviewed
	}
	// The rules ask the directory the same questions (the actor's account, whether they
	// approve the group): answer each once for this call.
	ctx = context.WithValue(ctx, memoKey{}, &actionsMemo{approver: map[string]bool{}})
	var out []Action
	for _, act := range order {
		if e.May(ctx, a, r, act) == nil {
			out = append(out, act)
		}
	}
	return withoutDeactivateWhenRevoke(out)
}

// withoutDeactivateWhenRevoke leaves Deactivate out where Revoke is offered: on an automatic
// approval, an approver's way to end it is Revoke (which also records the review).
func withoutDeactivateWhenRevoke(acts []Action) []Action {
	if !slices.Contains(acts, ActRevoke) {
		return acts
	}
	return slices.DeleteFunc(acts, func(a Action) bool { return a == ActDeactivate })
}

// May is nil when the person may take the action on the request now; otherwise it is the
// error the action itself would return, for a surface that wants to refuse before it asks
// for more (a form).
func (e *Engine) May(ctx context.Context, a Actor, r *Request, act Action) error {
	switch act {
	case ActApprove, ActDeny:
		return e.canDecide(ctx, a, r, act)
	case ActVerify:
		return e.canVerify(ctx, a, r)
	case ActExtend:
		return e.canExtend(ctx, a, r)
	case ActDeactivate:
		return e.canDeactivate(ctx, a, r)
	case ActCancel:
		return canCancel(a, r)
	case ActRevoke:
		return e.canRevoke(ctx, a, r)
	case ActLooksGood:
		return e.canLooksGood(ctx, a, r)
	}
	return &PermissionError{Action: truncate(string(act), 20), Reason: "pimbot knows no such action"}
}

// actionsMemo keeps, for one Actions call (one goroutine), the directory's answers that
// several rules ask for.
type actionsMemo struct {
	actor    User
	actorErr error
	resolved bool
	approver map[string]bool // group id -> the actor approves it
}

type memoKey struct{}

// resolveActor reads the acting person from the directory, once per Actions call.
func (e *Engine) resolveActor(ctx context.Context, id string) (User, error) {
	m, _ := ctx.Value(memoKey{}).(*actionsMemo)
	if m == nil {
		return e.dir.ResolveUser(ctx, id)
	}
	if !m.resolved {
		m.actor, m.actorErr = e.dir.ResolveUser(ctx, id)
		m.resolved = true
	}
	return m.actor, m.actorErr
}

// ApproverActions is what Actions returns for an approver of the request's group who is not
// its requester and has not voted on it yet: what a message shared by all the approvers (a
// channel post) offers: Approve and Deny while it is pending, Deactivate while an approved
// grant can still be ended; on an automatic approval, Revoke instead of Deactivate and Looks
// good until someone reviewed it. Whoever clicks is still judged by the engine.
func (e *Engine) ApproverActions(r *Request) []Action {
	g, err := e.groupOf(r)
	if err != nil {
		return nil
	}
	var out []Action
	for _, act := range []Action{ActApprove, ActDeny} {
		if decideRule(act, g, r, decider{approver: true}) == nil {
			out = append(out, act)
		}
	}
	// An approver may end an approved grant (canDeactivate), or, when it was approved
	// automatically, revoke it (which records the review as well).
	endable := r.Kind == KindActivate && (r.State == StateScheduled || (r.State == StateActive && !r.Ending()))
	switch {
	case r.AutoApproval != nil:
		if endable {
			out = append(out, ActRevoke)
		}
		if r.Unreviewed() {
			out = append(out, ActLooksGood)
		}
	case endable:
		out = append(out, ActDeactivate)
	}
	return out
}

// decider is what the decide rules need to know of the person deciding.
type decider struct {
	approver  bool // an approver of the request's group
	requester bool // the request is their own
	voted     bool // they approved it already
}

// canDecide: only an enabled approver of the group, only a pending request, never the
// requester unless the group allows self-approval, and one approval per approver.
func (e *Engine) canDecide(ctx context.Context, a Actor, r *Request, act Action) error {
	if err := e.checkEnabled(ctx, a, string(act)); err != nil {
		return err
	}
	g, err := e.groupOf(r)
	if err != nil {
		return err
	}
	ok, err := e.IsApprover(ctx, a.User, g)
	if err != nil {
		return fmt.Errorf("%s: %w", act, Unavailable("the directory", err))
	}
	return decideRule(act, g, r, decider{approver: ok, requester: r.Requester.ID == a.User.ID, voted: r.ApprovedBy(a.User.ID)})
}

// decideRule is the part of the decide rules that needs no directory.
func decideRule(act Action, g *Group, r *Request, d decider) error {
	action := string(act)
	if !d.approver {
		return &PermissionError{Action: action, Reason: "only " + approverWords(g) + " may " + action + " requests for " + g.Name}
	}
	if r.State != StatePending {
		return &StateError{ID: r.ID, State: r.State, Action: action}
	}
	if d.requester && !g.AllowSelfApproval {
		if act == ActDeny {
			return &PermissionError{Action: action, Reason: "it is your own request; cancel it instead (cancel " + r.ID + ")"}
		}
		return &PermissionError{Action: action, Reason: "it is your own request; another approver of " + g.Name + " must decide"}
	}
	if act == ActApprove && d.voted {
		return &PermissionError{Action: action, Reason: fmt.Sprintf("you already approved it; it needs %d more approver(s)", r.ApprovalsRequired-len(r.Approvals))}
	}
	return nil
}

// requireApprover refuses, for the action, a person who is not an approver of the request's
// group ("only <also><approvers> may <action> it"); it returns the group.
func (e *Engine) requireApprover(ctx context.Context, a Actor, r *Request, action, also string) (*Group, error) {
	g, err := e.groupOf(r)
	if err != nil {
		return nil, err
	}
	ok, err := e.IsApprover(ctx, a.User, g)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, Unavailable("the directory", err))
	}
	if !ok {
		return nil, &PermissionError{Action: action, Reason: "only " + also + approverWords(g) + " may " + action + " it"}
	}
	return g, nil
}

// canCancel: only the requester, only a request that has not started (waiting for MFA, for
// approval or for its start time). Ending access stays open to a disabled account.
func canCancel(a Actor, r *Request) error {
	if r.Requester.ID != a.User.ID {
		return &PermissionError{Action: "cancel", Reason: "only the requester (" + r.Requester.Handle() + ") may cancel it"}
	}
	if !r.State.Waiting() {
		if r.State == StateActive {
			return &PermissionError{Action: "cancel", Reason: "it is already active; deactivate it instead (deactivate " + r.ID + ")"}
		}
		return &StateError{ID: r.ID, State: r.State, Action: "cancel"}
	}
	return nil
}

// canDeactivate: the requester or an approver of the group may end an active grant that is
// not already being removed. An approver may also stop an approved grant before it starts;
// before that, the requester cancels and an approver denies. Only an activation holds a
// grant (an extension adds its time to one). Ending access stays open to a disabled account.
func (e *Engine) canDeactivate(ctx context.Context, a Actor, r *Request) error {
	requester := r.Requester.ID == a.User.ID
	if !requester {
		if _, err := e.requireApprover(ctx, a, r, "deactivate", "the requester or "); err != nil {
			return err
		}
	}
	if r.Kind != KindActivate {
		return &StateError{ID: r.ID, State: r.State, Action: "deactivate"}
	}
	switch {
	case r.State == StateActive && r.Ending():
		return &StateError{ID: r.ID, State: "being deactivated", Action: "deactivate"}
	case r.State == StateActive:
		return nil
	case r.State.Waiting() && requester:
		return &PermissionError{Action: "deactivate", Reason: "it has not started; cancel it instead (cancel " + r.ID + ")"}
	case r.State == StateScheduled:
		return nil
	case r.State == StatePending:
		return &PermissionError{Action: "deactivate", Reason: "it is not approved yet; deny it instead (deny " + r.ID + ")"}
	}
	return &StateError{ID: r.ID, State: r.State, Action: "deactivate"}
}

// canExtend: only the requester, with an enabled account and still eligible for the group,
// only an active grant that is not being removed and has room left under the group's
// max_duration.
func (e *Engine) canExtend(ctx context.Context, a Actor, r *Request) error {
	if err := e.checkEnabled(ctx, a, "extend"); err != nil {
		return err
	}
	if r.Requester.ID != a.User.ID {
		return &PermissionError{Action: "extend", Reason: "only the requester (" + r.Requester.Handle() + ") may extend it"}
	}
	if r.State != StateActive || r.Ending() || r.Kind != KindActivate {
		return &StateError{ID: r.ID, State: r.State, Action: "extend"}
	}
	g, err := e.groupOf(r)
	if err != nil {
		return err
	}
	eligible, err := e.IsEligible(ctx, a.User, g)
	if err != nil {
		return fmt.Errorf("extend: %w", Unavailable("the directory", err))
	}
	if !eligible {
		return fieldErr(FieldGroup, "you are no longer eligible for %s", g.Name)
	}
	if extensionRoom(r, g) < time.Minute {
		return fieldErr(FieldDuration, "request %s already lasts the maximum of %s for %s", r.ID, FormatDuration(g.MaxDuration), g.Name)
	}
	return nil
}

// canVerify: only the requester, with an enabled account, only while the request waits for
// MFA, and only when step-up verification is set up.
func (e *Engine) canVerify(ctx context.Context, a Actor, r *Request) error {
	if r.Requester.ID != a.User.ID {
		return &PermissionError{Action: "verify", Reason: "only the requester (" + r.Requester.Handle() + ") may verify it"}
	}
	if r.State != StateVerifying {
		return &StateError{ID: r.ID, State: r.State, Action: "verify"}
	}
	if err := e.checkEnabled(ctx, a, "verify"); err != nil {
		return err
	}
	if e.mfa == nil {
		return fmt.Errorf("MFA verification is not configured: %w", ErrUnavailable)
	}
	return nil
}

// ExtensionRoom is how much more time an extension of the grant r may ask for: what is left
// of its group's max_duration counted from activation, in whole minutes. ok is false when
// nothing is left, when r is not a grant that was activated, or when its group is no longer
// in the policy.
func (e *Engine) ExtensionRoom(r *Request) (time.Duration, bool) {
	g, err := e.groupOf(r)
	if err != nil || r.Kind != KindActivate || r.ActivatedAt.IsZero() {
		return 0, false
	}
	room := extensionRoom(r, g)
	return room, room >= time.Minute
}

// ExtensionDefault is what an extension of r asks for when no duration is given: the
// group's default_duration, or the room left when that is less.
func (e *Engine) ExtensionDefault(r *Request) time.Duration {
	g, err := e.groupOf(r)
	if err != nil {
		return 0
	}
	return extensionDefault(r, g)
}

func extensionRoom(r *Request, g *Group) time.Duration {
	return r.ActivatedAt.Add(g.MaxDuration).Sub(r.EndsAt).Truncate(time.Minute)
}

func extensionDefault(r *Request, g *Group) time.Duration {
	if room := extensionRoom(r, g); room >= time.Minute && room < g.DefaultDuration {
		return room
	}
	return g.DefaultDuration
}

// Precheck loads a request and says whether the person may take the action on it now: the
// request, or the error the action itself would return. A surface asks before it opens a
// form for the action (a deny reason, an extension), so that a refusal comes instead of the
// form; the action is judged again when it is taken. The request is returned only to a
// person who may act on it, so only to its requester or an approver of its group.
func (e *Engine) Precheck(ctx context.Context, a Actor, id string, act Action) (*Request, error) {
	r, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := e.May(ctx, a, r, act); err != nil {
		return nil, err
	}
	return r, nil
}
