package bot

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// auditLabels name each audit-worthy event at the head of its line: every submission,
// decision, activation, end, extension, failure and drift finding. Reminders, delays and
// MFA prompts are not summed up.
var auditLabels = map[string]string{
	EvSubmitted: "submitted", EvApprovalAdded: "approval", EvApproved: "approved", EvDenied: "denied",
	EvCanceled: "canceled", EvTimedOut: "timed out", EvActivated: "activated", EvEnded: "ended",
	EvExtended: "extended", EvReviewed: "reviewed", EvFailed: "FAILED", EvRemovalFailing: "REMOVAL FAILING",
	EvDrift: "DRIFT reported", EvDriftRemoved: "DRIFT removed", EvDriftRemoveFailed: "DRIFT removal failed", EvDriftElsewhere: "managed elsewhere",
	EvDeadLetter: "DEAD LETTER", EvUndelivered: "UNDELIVERED", EvBound: "BOUND", EvBindRefused: "BINDING REFUSED", EvUnbound: "UNBOUND",
}

// auditTextMax bounds each free-text part of an audit line (reasons, errors).
const auditTextMax = 300

// AuditLine sums up an event in one line of plain text for an audit channel: when, what,
// which request, who it concerns, which access to which group, why (reason and ticket on
// every line of a request; deny reason, end reason, error), who acted and on which surface. It holds text people typed and text from
// the directory as is: each surface escapes the whole line for its markup. ok is false for
// events that are not audit-worthy.
func AuditLine(ev Event, loc *time.Location) (line string, ok bool) {
	r := ev.Request
	label, ok := auditLabels[ev.Type]
	if !ok || r == nil {
		return "", false
	}
	if loc == nil {
		loc = time.UTC
	}
	at := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04 MST") }
	switch {
	case ev.Type == EvDeadLetter || ev.Type == EvUndelivered:
		return at(ev.At) + " " + label + ": " + oneLine(ev.Detail, 2*auditTextMax) + " · by pimbot", true
	case IsBinding(ev.Type) && ev.Chat != nil:
		return at(ev.At) + " " + label + ": " + oneLine(ev.Chat.Surface+" account "+ev.Chat.ID, 200) + " · " +
			person(r.Requester) + " · " + oneLine(ev.Detail, auditTextMax), true
	}
	drift := IsDrift(ev.Type)
	head := at(ev.At) + " " + label
	if !drift {
		head += " " + r.ID
	}
	parts := []string{head + ": " + person(r.Requester), string(r.Access) + " of " + r.Group}
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	text := func(s string) string { return oneLine(s, auditTextMax) }
	switch ev.Type {
	case EvSubmitted:
		if r.Kind == KindExtend {
			add("%s more (extends %s)", FormatDuration(r.Duration), r.ParentID)
		} else if r.Start.IsZero() || !r.Start.After(r.CreatedAt.Add(time.Minute)) {
			add("for %s from now", FormatDuration(r.Duration))
		} else {
			add("for %s from %s", FormatDuration(r.Duration), at(r.Start))
		}
		switch {
		case r.State == StatePending:
			add("awaiting %d approval(s)", r.ApprovalsRequired)
			if r.OnCallNote != "" {
				add("%s", text(r.OnCallNote))
			}
		case r.AutoApproval != nil:
			add("approved by %s", text(r.AutoApproval.Words()))
		default:
			add("no approval needed")
		}
		if !r.MFAVerifiedAt.IsZero() {
			add("MFA passed")
		}
	case EvApprovalAdded, EvApproved:
		if r.ApprovalsRequired > 0 && len(r.Approvals) > 0 {
			add("%d of %d approvals", len(r.Approvals), r.ApprovalsRequired)
		}
	case EvDenied:
		if r.DenyReason != "" {
			add("deny reason: %q", text(r.DenyReason))
		}
	case EvCanceled, EvEnded:
		if r.EndReason != "" {
			add("%s", text(r.EndReason))
		}
	case EvReviewed:
		add("automatic approval by %s: %s", text(r.AutoApproval.Words()), text(ev.Detail))
	case EvActivated:
		add("until %s", at(r.EndsAt))
	case EvExtended:
		add("%s, until %s", text(ev.Detail), at(r.EndsAt))
	case EvFailed, EvRemovalFailing:
		if ev.Detail != "" {
			add("%s", text(ev.Detail))
		}
	case EvDriftElsewhere:
		add("held through %s, not a pimbot grant; left alone", text(ManagedByWords(ev)))
	case EvDrift, EvDriftRemoved:
		add("without a pimbot grant")
	case EvDriftRemoveFailed:
		add("without a pimbot grant")
		if ev.Detail != "" {
			add("%s", text(ev.Detail))
		}
	}
	if r.Reason != "" {
		add("reason: %q", text(r.Reason))
	}
	if r.Ticket != "" {
		add("ticket: %s", text(r.Ticket))
	}
	by := "by pimbot"
	if ev.Actor != nil {
		by = "by " + person(*ev.Actor)
	} else if ev.Type == EvApproved {
		by = "by policy (no approval needed)"
	}
	if via := auditSurface(ev); via != "" {
		by += " via " + via
	}
	add("%s", by)
	return strings.Join(parts, " · "), true
}

// person names someone as "Name (handle)", or just the handle.
func person(u User) string {
	d, h := oneLine(u.Display(), 100), oneLine(u.Handle(), 200)
	if d == h || d == "" {
		return h
	}
	return d + " (" + h + ")"
}

// auditSurface is where the event's actor acted: the requester's surface for a submission,
// the surface of the vote, denial or early end, the reconciler for drift, else none (a job).
func auditSurface(ev Event) string {
	r := ev.Request
	switch ev.Type {
	case EvSubmitted:
		return r.Surface
	case EvApprovalAdded, EvApproved:
		if ev.Actor != nil {
			for _, a := range r.Approvals {
				if a.By.ID == ev.Actor.ID {
					return a.Surface
				}
			}
		}
	case EvDenied:
		if r.Denial != nil {
			return r.Denial.Surface
		}
	case EvCanceled, EvEnded:
		if r.EndedBy != nil && ev.Actor != nil {
			return r.EndedBy.Surface
		}
	case EvDrift, EvDriftRemoved, EvDriftRemoveFailed:
		return "reconciler"
	}
	return ""
}

// oneLine keeps s on one line (newlines and tabs become spaces, other control characters
// go) and at most n runes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t' || r == '\u2028' || r == '\u2029':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "�"))
	return truncate(strings.TrimSpace(s), n)
}

// ManagedByWords names, for people, what grants an access found managed elsewhere (an
// EvDriftElsewhere finding): "an active PIM assignment", "the access package \"Prod on-call\"".
func ManagedByWords(ev Event) string {
	switch m := ev.ManagedBy; {
	case m == "", m == "PIM":
		return "an active PIM assignment"
	case strings.HasPrefix(m, "access package"):
		return "the " + m
	default:
		return m
	}
}
