package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
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
	MFA       MFAVerifier      // step-up verification with Entra; nil: groups with require_mfa refuse requests
	OnCall    []OnCallProvider // on-call rotas for auto_approve; a group whose provider is missing asks its approvers
	Lease     time.Duration    // job lease; default JobLease
	Poll      time.Duration    // how often an idle worker looks for due jobs; default PollInterval
}

// Hooks let the operator's metrics observe the engine without the engine knowing Prometheus.
type Hooks struct {
	Submitted func(surface, outcome string)
	Decided   func(decision string)
	JobDone   func(kind string, lag time.Duration, err error)
	TakenOver func()
	// DeadLettered: a job (or its request) could not be decoded and left the queue.
	DeadLettered func(kind string)
	// Undelivered: a notification was given up for good (the platform refused it
	// permanently, or it was no longer worth retrying); notifier is the surface's name,
	// event the event type.
	Undelivered func(notifier, event string)
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
	oncall    map[string]OnCallProvider
	lease     time.Duration
	poll      time.Duration
	lag       time.Duration // the directory's replication lag
	kick      chan struct{}
}

// New builds an Engine.
func New(c Config) *Engine {
	e := &Engine{pol: c.Policy, store: c.Store, dir: c.Directory, clock: c.Clock, log: c.Logger, hooks: c.Hooks, mfa: c.MFA,
		notifiers: map[string]Notifier{}, kick: make(chan struct{}, 1), oncall: map[string]OnCallProvider{}}
	for _, p := range c.OnCall {
		e.oncall[p.Name()] = p
	}
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

func (e *Engine) mapCommitErr(op string, err error) error {
	var de *DuplicateError
	var le *LimitError
	switch {
	case errors.As(err, &de), errors.As(err, &le), errors.Is(err, ErrConflict):
		return err
	}
	return fmt.Errorf("%s: %w", op, Unavailable("the database (Redis)", err))
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
		if ev.Detail != "" { // PIM rounded the duration up
			return "until " + r.EndsAt.UTC().Format(time.RFC3339) + "; " + ev.Detail
		}
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
		return nil, fmt.Errorf("load request %s: %w", id, Unavailable("the database (Redis)", err))
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

func lockOf(r *Request) Lock {
	key := r.OpenKey()
	if r.Kind == KindExtend {
		key = "ext|" + r.ParentID
	}
	return Lock{Key: key, RequestID: r.ID, UserID: r.Requester.ID}
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
		return nil, fmt.Errorf("view: %w", Unavailable("the directory", err))
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
		return nil, fmt.Errorf("list: %w", Unavailable("the database (Redis)", err))
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
