package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// Inbox lists the requests waiting for the person's decision, oldest first: the pending
// requests on which the engine offers them Approve (Actions lists ActApprove). That is the
// rule Approve enforces, so the inbox holds a request exactly when an approval by this
// person would be accepted: they are an enabled approver of its group, it is not their own
// (unless the group allows self-approval), and they have not approved it yet. A request
// they approved already in a quorum group waits for the others, not for them, although
// they may still deny it (Actions offers Deny).
//
// The pending requests are found through the open keys (Store.OpenRequests): every open
// request holds one. When the store or the directory does not answer, Inbox returns an
// error wrapping ErrUnavailable, never a list that may be missing some.
func (e *Engine) Inbox(ctx context.Context, a Actor) ([]*Request, error) {
	open, err := e.store.OpenRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("inbox: read the open requests: %w", errors.Join(ErrUnavailable, err))
	}
	ids := make([]string, 0, len(open))
	for _, id := range open {
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
			return nil, fmt.Errorf("inbox: load request %s: %w", id, errors.Join(ErrUnavailable, err))
		case r.State != StatePending:
			continue
		}
		switch err := e.May(ctx, a, r, ActApprove); {
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
