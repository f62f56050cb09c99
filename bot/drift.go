package bot

import (
	"context"
	"fmt"
	"time"
)

// Drift is someone who holds a managed group's access without an active grant: access added
// behind the bot's back (in the portal, by a script) that would otherwise stay unnoticed.
type Drift struct {
	Group   *Group
	Access  Access
	User    User
	Removed bool  // standing_access: remove, and the removal succeeded
	Err     error // the removal failed
}

// EvDrift is the audit type of a drift finding ("drift_removed" when it was removed).
const EvDrift = "drift"

// Reconcile lists each managed group's members and owners and, per the group's
// standing_access, ignores, reports (audit + log) or removes anyone without an active grant.
func (e *Engine) Reconcile(ctx context.Context, lister MemberLister) ([]Drift, error) {
	open, err := e.store.OpenRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("reconcile: open requests: %w", err)
	}
	var found []Drift
	var audit []AuditRecord
	for _, g := range e.pol.Groups {
		if g.StandingAccess == "ignore" {
			continue
		}
		for _, a := range g.Access {
			holders, err := lister.Holders(ctx, g.ID, a)
			if err != nil {
				return found, fmt.Errorf("reconcile %s %ss: %w", g.Name, a, err)
			}
			for _, h := range holders {
				if e.granted(ctx, open, h.ID, g.ID, a) {
					continue
				}
				d := Drift{Group: g, Access: a, User: h}
				typ := EvDrift
				if g.StandingAccess == "remove" {
					if d.Err = e.dir.Remove(ctx, g.ID, h.ID, a); d.Err == nil {
						d.Removed, typ = true, EvDrift+"_removed"
					}
				}
				found = append(found, d)
				detail := fmt.Sprintf("%s holds %s of %s without an active grant (standing_access: %s)", h.Handle(), a, g.Name, g.StandingAccess)
				if d.Err != nil {
					detail += "; removal failed: " + d.Err.Error()
				}
				e.log.Warn("drift: access without a grant", "group", g.Name, "access", a, "user", h.Handle(), "removed", d.Removed)
				audit = append(audit, AuditRecord{At: e.clock.Now(), Type: typ, Group: g.Name, Access: a,
					Subject: h.Handle(), Actor: "pimbot", Surface: "reconciler", Detail: detail})
			}
		}
	}
	if len(audit) > 0 {
		if err := e.store.Commit(ctx, &Tx{Audit: audit}); err != nil {
			return found, fmt.Errorf("reconcile: audit: %w", err)
		}
	}
	return found, nil
}

// granted reports whether the holder has an open request that is active (or being activated).
func (e *Engine) granted(ctx context.Context, open map[string]string, userID, groupID string, a Access) bool {
	id, ok := open[userID+"|"+groupID+"|"+string(a)]
	if !ok {
		return false
	}
	r, err := e.store.Get(ctx, id)
	if err != nil {
		return true // unsure: never report (or remove) on a read error
	}
	return r.State == StateActive || r.State == StateScheduled
}

// RunReconciler reconciles every interval until ctx ends. Several replicas may run it: a
// report is then made once per replica, and a removal of a non-holder is a no-op.
func (e *Engine) RunReconciler(ctx context.Context, lister MemberLister, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := e.Reconcile(ctx, lister); err != nil && ctx.Err() == nil {
				e.log.Warn("drift reconciliation failed; trying again next round", "err", err)
			}
		}
	}
}
