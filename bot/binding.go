package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Identity-binding events (settings.identity_binding: entra_signin): a chat account linked to
// the directory user who signed in, a link refused because the sign-in was someone else's,
// or a link undone by its owner. All go to the audit trail and the audit channels; a refusal
// is also told to both accounts.
const (
	EvBound       = "bound"
	EvBindRefused = "bind_refused"
	EvUnbound     = "unbound"
)

// IsBinding reports whether an event is an identity-binding event (it concerns no request).
func IsBinding(typ string) bool { return typ == EvBound || typ == EvBindRefused || typ == EvUnbound }

// ChatAccount is one account on a chat surface, with the e-mail address the platform itself
// vouches for (Slack's profile e-mail, read with users:read.email).
type ChatAccount struct {
	Surface string `json:"surface"`
	ID      string `json:"id"`
	Email   string `json:"email,omitempty"`
}

// RecordBinding writes an identity-binding event to the audit trail and hands it to every
// surface. user is the directory user who signed in.
func (e *Engine) RecordBinding(ctx context.Context, typ string, chat ChatAccount, user User, detail string) error {
	now := e.clock.Now()
	snap := &Request{ID: eventID("bind", now, typ, chat.Surface, chat.ID, user.ID), Requester: user, Surface: chat.Surface, CreatedAt: now}
	ev := Event{Type: typ, Request: snap, At: now, Detail: detail, Chat: &chat}
	tx := &Tx{Audit: []AuditRecord{{At: now, Type: typ, Subject: user.Handle(), Actor: chat.Surface + " account " + chat.ID,
		Surface: chat.Surface, Detail: detail}}}
	tx.Schedule = e.announce(ev)
	if err := e.store.Commit(ctx, tx); err != nil {
		return fmt.Errorf("record the binding: %w", err)
	}
	e.Kick()
	return nil
}

// announce is one notification job per surface of the engine for an event that concerns no
// stored request (identity bindings, dead letters, drift findings): its id is its own (see
// eventID), so the job never reads a record.
func (e *Engine) announce(ev Event) []Job { return announceTo(e.names, ev) }

func announceTo(notifiers []string, ev Event) []Job {
	jobs := make([]Job, 0, len(notifiers))
	for _, name := range notifiers {
		jobs = append(jobs, Job{ID: fmt.Sprintf("%s:%s:%s:0:%s", JobNotify, ev.Request.ID, ev.Type, name),
			Kind: JobNotify, RequestID: ev.Request.ID, Due: ev.At, Notifier: name, Event: &ev})
	}
	return jobs
}

// eventID names an event that concerns no stored request: prefix-<12 hex digits> from what
// the event is about and when it happened.
func eventID(prefix string, at time.Time, about ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(append(about, at.UTC().Format(time.RFC3339Nano)), "|")))
	return prefix + "-" + hex.EncodeToString(sum[:6])
}
