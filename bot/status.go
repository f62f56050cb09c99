package bot

import (
	"fmt"
	"strings"
	"time"
)

// The words every surface uses for where a request stands (status lists, requester
// messages), so that the shell, Slack and Teams tell the same truth.

// soon is how far ahead a start may be to be called "soon" or "from now".
const soon = time.Hour

// Length is how long the grant lasts: the asked duration until it starts, then its real
// length (EndsAt - ActivatedAt), which extensions (and an early end) change. The request's
// Duration stays what was asked.
func (r *Request) Length() time.Duration {
	if r.Kind == KindActivate && (r.State == StateActive || r.State == StateEnded) &&
		!r.ActivatedAt.IsZero() && r.EndsAt.After(r.ActivatedAt) {
		return r.EndsAt.Sub(r.ActivatedAt)
	}
	return r.Duration
}

// Holding says what the grant gives as it stands, e.g. "member of prod-db-admins for 3h"
// after a 2h grant was extended by 1h. Before the start it is What.
func (r *Request) Holding() string {
	if r.Kind == KindExtend {
		return r.What()
	}
	return fmt.Sprintf("%s of %s for %s", r.Access, r.Group, FormatDuration(r.Length()))
}

// StartsSoon reports whether a request that has not started starts within the next hour
// (or as soon as it is approved).
func (r *Request) StartsSoon(now time.Time) bool {
	return r.Start.IsZero() || !r.Start.After(now.Add(soon))
}

// StatusLabel is the state in words at now: an approved request whose start is more than
// an hour away is "approved, scheduled", not "starts soon".
func (r *Request) StatusLabel(now time.Time) string {
	if r.State == StateScheduled && !r.StartsSoon(now) {
		return "approved, scheduled"
	}
	return r.State.Label()
}

// Status is a request in words for its requester, after its id and StatusLabel: what it
// gives as it stands, when, and who decided, e.g. "member of prod-db-admins for 3h, until
// 21:02 UTC" or "member of prod-db-admins for 2h from now; denied by Bob: not today".
func (r *Request) Status(now time.Time, loc *time.Location) string {
	s := r.Holding()
	if w := r.When(now, loc); w != "" && r.State != StateActive && r.State != StateEnded {
		s += " " + w
	}
	switch r.State {
	case StatePending:
		s += fmt.Sprintf(" (%d of %d approvals)", len(r.Approvals), r.ApprovalsRequired)
	case StateActive:
		s += ", until " + FormatTime(r.EndsAt, now, loc)
	case StateDenied:
		s += "; " + r.DeniedWords()
	case StateEnded, StateCanceled, StateTimedOut, StateFailed:
		if r.EndReason != "" {
			s += " (" + r.EndReason + ")"
		}
	}
	return s
}

// DeniedWords says who denied the request and why: "denied by Bob: not today".
func (r *Request) DeniedWords() string {
	s := "denied"
	if r.Denial != nil {
		s += " by " + r.Denial.By.Display()
	}
	if r.DenyReason != "" {
		s += ": " + r.DenyReason
	}
	return s
}

// HoldsWords says what the requester holds, for a sentence: "a member of prod-db-admins",
// "an owner of prod-db-admins".
func HoldsWords(a Access, group string) string {
	article := "a"
	if a == Owner {
		article = "an"
	}
	return article + " " + string(a) + " of " + group
}

// ApproversFor is the group's approvers as shown to the requester u: u is left out (they
// cannot approve their own request) unless the group allows self-approval.
func (g *Group) ApproversFor(u User) []string {
	if g == nil {
		return nil
	}
	if g.AllowSelfApproval {
		return g.Approvers
	}
	out := make([]string, 0, len(g.Approvers))
	for _, x := range g.Approvers {
		if !u.Is(x) {
			out = append(out, x)
		}
	}
	return out
}

// Is reports whether a policy entry (an e-mail, UPN or object id) names u.
func (u User) Is(entry string) bool {
	entry = strings.TrimSpace(entry)
	if entry == "" || strings.HasPrefix(entry, "group:") {
		return false
	}
	for _, v := range []string{u.ID, u.Email, u.UPN} {
		if v != "" && strings.EqualFold(v, entry) {
			return true
		}
	}
	return false
}
