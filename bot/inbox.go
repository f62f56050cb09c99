package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Inbox lists the requests waiting for the person's decision, oldest first: the pending
// requests on which the engine offers them Approve (Actions lists ActApprove), and the
// automatic (on-call) approvals that wait for their review (Actions lists ActLooksGood). That is the
// rule Approve enforces, so the inbox holds a request exactly when an approval by this
// person would be accepted: they are an enabled approver of its group, it is not their own
// (unless the group allows self-approval), and they have not approved it yet. A request
// they approved already in a quorum group waits for the others, not for them, although
// they may still deny it (Actions offers Deny).
//
// The pending requests are found through the open keys (Store.OpenRequests): every open
// request holds one, and only those of groups the person approves are loaded. When the store or the directory does not answer, Inbox returns an
// error wrapping ErrUnavailable, never a list that may be missing some.
func (e *Engine) Inbox(ctx context.Context, a Actor) ([]*Request, error) {
	open, err := e.store.OpenRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("inbox: read the open requests: %w", Unavailable("the database (Redis)", err))
	}
	// Only a request of a group this person approves can wait for them. The open key of an
	// activation names its group (requester|group id|access), as does a review key
	// (review|group id|id), so the others are never loaded; an extension's key names its
	// parent instead (ext|id), and is loaded.
	ctx = context.WithValue(ctx, memoKey{}, &actionsMemo{approver: map[string]bool{}})
	approves := map[string]bool{}
	for _, g := range e.pol.Groups {
		ok, err := e.IsApprover(ctx, a.User, g)
		if err != nil {
			return nil, fmt.Errorf("inbox: %w", Unavailable("the directory", err))
		}
		approves[strings.ToLower(g.ID)] = ok
	}
	ids := make([]string, 0, len(open))
	for key, id := range open {
		if f := strings.Split(key, "|"); len(f) == 3 && !approves[strings.ToLower(f[1])] {
			continue
		}
		if ValidID(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var out []*Request
	for _, id := range ids {
		r, err := e.store.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // closed and gone since the keys were read
		case err != nil:
			return nil, fmt.Errorf("inbox: load request %s: %w", id, Unavailable("the database (Redis)", err))
		}
		act := ActApprove
		switch {
		case r.Unreviewed():
			act = ActLooksGood // an automatic approval waits for their review
		case r.State != StatePending:
			continue
		}
		switch err := e.May(ctx, a, r, act); {
		case err == nil:
			out = append(out, r)
		case errors.Is(err, ErrUnavailable):
			// Actions would leave Approve out; a missing request would look like none waiting.
			return nil, fmt.Errorf("inbox: %w", err)
		}
	}
	slices.SortFunc(out, func(x, y *Request) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.ID, y.ID))
	})
	return out, nil
}
