package bot

import (
	"context"
	"time"
)

// On call means approved: a group's auto_approve lets whoever is on call right now (in
// PagerDuty, Opsgenie or a local rota) activate it without waiting for an approver, up to a
// length, and every such approval is posted to the approvers at once and reviewed afterwards.

// On-call providers.
const (
	OnCallPagerDuty = "pagerduty"
	OnCallOpsgenie  = "opsgenie"
	OnCallLocal     = "local" // rotas written in the policy file (directory.on_call), for demos and small teams
)

// OnCallSource is one provider's rotas in a group's auto_approve.on_call: the requester is
// on call when they are an on-call participant of any of them.
type OnCallSource struct {
	Provider  string   // pagerduty, opsgenie or local
	Schedules []string // PagerDuty schedule ids; Opsgenie schedule names (or ids); local rota names
	Services  []string // PagerDuty service ids: on call for the service's escalation policy
}

// AutoApprove is a group's automatic approval for whoever is on call.
type AutoApprove struct {
	OnCall      []OnCallSource
	MaxDuration time.Duration // automatic approval only up to this length; longer asks the approvers
	// RequireIncident: only while one of the PagerDuty services has a triggered or
	// acknowledged incident.
	RequireIncident bool
}

// OnCallQuery asks a provider whether a person is on call for a source at a time.
type OnCallQuery struct {
	Source OnCallSource
	Person User // matched by e-mail, then UPN, to the provider's user (case-insensitive)
	At     time.Time
	// RequireIncident: on call counts only while a service of the source has a triggered or
	// acknowledged incident (PagerDuty services; a source without services has none).
	RequireIncident bool
}

// OnCallAnswer is a provider's answer, worded for people.
type OnCallAnswer struct {
	OnCall bool
	// Via names the rota that has the person on call: `PagerDuty schedule "DB primary"`.
	Via string
	// Incident names the open incident require_incident found: `incident #1234 "Replica lag"`.
	Incident string
	// Why says, when not on call, what was looked at: `not on call for PagerDuty schedule "DB
	// primary"`, `no triggered or acknowledged incident on PagerDuty service "Database"`.
	Why string
}

// OnCallShift is who is on call now for one rota (what `pimbot check` reports).
type OnCallShift struct {
	Rota   string   // `PagerDuty schedule "DB primary" (P1ABCD2)`
	People []string // their e-mail addresses
	Until  time.Time
}

// OnCallProvider is one on-call service. Errors that will not heal by retrying (a refused
// token, an unknown schedule or service) wrap ErrForbidden or ErrNotFound; the others (a
// timeout, a 5xx, a 429 whose Retry-After runs past the deadline) are temporary. The engine
// never approves on an error: it asks the approvers and says why.
type OnCallProvider interface {
	Name() string // one of the OnCall* provider names
	OnCall(ctx context.Context, q OnCallQuery) (OnCallAnswer, error)
	// Now lists who is on call now for each rota of the source; it also proves that the
	// credentials work and that every schedule and service exists.
	Now(ctx context.Context, src OnCallSource) ([]OnCallShift, error)
}

// SeedRota is a local on-call rota (directory.on_call in the policy file): People take turns
// of Shift each, the first one from Since; with no Shift, everyone listed is on call at once.
type SeedRota struct {
	Name   string
	People []string // e-mail addresses
	Shift  time.Duration
	Since  time.Time
}
