package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Automatic approval for whoever is on call (a group's auto_approve): asked at submission,
// again at the start when the start is later, never given on an error; visible to the
// approvers at once (the approval message is still posted, with Revoke and Looks good) and
// reviewed afterwards (listed in their inbox and reminded daily until someone looks).

// OnCallTimeout bounds the on-call check of one submission: past it, the approvers are asked.
const OnCallTimeout = 4 * time.Second

// ReviewEvery is how often the approvers are reminded of an automatic approval nobody reviewed.
const ReviewEvery = 24 * time.Hour

// Review verdicts.
const (
	VerdictLooksGood = "looks_good"
	VerdictRevoked   = "revoked"
)

// AutoApproval is an approval given by the on-call rule instead of a person.
type AutoApproval struct {
	Via      string    `json:"via"`                // the rota: `PagerDuty schedule "DB primary"`
	Incident string    `json:"incident,omitempty"` // `incident #1234 "Replica lag"` when require_incident
	At       time.Time `json:"at"`
	Review   *Review   `json:"review,omitempty"` // an approver's look afterwards; nil: nobody looked yet
}

// Review is an approver's look at an automatic approval after the fact.
type Review struct {
	Decision
	Verdict string `json:"verdict"` // VerdictLooksGood or VerdictRevoked
}

// Source is the rota (and incident) that put the requester on call: `PagerDuty schedule
// "DB primary", incident #1234 "Replica lag"`.
func (aa *AutoApproval) Source() string {
	if aa.Incident != "" {
		return aa.Via + ", " + aa.Incident
	}
	return aa.Via
}

// Words says who approved, for people and the audit trail: `on-call (PagerDuty schedule
// "DB primary", incident #1234 "Replica lag")`.
func (aa *AutoApproval) Words() string { return "on-call (" + aa.Source() + ")" }

// ReviewWords says, for an automatic approval, where its review stands, after a space: " Not
// reviewed yet.", " Reviewed by Bob: looks good.", " Revoked by Bob." ("" for any other
// request). name renders the reviewer as the surface names people (a mention, a name).
func ReviewWords(r *Request, name func(User) string) string {
	switch {
	case r.AutoApproval == nil:
		return ""
	case r.AutoApproval.Review == nil:
		return " Not reviewed yet."
	case r.AutoApproval.Review.Verdict == VerdictRevoked:
		return " Revoked by " + name(r.AutoApproval.Review.By) + "."
	}
	return " Reviewed by " + name(r.AutoApproval.Review.By) + ": looks good."
}

// Unreviewed reports whether the request was approved automatically and no approver has
// looked at it yet.
func (r *Request) Unreviewed() bool {
	return r.AutoApproval != nil && r.AutoApproval.Review == nil
}

// reviewLock is the key that lists an unreviewed automatic approval among the open keys (the
// approvers' inbox finds it there; its group id lets the inbox skip other groups' keys).
func reviewLock(r *Request) Lock {
	return Lock{Key: reviewKeyPrefix + r.GroupID + "|" + r.ID, RequestID: r.ID, UserID: r.Requester.ID}
}

const reviewKeyPrefix = "review|"

// IsReviewKey reports whether an open key (Store.OpenRequests) lists an automatic approval
// waiting for review rather than an open request: its request may be over.
func IsReviewKey(key string) bool { return strings.HasPrefix(key, reviewKeyPrefix) }

func reviewJob(r *Request, due time.Time) Job {
	return Job{ID: JobID(JobReview, r.ID), Kind: JobReview, RequestID: r.ID, Due: due}
}

// onCallApproval asks the group's on-call rotas whether the requester is on call at `at`. It
// returns the approval, or a note saying why the approvers are asked instead ("" when the
// group has no auto_approve). Extensions always go to people: an automatic approval covers
// one window of at most max_duration.
func (e *Engine) onCallApproval(ctx context.Context, r *Request, g *Group, at time.Time) (*AutoApproval, string) {
	aa := g.AutoApprove
	if aa == nil || !g.RequireApproval {
		return nil, ""
	}
	if r.Kind == KindExtend {
		return nil, "extensions are approved by people, also for whoever is on call"
	}
	if r.Duration > aa.MaxDuration {
		return nil, fmt.Sprintf("not approved automatically: %s is longer than the %s that on-call approval allows for %s",
			FormatDuration(r.Duration), FormatDuration(aa.MaxDuration), g.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, OnCallTimeout)
	defer cancel()
	var whys, failures []string
	for _, src := range aa.OnCall {
		p, ok := e.oncall[src.Provider]
		if !ok {
			failures = append(failures, providerName(src.Provider)+" is not set up in this pimbot")
			continue
		}
		ans, err := p.OnCall(ctx, OnCallQuery{Source: src, Person: r.Requester, At: at, RequireIncident: aa.RequireIncident})
		if err != nil {
			e.log.Warn("on-call check failed; the approvers are asked", "request_id", r.ID, "provider", src.Provider, "err", err)
			failures = append(failures, onCallFailure(src.Provider, err))
			continue
		}
		if ans.OnCall {
			return &AutoApproval{Via: ans.Via, Incident: ans.Incident, At: e.clock.Now()}, ""
		}
		if ans.Why != "" {
			whys = append(whys, ans.Why)
		}
	}
	switch {
	case len(failures) > 0:
		note := "not approved automatically: the on-call check failed (" + strings.Join(failures, "; ") + ")"
		if len(whys) > 0 {
			note += "; " + strings.Join(whys, "; ")
		}
		return nil, note
	case len(whys) > 0:
		return nil, "not approved automatically: " + strings.Join(whys, "; ")
	}
	return nil, "not approved automatically: not on call"
}

func providerName(p string) string {
	switch p {
	case OnCallPagerDuty:
		return "PagerDuty"
	case OnCallOpsgenie:
		return "Opsgenie"
	case OnCallLocal:
		return "the local rota"
	}
	return p
}

func onCallFailure(provider string, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return providerName(provider) + " did not answer in time"
	case errors.Is(err, ErrForbidden):
		return providerName(provider) + " refused pimbot's credentials"
	case errors.Is(err, ErrNotFound):
		return providerName(provider) + " does not know a schedule or service of the policy"
	}
	return providerName(provider) + " did not answer"
}

// autoApprove records an automatic approval on a new request: approved now, scheduled, and
// listed for review.
func (e *Engine) autoApprove(tx *Tx, r *Request, aa *AutoApproval, a Actor, now time.Time) {
	r.AutoApproval, r.DecidedAt, r.State = aa, now, StateScheduled
	if r.Start.Before(now) {
		r.Start = now
	}
	tx.Schedule = append(tx.Schedule, activateJob(r), reviewJob(r, now.Add(ReviewEvery)))
	tx.OpenLock = append(tx.OpenLock, reviewLock(r))
	e.emit(tx, Event{Type: EvSubmitted, Request: r, Actor: &r.Requester, At: now, Detail: "approved by " + aa.Words()}, a)
}

// onCallAtStart asks again, at a start later than the automatic approval, whether the
// requester is still on call. When they are not (or the rotas cannot tell), the request goes
// back to the approvers as a pending request, and they are asked as for any other.
func (e *Engine) onCallAtStart(ctx context.Context, c Claimed, r *Request, g *Group) (stillOK bool, err error) {
	aa := r.AutoApproval
	if aa == nil || len(r.Approvals) > 0 || !r.Start.After(aa.At.Add(time.Minute)) {
		return true, nil
	}
	now := e.clock.Now()
	again, note := e.onCallApproval(ctx, r, g, now)
	if again != nil {
		return true, nil
	}
	p := r.Clone()
	p.State, p.AutoApproval, p.DecidedAt = StatePending, nil, time.Time{}
	p.OnCallNote = strings.Replace(note, "not approved automatically", "no longer approved automatically at the start", 1)
	tx := &Tx{Puts: []Put{{Request: p, Expect: r.Version}},
		Schedule:   []Job{{ID: JobID(JobTimeout, p.ID), Kind: JobTimeout, RequestID: p.ID, Due: now.Add(g.PendingTimeout)}},
		Unschedule: []string{JobID(JobReview, p.ID)}, OpenUnlock: []Lock{reviewLock(r)}}
	e.emit(tx, Event{Type: EvSubmitted, Request: p, Actor: &p.Requester, At: now, Detail: p.OnCallNote}, system)
	return false, e.commitJob(ctx, c, tx)
}

// canRevoke: an approver of the group may end an automatic approval at once, before its
// start (it is canceled) or while active (it is removed now). Ending access stays open to a
// disabled account.
func (e *Engine) canRevoke(ctx context.Context, a Actor, r *Request) error {
	if r.AutoApproval == nil {
		return &PermissionError{Action: "revoke", Reason: "only an automatic (on-call) approval can be revoked; deactivate or deny it instead"}
	}
	if _, err := e.requireApprover(ctx, a, r, "revoke", ""); err != nil {
		return err
	}
	switch {
	case r.State == StateActive && r.Ending():
		return &StateError{ID: r.ID, State: "being deactivated", Action: "revoke"}
	case r.State == StateActive, r.State == StateScheduled:
		return nil
	}
	return &StateError{ID: r.ID, State: r.State, Action: "revoke"}
}

// canLooksGood: an enabled approver of the group other than the requester (unless the group
// allows self-approval) may mark an automatic approval reviewed, once, in any state (a
// grant that already ended is still reviewed).
func (e *Engine) canLooksGood(ctx context.Context, a Actor, r *Request) error {
	if !r.Unreviewed() {
		if r.AutoApproval != nil {
			rv := r.AutoApproval.Review
			return &PermissionError{Action: "review", Reason: "it was reviewed already by " + rv.By.Display()}
		}
		return &PermissionError{Action: "review", Reason: "only an automatic (on-call) approval is reviewed"}
	}
	if err := e.checkEnabled(ctx, a, "review"); err != nil {
		return err
	}
	g, err := e.requireApprover(ctx, a, r, "review", "")
	if err != nil {
		return err
	}
	if r.Requester.ID == a.User.ID && !g.AllowSelfApproval {
		return &PermissionError{Action: "review", Reason: "it is your own request; another approver of " + g.Name + " must review it"}
	}
	return nil
}

// markReviewed records the review on r (a clone).
func markReviewed(r *Request, a Actor, verdict string, now time.Time) {
	aa := *r.AutoApproval
	aa.Review = &Review{Decision: Decision{By: a.User, At: now, Surface: a.Surface}, Verdict: verdict}
	r.AutoApproval = &aa
}

// unlistReview takes a reviewed request off the review list: its reminder and its review key.
func unlistReview(tx *Tx, r *Request) {
	tx.Unschedule = append(tx.Unschedule, JobID(JobReview, r.ID))
	tx.OpenUnlock = append(tx.OpenUnlock, reviewLock(r))
}

// LooksGood records an approver's review of an automatic approval: it was right.
func (e *Engine) LooksGood(ctx context.Context, a Actor, id string) (*Request, error) {
	return e.transition(ctx, "review", id, func(cur *Request) (*Tx, error) {
		if err := e.canLooksGood(ctx, a, cur); err != nil {
			return nil, err
		}
		now := e.clock.Now()
		r := cur.Clone()
		markReviewed(r, a, VerdictLooksGood, now)
		tx := &Tx{Puts: []Put{{Request: r, Expect: cur.Version}}}
		unlistReview(tx, r)
		e.emit(tx, Event{Type: EvReviewed, Request: r, Actor: &a.User, At: now, Detail: "looks good"}, a)
		return tx, nil
	})
}

// Revoke ends an automatic approval at once (an approver): a grant not yet started is
// canceled, an active one is removed now. The review is recorded as revoked.
func (e *Engine) Revoke(ctx context.Context, a Actor, id string) (*Request, error) {
	return e.transition(ctx, "revoke", id, func(cur *Request) (*Tx, error) {
		if err := e.canRevoke(ctx, a, cur); err != nil {
			return nil, err
		}
		now := e.clock.Now()
		r := cur.Clone()
		unreviewed := r.Unreviewed()
		if unreviewed {
			markReviewed(r, a, VerdictRevoked, now)
		}
		var tx *Tx
		if cur.State == StateActive {
			tx = e.endNow(r, cur, a, "revoked by "+a.User.Handle()+" (automatic approval)", "revoke", now)
		} else {
			tx = e.cancelScheduled(r, cur, a, "revoked by "+a.User.Handle()+" (automatic approval)", now)
		}
		if unreviewed {
			unlistReview(tx, r)
		}
		return tx, nil
	})
}

// runReview reminds the approvers of an automatic approval nobody reviewed, then again a day
// later, until someone does (or the request leaves retention).
func (e *Engine) runReview(ctx context.Context, c Claimed) (bool, error) {
	r := c.Request
	if !r.Unreviewed() {
		return true, nil
	}
	now := e.clock.Now()
	// The record is written again (unchanged) so that each day's reminder is an event of its
	// own version: surfaces post an alert once per event and version.
	tx := &Tx{Puts: []Put{{Request: r.Clone(), Expect: r.Version}}, Schedule: []Job{reviewJob(r, now.Add(ReviewEvery))}}
	e.emit(tx, Event{Type: EvReviewDue, Request: r, At: now, Detail: "approved by " + r.AutoApproval.Words() + ", not reviewed yet"}, system)
	tx.Audit = nil // a reminder is not an audit-worthy step
	err := e.commitJob(ctx, c, tx)
	if errors.Is(err, ErrConflict) {
		return false, e.retryAt(ctx, c, now, err) // changed meanwhile (reviewed?): look again
	}
	return false, err
}
