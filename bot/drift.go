package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Drift events and audit types. A drift event concerns no request: its Request is a
// snapshot made for the occasion (ID "drift-…", Requester = the holder, no Surface), so a
// surface tells the group's approvers and nobody else.
const (
	EvDrift             = "drift"               // someone holds access without a grant (standing_access: report)
	EvDriftRemoved      = "drift_removed"       // … and was removed (standing_access: remove)
	EvDriftRemoveFailed = "drift_remove_failed" // … and removing them failed; tried again next round
	EvDriftElsewhere    = "drift_elsewhere"     // someone holds a direct group's access through PIM or an access package: managed elsewhere, left alone
)

// IsDrift reports whether an event is a drift finding rather than a step of a request.
func IsDrift(typ string) bool {
	return typ == EvDrift || typ == EvDriftRemoved || typ == EvDriftRemoveFailed || typ == EvDriftElsewhere
}

// Drift tuning.
const (
	DriftInterval    = 15 * time.Minute
	DriftReportEvery = 24 * time.Hour  // a finding that stays is reported again after this
	DriftGrace       = 5 * time.Minute // a grant that ended this recently is not drift (Graph lists lag behind removals)
)

// Drift is someone who holds a managed group's access without an active grant: access added
// behind the bot's back (in the portal, by a script) that would otherwise stay unnoticed.
type Drift struct {
	Group    *Group
	Access   Access
	User     User
	Reported bool // audited and announced this round (false: already reported recently, or by another replica)
	// Elsewhere names who else manages this access ("PIM": the holder has an active PIM for
	// Groups assignment of a direct group; `access package "<name>"`: a delivered access
	// package assignment grants it): reported as managed elsewhere, never removed.
	Elsewhere string
	Removed   bool  // standing_access: remove, and the removal succeeded
	Err       error // the removal failed
}

// ReconcilerConfig wires a Reconciler. Policy, Store and Lister are required.
type ReconcilerConfig struct {
	Policy    *Policy
	Store     Store
	Lister    MemberLister
	Directory Directory // removes for standing_access: remove; nil: such findings are only reported
	// KV, when set, makes each finding reported once per ReportEvery across all replicas,
	// and lets one replica per Interval do the round.
	KV          KV
	Notifiers   []string // names of the surfaces that tell approvers (one notify job each)
	Clock       Clock
	Logger      *slog.Logger
	Interval    time.Duration // Run's period; default DriftInterval
	ReportEvery time.Duration // default DriftReportEvery
	Grace       time.Duration // default DriftGrace
}

// Reconciler compares each managed group's members and owners with the open grants and,
// per the group's standing_access, ignores, reports (audit record and a notification to the
// approvers) or removes anyone who holds access without an active grant.
type Reconciler struct {
	c ReconcilerConfig
}

// NewReconciler builds a Reconciler.
func NewReconciler(c ReconcilerConfig) *Reconciler {
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Interval <= 0 {
		c.Interval = DriftInterval
	}
	if c.ReportEvery <= 0 {
		c.ReportEvery = DriftReportEvery
	}
	if c.Grace <= 0 {
		c.Grace = DriftGrace
	}
	return &Reconciler{c: c}
}

// Reconciler builds the drift reconciler of this engine's policy, store, directory and surfaces.
func (e *Engine) Reconciler(lister MemberLister, interval time.Duration) *Reconciler {
	kv, _ := e.store.(KV)
	return NewReconciler(ReconcilerConfig{Policy: e.pol, Store: e.store, Lister: lister, Directory: e.dir, KV: kv,
		Notifiers: append([]string(nil), e.names...), Clock: e.clock, Logger: e.log, Interval: interval})
}

// Reconcile runs one round of drift reconciliation (see Reconciler.Once).
func (e *Engine) Reconcile(ctx context.Context, lister MemberLister) ([]Drift, error) {
	return e.Reconciler(lister, 0).Once(ctx)
}

// RunReconciler reconciles every interval until ctx ends (see Reconciler.Run).
func (e *Engine) RunReconciler(ctx context.Context, lister MemberLister, interval time.Duration) {
	e.Reconciler(lister, interval).Run(ctx)
}

// Run reconciles every Interval until ctx ends, the first round a tenth of an interval after
// the start (so that frequent restarts do not starve it). With a KV, one replica does each
// round; a round that fails is logged and tried again at the next tick.
func (rc *Reconciler) Run(ctx context.Context) {
	wait := rc.c.Interval / 10
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = rc.c.Interval
		mine, err := rc.TakeRound(ctx)
		if err != nil {
			rc.c.Logger.Warn("drift: cannot take this round; trying next round", "err", err)
			continue
		}
		if !mine {
			continue // another replica does this round
		}
		if _, err := rc.Once(ctx); err != nil && ctx.Err() == nil {
			rc.c.Logger.Warn("drift reconciliation failed in part; trying again next round", "err", err)
		}
	}
}

// TakeRound reports whether this replica does the current round (always without a KV).
// Run calls it each interval; a caller with its own scheduler can too.
func (rc *Reconciler) TakeRound(ctx context.Context) (bool, error) {
	if rc.c.KV == nil {
		return true, nil
	}
	return rc.c.KV.PutIfAbsent(ctx, "drift:round", rc.c.Clock.Now().UTC().Format(time.RFC3339), max(rc.c.Interval*9/10, time.Second))
}

type candidate struct {
	g *Group
	a Access
	u User
}

// Once runs one round and returns what it found. A group whose listing fails is skipped
// (and named in the error); the others are still reconciled.
func (rc *Reconciler) Once(ctx context.Context) ([]Drift, error) {
	c := rc.c
	open, err := c.Store.OpenRequests(ctx)
	if err != nil {
		return nil, fmt.Errorf("drift: open requests: %w", err)
	}
	var errs []error
	var cands []candidate
	for _, g := range c.Policy.Groups {
		if g.StandingAccess == "ignore" {
			continue
		}
		for _, a := range g.Access {
			holders, err := c.Lister.Holders(ctx, g.ID, a)
			if err != nil {
				errs = append(errs, fmt.Errorf("drift: list %ss of %s: %w", a, g.Name, err))
				continue
			}
			for _, h := range holders {
				if !rc.granted(ctx, open, h.ID, g.ID, a) && !rc.pimAssigned(ctx, g, a, h) {
					cands = append(cands, candidate{g, a, h})
				}
			}
		}
	}
	if len(cands) == 0 {
		return nil, errors.Join(errs...)
	}
	// A grant made while the groups were being listed took its open key before its member
	// was added, so a second read of the open keys, after the listing, sees it.
	if open, err = c.Store.OpenRequests(ctx); err != nil {
		return nil, errors.Join(append(errs, fmt.Errorf("drift: open requests: %w", err))...)
	}
	now := c.Clock.Now()
	tx := &Tx{}
	var found []Drift
	var taken []string // KV keys to give back if the commit fails
	for _, cd := range cands {
		if rc.granted(ctx, open, cd.u.ID, cd.g.ID, cd.a) || rc.endedRecently(ctx, cd, now) {
			continue
		}
		d := Drift{Group: cd.g, Access: cd.a, User: cd.u}
		key := "drift:" + cd.g.ID + "|" + string(cd.a) + "|" + cd.u.ID
		typ := EvDrift
		elsewhere, sure := rc.managedElsewhere(ctx, cd)
		if !sure {
			continue // cannot tell whether PIM or an access package manages it: neither report nor remove this round
		}
		if d.Elsewhere = elsewhere; elsewhere != "" {
			key += "|elsewhere"
			typ = EvDriftElsewhere
		}
		// A PIM group is never changed with $ref: its standing holders are reported only; nor
		// is access that PIM or an access package manages in a direct group.
		if cd.g.StandingAccess == "remove" && c.Directory != nil && !cd.g.PIM() && d.Elsewhere == "" {
			if ok, err := rc.claim(ctx, key+"|act", c.Interval/2); err != nil || !ok {
				errs = append(errs, err)
				found = append(found, d) // another replica is handling it
				continue
			}
			taken = append(taken, key+"|act")
			if d.Err = c.Directory.Remove(ctx, cd.g.ID, cd.u.ID, cd.a); d.Err == nil || errors.Is(d.Err, ErrNotHeld) {
				d.Err = nil // not held (any more): what the round wanted
				d.Removed, typ = true, EvDriftRemoved
			} else {
				typ = EvDriftRemoveFailed
				rc.release(ctx, key+"|act") // the next round tries again
				errs = append(errs, fmt.Errorf("drift: remove %s from %s: %w", cd.u.Handle(), cd.g.Name, d.Err))
			}
		}
		// Removals are reported each time; a standing holder once per ReportEvery.
		if !d.Removed {
			ok, err := rc.claim(ctx, key+"|"+typ, c.ReportEvery)
			if err != nil {
				errs = append(errs, err)
			}
			if !ok {
				found = append(found, d)
				continue
			}
			taken = append(taken, key+"|"+typ)
		}
		d.Reported = true
		found = append(found, d)
		rc.record(tx, d, typ, now)
	}
	if len(tx.Audit) > 0 {
		if err := c.Store.Commit(ctx, tx); err != nil {
			for _, k := range taken {
				rc.release(ctx, k)
			}
			for i := range found {
				found[i].Reported = false
			}
			errs = append(errs, fmt.Errorf("drift: record findings: %w", err))
		}
	}
	return found, errors.Join(errs...)
}

// record adds the audit record and one notify job per surface to tx, as the engine's emit
// does for a request's events.
func (rc *Reconciler) record(tx *Tx, d Drift, typ string, now time.Time) {
	g, u := d.Group, d.User
	detail := fmt.Sprintf("%s holds %s of %s without an active grant (standing_access: %s)", u.Handle(), d.Access, g.Name, g.StandingAccess)
	switch {
	case d.Elsewhere != "":
		detail = fmt.Sprintf("%s holds %s of %s through an active %s assignment: managed elsewhere (%s), not standing access; pimbot leaves it alone (standing_access: %s)",
			u.Handle(), d.Access, g.Name, d.Elsewhere, d.Elsewhere, g.StandingAccess)
	case d.Removed:
		detail = fmt.Sprintf("%s held %s of %s without an active grant and was removed (standing_access: remove)", u.Handle(), d.Access, g.Name)
	case d.Err != nil:
		detail += "; removing them failed, trying again next round: " + d.Err.Error()
	}
	rc.c.Logger.Warn("drift: access without a grant", "elsewhere", d.Elsewhere, "group", g.Name, "access", d.Access, "user", u.Handle(), "standing_access", g.StandingAccess, "removed", d.Removed)
	tx.Audit = append(tx.Audit, AuditRecord{At: now, Type: typ, Group: g.Name, Access: d.Access,
		Subject: u.Handle(), Actor: "pimbot", Surface: "reconciler", Detail: detail})
	snap := &Request{ID: eventID("drift", now, g.ID, string(d.Access), u.ID, typ), Kind: KindActivate, Group: g.Name, GroupID: g.ID, Access: d.Access, Requester: u, CreatedAt: now}
	tx.Schedule = append(tx.Schedule, announceTo(rc.c.Notifiers, Event{Type: typ, Request: snap, At: now, Detail: detail, ManagedBy: d.Elsewhere})...)
}

// granted reports whether the holder has an open request that is active or being
// activated. When the request cannot be read, it answers yes: never report, and never
// remove, on a doubt.
func (rc *Reconciler) granted(ctx context.Context, open map[string]string, userID, groupID string, a Access) bool {
	id, ok := open[userID+"|"+groupID+"|"+string(a)]
	if !ok {
		return false
	}
	r, err := rc.c.Store.Get(ctx, id)
	if err != nil {
		return !errors.Is(err, ErrNotFound)
	}
	return r.State == StateActive || r.State == StateScheduled
}

// managedElsewhere tells whether a holder of a direct group's access holds it through an active
// PIM for Groups assignment (the Scheduler port) or a delivered access package assignment (the
// AccessPackageReader port), each read from the lister or else the directory: "PIM" or
// `access package "<name>"` if so, "" if not (or when the directory cannot tell, or may not
// read: it answers ErrForbidden to a tenant without PIM for Groups or entitlement management,
// or without the permission, where drift stays as it was). sure is false when a read failed
// otherwise: do nothing on a doubt.
func (rc *Reconciler) managedElsewhere(ctx context.Context, cd candidate) (elsewhere string, sure bool) {
	if cd.g.PIM() {
		return "", true // pimAssigned already left its PIM holders out
	}
	if s, ok := port[Scheduler](rc); ok {
		assigned, err := s.Assigned(ctx, cd.g.ID, cd.u.ID, cd.a)
		switch {
		case err == nil && assigned:
			return "PIM", true
		case err != nil && !errors.Is(err, ErrForbidden):
			rc.c.Logger.Warn("drift: cannot read the PIM assignments of a holder; not reporting them this round", "group", cd.g.Name, "user", cd.u.Handle(), "err", err)
			return "", false
		}
	}
	if p, ok := port[AccessPackageReader](rc); ok {
		name, held, err := p.AccessPackages(ctx, cd.g.ID, cd.u.ID, cd.a)
		switch {
		case err == nil && held:
			return fmt.Sprintf("access package %q", name), true
		case err != nil && !errors.Is(err, ErrForbidden):
			rc.c.Logger.Warn("drift: cannot read the access package assignments of a holder; not reporting them this round", "group", cd.g.Name, "user", cd.u.Handle(), "err", err)
			return "", false
		}
	}
	return "", true
}

// port is the lister as a T, or else the directory.
func port[T any](rc *Reconciler) (T, bool) {
	if p, ok := rc.c.Lister.(T); ok {
		return p, true
	}
	p, ok := rc.c.Directory.(T)
	return p, ok
}

// endedRecently reports a grant of this access that ended within Grace: its removal may
// not show in Graph's listings yet. On a read error it answers yes (do nothing on a doubt).
func (rc *Reconciler) endedRecently(ctx context.Context, cd candidate, now time.Time) bool {
	rs, err := rc.c.Store.ListByUser(ctx, cd.u.ID, 20)
	if err != nil {
		return true
	}
	for _, r := range rs {
		if r.GroupID == cd.g.ID && r.Access == cd.a && !r.EndedAt.IsZero() && now.Sub(r.EndedAt) < rc.c.Grace {
			return true
		}
	}
	return false
}

// claim takes a KV key for ttl (true without a KV: every round acts).
func (rc *Reconciler) claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if rc.c.KV == nil {
		return true, nil
	}
	ok, err := rc.c.KV.PutIfAbsent(ctx, key, rc.c.Clock.Now().UTC().Format(time.RFC3339), max(ttl, time.Minute))
	if err != nil {
		return false, fmt.Errorf("drift: %w", err)
	}
	return ok, nil
}

func (rc *Reconciler) release(ctx context.Context, key string) {
	if rc.c.KV == nil {
		return
	}
	if err := rc.c.KV.DeleteValue(ctx, key); err != nil {
		rc.c.Logger.Warn("drift: release a claim", "key", key, "err", err)
	}
}
