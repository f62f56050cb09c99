package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what people type, so nothing oversized reaches Redis or chat markup.
const (
	MaxReasonLen  = 1000
	MaxTicketLen  = 64
	MaxStartAhead = 30 * 24 * time.Hour
)

// Actor is the person acting, already resolved to a directory user, and where they act.
type Actor struct {
	User    User
	Surface string
}

// Config wires an Engine.
type Config struct {
	Policy    *Policy
	Store     Store
	Directory Directory
	Clock     Clock
	Notifiers []Notifier
	Logger    *slog.Logger
	Hooks     Hooks
	MFA       MFAVerifier   // step-up verification with Entra; nil: groups with require_mfa refuse requests
	Lease     time.Duration // job lease; default JobLease
	Poll      time.Duration // how often an idle worker looks for due jobs; default PollInterval
}

// Hooks let the operator's metrics observe the engine without the engine knowing Prometheus.
type Hooks struct {
	Submitted func(surface, outcome string)
	Decided   func(decision string)
	JobDone   func(kind string, lag time.Duration, err error)
	TakenOver func()
	// DeadLettered: a job (or its request) could not be decoded and left the queue.
	DeadLettered func(kind string)
}

// Engine takes every decision: who may do what, which state comes next, which jobs follow.
type Engine struct {
	pol       *Policy
	store     Store
	dir       Directory
	clock     Clock
	notifiers map[string]Notifier
	names     []string
	log       *slog.Logger
	hooks     Hooks
	mfa       MFAVerifier
	lease     time.Duration
	poll      time.Duration
	lag       time.Duration // the directory's replication lag
	kick      chan struct{}
}

// New builds an Engine.
func New(c Config) *Engine {
	e := &Engine{pol: c.Policy, store: c.Store, dir: c.Directory, clock: c.Clock, log: c.Logger, hooks: c.Hooks, mfa: c.MFA,
		notifiers: map[string]Notifier{}, kick: make(chan struct{}, 1)}
	if e.clock == nil {
		e.clock = SystemClock{}
	}
	e.lease, e.poll = c.Lease, c.Poll
	if e.lease <= 0 {
		e.lease = JobLease
	}
	if e.poll <= 0 {
		e.poll = PollInterval
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.lag = DefaultReplicationLag
	if l, ok := e.dir.(Lagging); ok {
		e.lag = max(l.ReplicationLag(), 0)
	}
	for _, n := range c.Notifiers {
		e.AddNotifier(n)
	}
	return e
}

// AddNotifier registers a surface before the engine runs.
func (e *Engine) AddNotifier(n Notifier) {
	if _, ok := e.notifiers[n.Name()]; !ok {
		e.names = append(e.names, n.Name())
	}
	e.notifiers[n.Name()] = n
}

// Policy is the loaded policy.
func (e *Engine) Policy() *Policy { return e.pol }

// Directory is the directory the engine uses (surfaces resolve people through it).
func (e *Engine) Directory() Directory { return e.dir }

// Now is the engine's clock.
func (e *Engine) Now() time.Time { return e.clock.Now() }

// SubmitInput is the activation form.
type SubmitInput struct {
	Group    string
	Access   Access        // empty: the group's first allowed kind
	Duration time.Duration // zero: the group's default
	Start    time.Time     // zero: now
	Reason   string
	Ticket   string
}

// matches reports whether a policy entry (user e-mail/UPN/id) names u.
func matches(entry string, u User) bool {
	e := strings.ToLower(strings.TrimSpace(entry))
	return e != "" && (e == strings.ToLower(u.ID) || e == strings.ToLower(u.Email) || e == strings.ToLower(u.UPN))
}

// inList reports whether u is named in a list of users and group:<ref> entries.
func (e *Engine) inList(ctx context.Context, list []string, u User) (bool, error) {
	var groups []string
	for _, entry := range list {
		if ref, ok := strings.CutPrefix(entry, "group:"); ok {
			groups = append(groups, ref)
		} else if matches(entry, u) {
			return true, nil
		}
	}
	for _, ref := range groups {
		ok, err := e.dir.InGroup(ctx, u.ID, ref)
		if err != nil {
			return false, fmt.Errorf("check %s in %s: %w", u.Handle(), ref, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// IsEligible reports whether u may activate g.
func (e *Engine) IsEligible(ctx context.Context, u User, g *Group) (bool, error) {
	return e.inList(ctx, g.Eligible, u)
}

// IsApprover reports whether u may approve requests for g.
func (e *Engine) IsApprover(ctx context.Context, u User, g *Group) (bool, error) {
	return e.inList(ctx, g.Approvers, u)
}

// EligibleGroups lists the groups u may activate, in policy order.
func (e *Engine) EligibleGroups(ctx context.Context, u User) ([]*Group, error) {
	var out []*Group
	for _, g := range e.pol.Groups {
		ok, err := e.IsEligible(ctx, u, g)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, g)
		}
	}
	return out, nil
}

func (e *Engine) groupOf(r *Request) (*Group, error) {
	g, ok := e.pol.Group(r.GroupID)
	if !ok {
		return nil, fmt.Errorf("group %s of request %s is no longer in the policy: %w", r.Group, r.ID, ErrNotFound)
	}
	return g, nil
}

// validate checks the form against g's policy and returns the normalized values.
func (e *Engine) validate(g *Group, in *SubmitInput, now time.Time) error {
	if in.Access == "" {
		in.Access = g.Access[0]
	}
	if !g.Allows(in.Access) {
		return fieldErr(FieldAccess, "%s allows %s only", g.Name, accessList(g.Access))
	}
	if in.Duration == 0 {
		in.Duration = g.DefaultDuration
	}
	if in.Duration < g.MinDuration || in.Duration > g.MaxDuration {
		return fieldErr(FieldDuration, "%s is not allowed for %s; choose between %s and %s",
			FormatDuration(in.Duration), g.Name, FormatDuration(g.MinDuration), FormatDuration(g.MaxDuration))
	}
	in.Reason = strings.TrimSpace(in.Reason)
	in.Ticket = strings.TrimSpace(in.Ticket)
	if !utf8.ValidString(in.Reason) || !utf8.ValidString(in.Ticket) {
		return fieldErr(FieldReason, "the text is not valid UTF-8")
	}
	if g.RequireJustification && in.Reason == "" {
		return fieldErr(FieldReason, "%s needs a reason (why do you need access?)", g.Name)
	}
	if n := utf8.RuneCountInString(in.Reason); n > MaxReasonLen {
		return fieldErr(FieldReason, "the reason is %d characters long; at most %d are allowed", n, MaxReasonLen)
	}
	if g.RequireTicket && in.Ticket == "" {
		return fieldErr(FieldTicket, "%s needs a ticket number", g.Name)
	}
	if len(in.Ticket) > MaxTicketLen || strings.ContainsAny(in.Ticket, " \t\r\n<>&`*_~|") {
		return fieldErr(FieldTicket, "a ticket is one word of at most %d characters, e.g. INC-1234", MaxTicketLen)
	}
	switch {
	case in.Start.IsZero():
		in.Start = now
	case in.Start.Before(now.Add(-e.pol.Settings.StartTolerance)):
		return fieldErr(FieldStart, "the start time %s is in the past; choose now or a later time", in.Start.UTC().Format("2006-01-02 15:04 MST"))
	case in.Start.After(now.Add(MaxStartAhead)):
		return fieldErr(FieldStart, "the start time is more than %s ahead; choose an earlier time", FormatDuration(MaxStartAhead))
	case in.Start.Before(now):
		in.Start = now
	}
	return nil
}

func accessList(xs []Access) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, " and ")
}

func (e *Engine) limits(userID string, now time.Time) *Limits {
	s := e.pol.Settings
	if s.RequestsPerMinute == 0 && s.MaxPending == 0 {
		return nil
	}
	return &Limits{UserID: userID, PerMinute: s.RequestsPerMinute, MaxOpen: s.MaxPending, Minute: now.Unix() / 60}
}

// Submit validates an activation request against the policy and records it.
func (e *Engine) Submit(ctx context.Context, a Actor, in SubmitInput) (r *Request, err error) {
	defer func() { e.observeSubmit(a.Surface, err) }()
	if err := e.checkEnabled(ctx, a, "request access"); err != nil {
		return nil, err
	}
	g, ok := e.pol.Group(in.Group)
	if !ok {
		return nil, e.unknownGroup(ctx, a, in.Group)
	}
	eligible, err := e.IsEligible(ctx, a.User, g)
	if err != nil {
		return nil, fmt.Errorf("submit: %w", errors.Join(ErrUnavailable, err))
	}
	if !eligible {
		return nil, fieldErr(FieldGroup, "you are not eligible for %s; ask its owners to add you to its policy", g.Name)
	}
	if g.RequireMFA && (e.mfa == nil || e.mfa.AuthContext() == "") {
		return nil, fieldErr(FieldGroup, "%s requires MFA verification with Microsoft, which this bot is not set up for (it needs an Entra app registration and a Conditional Access authentication context); ask your administrators", g.Name)
	}
	now := e.clock.Now()
	if err := e.validate(g, &in, now); err != nil {
		return nil, err
	}
	r = &Request{
		ID: NewID(), Kind: KindActivate, Group: g.Name, GroupID: g.ID, Access: in.Access,
		Requester: a.User, Surface: a.Surface, Reason: in.Reason, Ticket: in.Ticket,
		Duration: in.Duration, Start: in.Start, CreatedAt: now, ApprovalsRequired: g.ApprovalsRequired,
	}
	return e.create(ctx, r, g, a, now)
}

// create records a new request (or extension) with its slot, limits, and first step:
// step-up MFA, the approvers, or scheduling.
func (e *Engine) create(ctx context.Context, r *Request, g *Group, a Actor, now time.Time) (*Request, error) {
	tx := &Tx{Puts: []Put{{Request: r}}, OpenLock: []Lock{lockOf(r)}, Limits: e.limits(a.User.ID, now)}
	if g.RequireMFA {
		e.awaitMFA(tx, r, g, a, now)
	} else if _, err := e.route(ctx, tx, r, g, a, now); err != nil {
		return nil, err
	}
	if err := e.store.Commit(ctx, tx); err != nil {
		return nil, e.mapCommitErr(r.Kind, err)
	}
	e.Kick()
	return r, nil
}

// route sends a new (or just verified) request on: to the approvers, or straight to
// scheduling when the group needs no approval (an extension is then applied at once).
func (e *Engine) route(ctx context.Context, tx *Tx, r *Request, g *Group, a Actor, now time.Time) (*Tx, error) {
	var parent *Request
	if r.Kind == KindExtend {
		p, err := e.load(ctx, r.ParentID)
		if err != nil {
			return nil, err
		}
		parent = p
	}
	if g.RequireApproval {
		r.State = StatePending
		timeout := g.PendingTimeout
		if parent != nil {
			timeout = minDur(timeout, parent.EndsAt.Sub(now))
		}
		tx.Schedule = append(tx.Schedule, Job{ID: JobID(JobTimeout, r.ID), Kind: JobTimeout, RequestID: r.ID, Due: now.Add(timeout)})
		e.emit(tx, Event{Type: EvSubmitted, Request: r, Parent: parent, Actor: &r.Requester, At: now}, a)
		return tx, nil
	}
	r.DecidedAt = now
	if r.Kind == KindExtend {
		e.emit(tx, Event{Type: EvSubmitted, Request: r, Parent: parent, Actor: &r.Requester, At: now, Detail: "no approval needed"}, a)
		return e.applyExtension(ctx, tx, r, a, now)
	}
	r.State = StateScheduled
	if r.Start.Before(now) {
		r.Start = now
	}
	tx.Schedule = append(tx.Schedule, activateJob(r))
	e.emit(tx, Event{Type: EvSubmitted, Request: r, Actor: &r.Requester, At: now, Detail: "no approval needed"}, a)
	return tx, nil
}

func (e *Engine) observeSubmit(surface string, err error) {
	if e.hooks.Submitted == nil {
		return
	}
	outcome := "accepted"
	var fe *FieldError
	var de *DuplicateError
	var le *LimitError
	switch {
	case err == nil:
	case errors.As(err, &fe):
		outcome = "invalid"
	case errors.As(err, &de):
		outcome = "duplicate"
	case errors.As(err, &le):
		outcome = "limited"
	default:
		outcome = "error"
	}
	e.hooks.Submitted(surface, outcome)
}

func (e *Engine) unknownGroup(ctx context.Context, a Actor, name string) error {
	gs, err := e.EligibleGroups(ctx, a.User)
	if err != nil || len(gs) == 0 {
		return fieldErr(FieldGroup, "there is no group %q", truncate(name, 64))
	}
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return fieldErr(FieldGroup, "there is no group %q; you can activate: %s", truncate(name, 64), strings.Join(names, ", "))
}

func activateJob(r *Request) Job {
	return Job{ID: JobID(JobActivate, r.ID), Kind: JobActivate, RequestID: r.ID, Due: r.Start}
}

func (e *Engine) mapCommitErr(op string, err error) error {
	var de *DuplicateError
	var le *LimitError
	switch {
	case errors.As(err, &de), errors.As(err, &le), errors.Is(err, ErrConflict):
		return err
	}
	return fmt.Errorf("%s: %w", op, errors.Join(ErrUnavailable, err))
}

// emit adds the notify jobs and the audit record of an event to tx.
func (e *Engine) emit(tx *Tx, ev Event, a Actor) {
	snap := ev.Request.Clone()
	for _, p := range tx.Puts { // the version the record will have once tx commits
		if p.Request.ID == snap.ID {
			snap.Version = p.Expect + 1
		}
	}
	ev.Request = snap
	for _, name := range e.names {
		tx.Schedule = append(tx.Schedule, Job{
			ID:   fmt.Sprintf("%s:%s:%s:%d:%s", JobNotify, snap.ID, ev.Type, snap.Version, name),
			Kind: JobNotify, RequestID: snap.ID, Due: ev.At, Notifier: name, Event: &ev,
		})
	}
	actor := "pimbot"
	if ev.Actor != nil {
		actor = ev.Actor.Handle()
	}
	tx.Audit = append(tx.Audit, AuditRecord{
		At: ev.At, Type: ev.Type, RequestID: snap.ID, Group: snap.Group, Access: snap.Access,
		Subject: snap.Requester.Handle(), Actor: actor, Surface: a.Surface, Detail: auditDetail(ev),
	})
}

func auditDetail(ev Event) string {
	r := ev.Request
	switch ev.Type {
	case EvSubmitted:
		d := fmt.Sprintf("%s for %s from %s", r.Kind, FormatDuration(r.Duration), r.Start.UTC().Format(time.RFC3339))
		if r.Reason != "" {
			d += "; reason: " + r.Reason
		}
		if r.Ticket != "" {
			d += "; ticket: " + r.Ticket
		}
		if ev.Detail != "" {
			d += "; " + ev.Detail
		}
		return d
	case EvApprovalAdded, EvApproved:
		return fmt.Sprintf("%d of %d approvals", len(r.Approvals), r.ApprovalsRequired)
	case EvActivated:
		return "until " + r.EndsAt.UTC().Format(time.RFC3339)
	}
	return ev.Detail
}

// load reads a request and checks the id's shape first, so junk never reaches the store.
func (e *Engine) load(ctx context.Context, id string) (*Request, error) {
	id = NormalizeID(id)
	if !ValidID(id) {
		return nil, fmt.Errorf("request %q: %w", truncate(id, 20), ErrNotFound)
	}
	r, err := e.store.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("request %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("load request %s: %w", id, errors.Join(ErrUnavailable, err))
	}
	return r, nil
}

// transition runs read-decide-write with compare-and-swap, retrying on a concurrent change.
func (e *Engine) transition(ctx context.Context, op, id string, decide func(r *Request) (*Tx, error)) (*Request, error) {
	for attempt := 0; ; attempt++ {
		r, err := e.load(ctx, id)
		if err != nil {
			return nil, err
		}
		tx, err := decide(r)
		if err != nil {
			return nil, err
		}
		err = e.store.Commit(ctx, tx)
		if err == nil {
			e.Kick()
			for _, p := range tx.Puts {
				if p.Request.ID == r.ID {
					p.Request.Version = p.Expect + 1
					return p.Request, nil
				}
			}
			return r, nil
		}
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		return nil, e.mapCommitErr(op, err)
	}
}

// Approve records an approver's vote; with the quorum reached the request is approved.
func (e *Engine) Approve(ctx context.Context, a Actor, id string) (*Request, error) {
	r, err := e.transition(ctx, "approve", id, func(cur *Request) (*Tx, error) {
		if err := e.checkDecider(ctx, a, cur, "approve"); err != nil {
			return nil, err
		}
		if cur.ApprovedBy(a.User.ID) {
			return nil, &PermissionError{Action: "approve", Reason: fmt.Sprintf("you already approved it; it needs %d more approver(s)", cur.ApprovalsRequired-len(cur.Approvals))}
		}
		now := e.clock.Now()
		r := cur.Clone()
		r.Approvals = append(r.Approvals, Decision{By: a.User, At: now, Surface: a.Surface})
		tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}}
		if len(r.Approvals) < r.ApprovalsRequired {
			e.emit(tx, Event{Type: EvApprovalAdded, Request: r, Actor: &a.User, At: now}, a)
			return tx, nil
		}
		r.DecidedAt = now
		tx.Unschedule = []string{JobID(JobTimeout, r.ID)}
		if r.Kind == KindExtend {
			return e.applyExtension(ctx, tx, r, a, now)
		}
		r.State = StateScheduled
		if r.Start.Before(now) {
			r.Start = now
		}
		tx.Schedule = append(tx.Schedule, activateJob(r))
		e.emit(tx, Event{Type: EvApproved, Request: r, Actor: &a.User, At: now}, a)
		return tx, nil
	})
	if err == nil && e.hooks.Decided != nil {
		e.hooks.Decided("approve")
	}
	return r, err
}

// Deny refuses a pending request, with an optional reason.
func (e *Engine) Deny(ctx context.Context, a Actor, id, reason string) (*Request, error) {
	reason = strings.TrimSpace(reason)
	if n := utf8.RuneCountInString(reason); n > MaxReasonLen {
		return nil, fieldErr(FieldReason, "the reason is %d characters long; at most %d are allowed", n, MaxReasonLen)
	}
	r, err := e.transition(ctx, "deny", id, func(cur *Request) (*Tx, error) {
		if err := e.checkDecider(ctx, a, cur, "deny"); err != nil {
			return nil, err
		}
		now := e.clock.Now()
		r := cur.Clone()
		r.State, r.DecidedAt, r.EndedAt = StateDenied, now, now
		r.Denial = &Decision{By: a.User, At: now, Surface: a.Surface}
		r.DenyReason = reason
		tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}, Unschedule: []string{JobID(JobTimeout, r.ID)}, OpenUnlock: []Lock{lockOf(r)}}
		e.emit(tx, Event{Type: EvDenied, Request: r, Actor: &a.User, At: now, Detail: reason}, a)
		return tx, nil
	})
	if err == nil && e.hooks.Decided != nil {
		e.hooks.Decided("deny")
	}
	return r, err
}

// checkDecider: only a pending request, only an approver of its group, never the requester unless allowed.
func (e *Engine) checkDecider(ctx context.Context, a Actor, r *Request, action string) error {
	if err := e.checkEnabled(ctx, a, action); err != nil {
		return err
	}
	g, err := e.groupOf(r)
	if err != nil {
		return err
	}
	ok, err := e.IsApprover(ctx, a.User, g)
	if err != nil {
		return fmt.Errorf("%s: %w", action, errors.Join(ErrUnavailable, err))
	}
	if !ok {
		return &PermissionError{Action: action, Reason: "only " + approverWords(g) + " may " + action + " requests for " + g.Name}
	}
	if r.State != StatePending {
		return &StateError{ID: r.ID, State: r.State, Action: action}
	}
	if action == "approve" && r.Requester.ID == a.User.ID && !g.AllowSelfApproval {
		return &PermissionError{Action: action, Reason: "it is your own request; another approver of " + g.Name + " must decide"}
	}
	return nil
}

// checkEnabled refuses a person whose directory account is disabled (Entra accountEnabled:
// false): they may neither request nor approve. Ending access (cancel, deactivate) stays open.
// The account is read from the directory (whose cache is short), not trusted from the
// surface's identity cache, which may be an hour old.
func (e *Engine) checkEnabled(ctx context.Context, a Actor, action string) error {
	u := a.User
	if !u.Disabled {
		fresh, err := e.dir.ResolveUser(ctx, a.User.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			return &PermissionError{Action: action, Reason: "your account (" + u.Handle() + ") is no longer in the directory"}
		case err != nil:
			return fmt.Errorf("%s: look up %s: %w", action, u.Handle(), errors.Join(ErrUnavailable, err))
		}
		u.Disabled = fresh.Disabled
	}
	if u.Disabled {
		return &PermissionError{Action: action, Reason: "your directory account (" + u.Handle() + ") is disabled; ask your administrators"}
	}
	return nil
}

func approverWords(g *Group) string {
	if len(g.Approvers) == 0 {
		return "nobody (the group needs no approval)"
	}
	xs := make([]string, len(g.Approvers))
	for i, x := range g.Approvers {
		if ref, ok := strings.CutPrefix(x, "group:"); ok {
			xs[i] = "members of " + ref
		} else {
			xs[i] = x
		}
	}
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

func lockOf(r *Request) Lock {
	key := r.OpenKey()
	if r.Kind == KindExtend {
		key = "ext|" + r.ParentID
	}
	return Lock{Key: key, RequestID: r.ID, UserID: r.Requester.ID}
}

// Cancel withdraws the requester's own pending or scheduled request.
func (e *Engine) Cancel(ctx context.Context, a Actor, id string) (*Request, error) {
	return e.transition(ctx, "cancel", id, func(cur *Request) (*Tx, error) {
		if cur.Requester.ID != a.User.ID {
			return nil, &PermissionError{Action: "cancel", Reason: "only the requester (" + cur.Requester.Handle() + ") may cancel it"}
		}
		if cur.State != StatePending && cur.State != StateScheduled && cur.State != StateVerifying {
			if cur.State == StateActive {
				return nil, &PermissionError{Action: "cancel", Reason: "it is already active; deactivate it instead (deactivate " + cur.ID + ")"}
			}
			return nil, &StateError{ID: cur.ID, State: cur.State, Action: "cancel"}
		}
		now := e.clock.Now()
		r := cur.Clone()
		r.State, r.EndedAt, r.EndReason = StateCanceled, now, "canceled by the requester"
		r.EndedBy = &Decision{By: a.User, At: now, Surface: a.Surface}
		tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}, Unschedule: []string{JobID(JobTimeout, r.ID)}}
		if cur.State == StateScheduled && r.Kind == KindActivate {
			// An activation may be in flight: let the activate job run now, find the request
			// canceled, make sure nothing was granted, and only then release the open lock.
			j := activateJob(r)
			j.Due = now
			tx.Schedule = append(tx.Schedule, j)
		} else {
			tx.OpenUnlock = []Lock{lockOf(r)}
		}
		e.emit(tx, Event{Type: EvCanceled, Request: r, Actor: &a.User, At: now}, a)
		return tx, nil
	})
}

// Deactivate ends an active grant early (the requester or an approver of the group).
// A scheduled grant that has not started is canceled instead.
func (e *Engine) Deactivate(ctx context.Context, a Actor, id string) (*Request, error) {
	return e.transition(ctx, "deactivate", id, func(cur *Request) (*Tx, error) {
		if cur.Requester.ID != a.User.ID {
			g, err := e.groupOf(cur)
			if err != nil {
				return nil, err
			}
			ok, err := e.IsApprover(ctx, a.User, g)
			if err != nil {
				return nil, fmt.Errorf("deactivate: %w", errors.Join(ErrUnavailable, err))
			}
			if !ok {
				return nil, &PermissionError{Action: "deactivate", Reason: "only the requester or " + approverWords(g) + " may deactivate it"}
			}
		}
		if cur.Kind == KindExtend {
			return nil, &StateError{ID: cur.ID, State: cur.State, Action: "deactivate"}
		}
		now := e.clock.Now()
		r := cur.Clone()
		switch cur.State {
		case StateActive:
			if cur.Ending() {
				return nil, &StateError{ID: cur.ID, State: "being deactivated", Action: "deactivate"}
			}
			r.EndsAt, r.EndReason = now, "deactivated by "+a.User.Handle()
			r.EndedBy = &Decision{By: a.User, At: now, Surface: a.Surface}
			tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}},
				Schedule:   []Job{{ID: JobID(JobEnd, r.ID), Kind: JobEnd, RequestID: r.ID, Due: now}},
				Unschedule: []string{JobID(JobRemind, r.ID)},
				// Audited now; people hear of it when the removal is done (the ended event).
				Audit: []AuditRecord{{At: now, Type: "deactivate", RequestID: r.ID, Group: r.Group, Access: r.Access,
					Subject: r.Requester.Handle(), Actor: a.User.Handle(), Surface: a.Surface, Detail: r.EndReason}}}
			return tx, nil
		case StateScheduled, StatePending:
			r.State, r.EndedAt, r.EndReason = StateCanceled, now, "canceled by "+a.User.Handle()
			r.EndedBy = &Decision{By: a.User, At: now, Surface: a.Surface}
			j := activateJob(r)
			j.Due = now
			tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}, Unschedule: []string{JobID(JobTimeout, r.ID)}}
			if cur.State == StateScheduled {
				tx.Schedule = []Job{j}
			} else {
				tx.OpenUnlock = []Lock{lockOf(r)}
			}
			e.emit(tx, Event{Type: EvCanceled, Request: r, Actor: &a.User, At: now}, a)
			return tx, nil
		}
		return nil, &StateError{ID: cur.ID, State: cur.State, Action: "deactivate"}
	})
}

// Extend asks for more time on an active grant. The extension is judged like a new
// request (eligibility, duration, approval); once approved it moves the end.
func (e *Engine) Extend(ctx context.Context, a Actor, id string, d time.Duration, reason string) (r *Request, err error) {
	defer func() { e.observeSubmit(a.Surface, err) }()
	parent, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := e.checkEnabled(ctx, a, "extend"); err != nil {
		return nil, err
	}
	if parent.Requester.ID != a.User.ID {
		return nil, &PermissionError{Action: "extend", Reason: "only the requester (" + parent.Requester.Handle() + ") may extend it"}
	}
	if parent.State != StateActive || parent.Ending() || parent.Kind != KindActivate {
		return nil, &StateError{ID: parent.ID, State: parent.State, Action: "extend"}
	}
	g, err := e.groupOf(parent)
	if err != nil {
		return nil, err
	}
	eligible, err := e.IsEligible(ctx, a.User, g)
	if err != nil {
		return nil, fmt.Errorf("extend: %w", errors.Join(ErrUnavailable, err))
	}
	if !eligible {
		return nil, fieldErr(FieldGroup, "you are no longer eligible for %s", g.Name)
	}
	now := e.clock.Now()
	if d == 0 {
		d = g.DefaultDuration
	}
	room := parent.ActivatedAt.Add(g.MaxDuration).Sub(parent.EndsAt).Truncate(time.Minute)
	if d <= 0 || d > room {
		if room < time.Minute {
			return nil, fieldErr(FieldDuration, "request %s already lasts the maximum of %s for %s", parent.ID, FormatDuration(g.MaxDuration), g.Name)
		}
		return nil, fieldErr(FieldDuration, "you can extend by at most %s (the maximum for %s is %s in total)", FormatDuration(room), g.Name, FormatDuration(g.MaxDuration))
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = parent.Reason
	}
	if n := utf8.RuneCountInString(reason); n > MaxReasonLen {
		return nil, fieldErr(FieldReason, "the reason is %d characters long; at most %d are allowed", n, MaxReasonLen)
	}
	r = &Request{
		ID: NewID(), Kind: KindExtend, ParentID: parent.ID, Group: g.Name, GroupID: g.ID, Access: parent.Access,
		Requester: a.User, Surface: a.Surface, Reason: reason, Ticket: parent.Ticket, Duration: d,
		CreatedAt: now, ApprovalsRequired: g.ApprovalsRequired,
	}
	return e.create(ctx, r, g, a, now)
}

func minDur(a, b time.Duration) time.Duration {
	if b < time.Minute {
		b = time.Minute
	}
	if a < b {
		return a
	}
	return b
}

// applyExtension moves the parent's end by the extension's duration, in the same tx.
func (e *Engine) applyExtension(ctx context.Context, tx *Tx, ext *Request, a Actor, now time.Time) (*Tx, error) {
	parent, err := e.load(ctx, ext.ParentID)
	if err != nil {
		return nil, err
	}
	g, err := e.groupOf(parent)
	if err != nil {
		return nil, err
	}
	ext.State, ext.EndedAt = StateApplied, now
	tx.OpenUnlock = append(tx.OpenUnlock, lockOf(ext))
	if parent.State != StateActive || parent.Ending() {
		ext.State, ext.EndReason = StateCanceled, "the grant it extends is no longer active"
		e.emit(tx, Event{Type: EvCanceled, Request: ext, Parent: parent, At: now, Detail: ext.EndReason}, a)
		return tx, nil
	}
	p := parent.Clone()
	p.EndsAt = p.EndsAt.Add(ext.Duration)
	if max := p.ActivatedAt.Add(g.MaxDuration); p.EndsAt.After(max) {
		p.EndsAt = max
	}
	p.Extensions = append(p.Extensions, ext.ID)
	tx.Puts = append(tx.Puts, Put{Request: p, Expect: parent.Version})
	tx.Schedule = append(tx.Schedule, Job{ID: JobID(JobEnd, p.ID), Kind: JobEnd, RequestID: p.ID, Due: p.EndsAt})
	if rj, ok := remindJob(p, g); ok {
		tx.Schedule = append(tx.Schedule, rj)
	}
	var actor *User
	if len(ext.Approvals) > 0 {
		actor = &ext.Approvals[len(ext.Approvals)-1].By
	}
	e.emit(tx, Event{Type: EvApproved, Request: ext, Parent: p, Actor: actor, At: now}, a)
	e.emit(tx, Event{Type: EvExtended, Request: p, Actor: actor, At: now, Detail: "by " + FormatDuration(ext.Duration) + " (request " + ext.ID + ")"}, a)
	return tx, nil
}

func remindJob(r *Request, g *Group) (Job, bool) {
	if g.ReminderBefore <= 0 || r.EndsAt.Sub(r.ActivatedAt) < 2*g.ReminderBefore {
		return Job{}, false
	}
	return Job{ID: JobID(JobRemind, r.ID), Kind: JobRemind, RequestID: r.ID, Due: r.EndsAt.Add(-g.ReminderBefore)}, true
}

// Get returns one request to its requester or an approver of its group.
func (e *Engine) Get(ctx context.Context, a Actor, id string) (*Request, error) {
	r, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Requester.ID == a.User.ID {
		return r, nil
	}
	g, err := e.groupOf(r)
	if err != nil {
		return nil, err
	}
	ok, err := e.IsApprover(ctx, a.User, g)
	if err != nil {
		return nil, fmt.Errorf("view: %w", errors.Join(ErrUnavailable, err))
	}
	if !ok {
		return nil, &PermissionError{Action: "view", Reason: "it belongs to someone else"}
	}
	return r, nil
}

// List returns the person's requests and grants, newest first.
func (e *Engine) List(ctx context.Context, a Actor, limit int) ([]*Request, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	rs, err := e.store.ListByUser(ctx, a.User.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("list: %w", errors.Join(ErrUnavailable, err))
	}
	return rs, nil
}

// Kick wakes the local worker (new jobs may be due now).
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}
