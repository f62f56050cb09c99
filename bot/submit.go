package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Submitting a request: who may ask for what, validation of the form, and where a new
// request goes next (MFA, approval, or its start).

// Limits on what people type, so nothing oversized reaches Redis or chat markup.
const (
	MaxReasonLen  = 1000
	MaxTicketLen  = 64
	MaxStartAhead = 30 * 24 * time.Hour
)

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
	m, _ := ctx.Value(memoKey{}).(*actionsMemo)
	if m != nil {
		if ok, seen := m.approver[g.ID]; seen {
			return ok, nil
		}
	}
	ok, err := e.inList(ctx, g.Approvers, u)
	if m != nil && err == nil {
		m.approver[g.ID] = ok
	}
	return ok, err
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
		return fieldErr(FieldAccess, "only %s may be activated for %s", accessList(g.Access), g.Name)
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
		return fieldErr(FieldReason, "a reason is needed for %s (why do you need access?)", g.Name)
	}
	if n := utf8.RuneCountInString(in.Reason); n > MaxReasonLen {
		return fieldErr(FieldReason, "the reason is %d characters long; at most %d are allowed", n, MaxReasonLen)
	}
	if g.RequireTicket && in.Ticket == "" {
		return fieldErr(FieldTicket, "a ticket number is needed for %s", g.Name)
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
		return nil, fmt.Errorf("submit: %w", Unavailable("the directory", err))
	}
	if !eligible {
		return nil, fieldErr(FieldGroup, "you are not eligible for %s; ask its owners to add you to its policy", g.Name)
	}
	if g.RequireMFA && (e.mfa == nil || e.mfa.AuthContext() == "") {
		return nil, fieldErr(FieldGroup, "MFA verification with Microsoft is required for %s, and this bot is not set up for it (it needs an Entra app registration and a Conditional Access authentication context); ask your administrators", g.Name)
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
		aa, note := e.onCallApproval(ctx, r, g, now)
		if aa != nil {
			e.autoApprove(tx, r, aa, a, now)
			return tx, nil
		}
		r.OnCallNote = note
		r.State = StatePending
		timeout := g.PendingTimeout
		if parent != nil {
			timeout = minDur(timeout, parent.EndsAt.Sub(now))
		}
		tx.Schedule = append(tx.Schedule, Job{ID: JobID(JobTimeout, r.ID), Kind: JobTimeout, RequestID: r.ID, Due: now.Add(timeout)})
		e.emit(tx, Event{Type: EvSubmitted, Request: r, Parent: parent, Actor: &r.Requester, At: now, Detail: note}, a)
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
	var names []string
	if gs, err := e.EligibleGroups(ctx, a.User); err == nil {
		for _, g := range gs {
			names = append(names, g.Name)
		}
	}
	return NoSuchGroup(name, names, quickWords[a.Surface]...)
}

func activateJob(r *Request) Job {
	return Job{ID: JobID(JobActivate, r.ID), Kind: JobActivate, RequestID: r.ID, Due: r.Start}
}
