package bot

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Delivery of notifications: what the core needs to know from a surface that failed, and
// how long it keeps trying.
//
// A surface's Notify returns nil when everything it had to post is posted, else an error
// that says which of three cases it is:
//
//   - the platform asked us to wait: an error in the chain implements RetryAfter() (or
//     Graph's RetryDelay()), found by RetryAfter; the job is retried after that wait;
//   - the delivery can never succeed (channel_not_found, not_in_channel, an unknown user,
//     an archived channel, a conversation that no longer exists): the error is marked with
//     Undeliverable (or wraps ErrUndeliverable); the job stops and someone is told;
//   - anything else (a timeout, a 5xx, a transport error) is transient: retried with backoff.
//
// A surface that delivered part of an event marks those parts done (its KV), so a retry
// only does the rest; an error that joins a permanent and a transient part is retried, and
// the permanent part is reported at once.

// ErrUndeliverable: the surface can never deliver this notification (the channel is gone
// or archived, the app is not in it, the user does not exist). Retrying will not help.
var ErrUndeliverable = errors.New("undeliverable")

// UndeliverableError marks a surface's error as permanent; errors.Is(err, ErrUndeliverable)
// holds for it, and errors.As reaches the platform's own error through Unwrap.
type UndeliverableError struct{ Err error }

func (e *UndeliverableError) Error() string {
	if e.Err == nil {
		return ErrUndeliverable.Error()
	}
	return "undeliverable: " + e.Err.Error()
}
func (e *UndeliverableError) Unwrap() error        { return e.Err }
func (e *UndeliverableError) Is(target error) bool { return target == ErrUndeliverable }

// Undeliverable marks err (a platform's refusal) as permanent. nil stays nil.
func Undeliverable(err error) error {
	if err == nil {
		return nil
	}
	return &UndeliverableError{Err: err}
}

// RetryAfter finds, in err's chain, how long the platform asked us to wait: an error that
// implements RetryAfter() time.Duration (Slack's and the Bot Connector's 429/503) or Graph's
// RetryDelay() time.Duration. ok is false when no error in the chain says (or says 0).
func RetryAfter(err error) (time.Duration, bool) {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		return ra.RetryAfter(), true
	}
	var rd retryAfter
	if errors.As(err, &rd) && rd.RetryDelay() > 0 {
		return rd.RetryDelay(), true
	}
	return 0, false
}

// permanentOnly reports whether every part of err is marked undeliverable: a joined error
// with any unmarked (transient) part is not, so it is retried.
func permanentOnly(err error) bool {
	if err == nil {
		return false
	}
	if err == ErrUndeliverable { //nolint:errorlint // the sentinel itself, not a chain
		return true
	}
	if x, ok := err.(interface{ Is(error) bool }); ok && x.Is(ErrUndeliverable) {
		return true
	}
	switch x := err.(type) {
	case interface{ Unwrap() []error }:
		parts := x.Unwrap()
		if len(parts) == 0 {
			return false
		}
		for _, p := range parts {
			if !permanentOnly(p) {
				return false
			}
		}
		return true
	case interface{ Unwrap() error }:
		return permanentOnly(x.Unwrap())
	}
	return false
}

// EvUndelivered is the audit type of a notification given up for good (a permanent refusal
// by the platform). It is announced to every surface under an id of its own, for the
// audit channels only.
const EvUndelivered = "undelivered"

// NotifyMaxAge is how long a notification that matters is retried after its event: long
// enough to ride out any rate limit or outage of a chat platform, short enough that nobody
// is told "approved" about a request of last week.
const NotifyMaxAge = 24 * time.Hour

// Which notifications matter, and until when.
//
// A notification matters when somebody has to act on it, or is waiting for it to know where
// they stand: the approval request (submitted), every decision that updates the approvers'
// messages (approval added, approved, denied, canceled, timed out, reviewed), what the
// requester is waiting for (activated, extended, ended, failed), the MFA link, the reminder
// before the end, and every alert (removal failing, drift findings, a refused identity
// binding, a dead-lettered job). Such a notification is retried until it is delivered, or
// until it no longer can matter (notifyOver): the request record is gone (retention), the
// moment it was about has passed (an MFA link once the request no longer waits for MFA, a
// reminder once the grant ended, the approval request once the request is over), or
// NotifyMaxAge passed. A platform's Retry-After is waited exactly (with a
// little jitter); otherwise the backoff grows to 5 minutes.
//
// Only EvDelayed ("the directory is slow, we keep trying") and the informational identity
// events (bound, unbound) keep the old budget of NotifyAttempts: a later notification says
// more. EvUndelivered itself is never re-announced when it fails (no loop).
func NotifyMatters(eventType string) bool {
	switch eventType {
	case EvDelayed, EvBound, EvUnbound:
		return false
	}
	return true
}

// notifyOver reports why a notification that matters need no longer be retried ("" while
// it still matters). cur is the request as stored now (nil: gone, or an event about no
// stored request).
func notifyOver(ev Event, cur *Request, now time.Time) string {
	if !ev.At.IsZero() && now.Sub(ev.At) > NotifyMaxAge {
		return "the event is more than " + NotifyMaxAge.String() + " old"
	}
	if ev.Request == nil || ev.Request.Version == 0 {
		return "" // an event about no stored request (drift, binding, dead letter): age only
	}
	if cur == nil {
		return "the request is no longer kept"
	}
	switch ev.Type {
	case EvMFARequired:
		if cur.State != StateVerifying {
			return "the request no longer waits for MFA"
		}
	case EvSubmitted:
		// Not "no longer pending": the approvers' message of a request decided meanwhile is
		// still posted (then updated, in order, to the decision), and the requester hears
		// "submitted" before "approved".
		if cur.State.Terminal() {
			return "the request is over"
		}
	case EvReminder:
		if cur.State != StateActive || (!cur.EndsAt.IsZero() && !now.Before(cur.EndsAt)) {
			return "the grant is over"
		}
	}
	return ""
}

// NotifyQueue is implemented by a store that can tell whether notifications of the same
// request for the same surface, about an earlier version, are still queued or running
// (store.Redis). The worker then holds a later one back so that each person hears of a
// request's events in the order they happened, across replicas and retries.
type NotifyQueue interface {
	// EarlierNotify returns the ids of the notify jobs of job's request and notifier for a
	// lower request version that are still queued or leased, and the latest time one of them
	// is due (or leased until).
	EarlierNotify(ctx context.Context, job Job) (ids []string, until time.Time, err error)
}

// notifyOrderPoll is how soon a notification held back behind a running earlier one looks
// again; notifyOrderMaxWait bounds the wait behind a queued one (it is re-checked then).
const (
	notifyOrderPoll    = 200 * time.Millisecond
	notifyOrderMaxWait = time.Minute
)

type groupDoneKey struct{}

// doneInGroup is the set of jobs this run already finished (their acks may still be on the
// way to the store), so that the later jobs of the same group do not wait for them.
func doneInGroup(ctx context.Context) map[string]bool {
	m, _ := ctx.Value(groupDoneKey{}).(map[string]bool)
	return m
}

// notifyBehind reports when job c may run if an earlier notification of its request for
// the same surface is still pending (zero time: it may run now).
func (e *Engine) notifyBehind(ctx context.Context, c Claimed) (time.Time, error) {
	q, ok := e.store.(NotifyQueue)
	if !ok || c.Job.Event == nil || c.Job.Event.Request == nil {
		return time.Time{}, nil
	}
	ids, until, err := q.EarlierNotify(ctx, c.Job)
	if err != nil {
		return time.Time{}, err
	}
	done := doneInGroup(ctx)
	pending := 0
	for _, id := range ids {
		if !done[id] && id != c.Job.ID {
			pending++
		}
	}
	if pending == 0 {
		return time.Time{}, nil
	}
	now := e.clock.Now()
	at := now.Add(notifyOrderPoll)
	if until.After(at) {
		at = until.Add(10 * time.Millisecond) // just after it: claimed in the same batch, it sorts first
	}
	if limit := now.Add(notifyOrderMaxWait); at.After(limit) {
		at = limit
	}
	return at, nil
}

// holdBack puts the job back in the queue to run at, without counting an attempt.
func (e *Engine) holdBack(ctx context.Context, c Claimed, at time.Time) error {
	j := c.Job
	j.Attempt-- // the store counts a retry; waiting for an earlier notification is none
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	return e.store.Retry(sctx, c.Lease(), j, at)
}

// notifyRetryDelay is the wait before the next attempt of a notification: the platform's
// Retry-After when it gave one (plus up to 10% jitter, so that the notifications it held
// back do not all come back in the same instant), else the backoff.
func notifyRetryDelay(attempt int, cause error) time.Duration {
	if d, ok := RetryAfter(cause); ok {
		d = min(d, maxRetryBackoff)
		return d + time.Duration(rand.Int64N(int64(d/10)+1))
	}
	return Backoff(attempt)
}

// undelivered tells someone that a notification was given up for good: an error log with
// the request id and event, the Undelivered hook, an audit record, and a line in the audit
// channels (announced under an id of its own; never for an EvUndelivered itself).
func (e *Engine) undelivered(ctx context.Context, c Claimed, why string, cause error) {
	j := c.Job
	ev := j.Event
	e.log.Error("notification not delivered; giving up", "request_id", j.RequestID, "event", ev.Type,
		"notifier", j.Notifier, "why", why, "err", cause)
	if e.hooks.Undelivered != nil {
		e.hooks.Undelivered(j.Notifier, ev.Type)
	}
	if ev.Type == EvUndelivered || ev.Type == EvDeadLetter {
		return // an alert about an alert would loop when the audit channel itself is gone
	}
	now := e.clock.Now()
	detail := fmt.Sprintf("%s could not tell people of %s of request %s: %s", j.Notifier, ev.Type, j.RequestID, why)
	if cause != nil {
		detail += ": " + cause.Error()
	}
	detail = truncate(detail, 600)
	snap := &Request{ID: eventID("undelivered", now, j.ID), ParentID: j.RequestID, CreatedAt: now,
		Requester: User{Name: "undelivered notification"}}
	tx := &Tx{Audit: []AuditRecord{{At: now, Type: EvUndelivered, RequestID: j.RequestID, Actor: "pimbot", Surface: j.Notifier, Detail: detail}}}
	// The snapshot has no group, so no surface treats it as the request: only the audit
	// channels hear of it.
	tx.Schedule = e.announce(Event{Type: EvUndelivered, Request: snap, At: now, Detail: detail})
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	if err := e.store.Commit(sctx, tx); err != nil {
		e.log.Warn("record an undelivered notification", "request_id", j.RequestID, "err", err)
	}
}

// runNotify delivers one event to one surface (bot/delivery.go says how errors are read).
// It runs only once the notifications of the request's earlier versions for that surface
// are done, so each person hears of a request's events in order. A notification that
// matters (NotifyMatters) is retried until delivered or over (notifyOver), waiting the
// platform's Retry-After when it gives one; the rest keep the budget of NotifyAttempts. A
// permanent refusal stops the job and tells someone (undelivered).
func (e *Engine) runNotify(ctx context.Context, c Claimed) (bool, error) {
	j := c.Job
	n, ok := e.notifiers[j.Notifier]
	if !ok || j.Event == nil {
		return true, nil // a surface that is no longer configured
	}
	if err := e.mayAct(c); err != nil {
		return false, err
	}
	if at, err := e.notifyBehind(ctx, c); err != nil {
		e.log.Warn("could not check the order of notifications; delivering anyway", "request_id", j.RequestID, "event", j.Event.Type, "err", err)
	} else if !at.IsZero() {
		if err := e.holdBack(ctx, c, at); err != nil {
			return false, fmt.Errorf("notify %s of %s: hold back behind an earlier notification: %w", j.Notifier, j.Event.Type, err)
		}
		return false, nil
	}
	err := n.Notify(ctx, *j.Event)
	if err == nil {
		return true, nil
	}
	err = fmt.Errorf("notify %s of %s: %w", j.Notifier, j.Event.Type, err)
	if permanentOnly(err) {
		e.undelivered(ctx, c, "the platform refused it for good", err)
		return true, nil
	}
	if errors.Is(err, ErrUndeliverable) {
		// Part of it can never be delivered (the surface marked that part done); the rest
		// is retried.
		e.undelivered(ctx, c, "the platform refused part of it for good", err)
	}
	if !NotifyMatters(j.Event.Type) {
		if j.Attempt+1 >= NotifyAttempts {
			return true, fmt.Errorf("giving up after %d attempts: %w", NotifyAttempts, err)
		}
	} else if why := e.notifyGiveUp(ctx, j); why != "" {
		e.undelivered(ctx, c, "no longer worth retrying: "+why, err)
		return true, nil
	}
	return false, e.retryAt(ctx, c, e.clock.Now().Add(notifyRetryDelay(j.Attempt+1, err)), err)
}
