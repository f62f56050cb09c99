package shell

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/pimbot/pimbot/bot"
)

// Notify prints what each person would be told, prefixed by who is told (see round.go for
// when).
func (s *Shell) Notify(ctx context.Context, ev bot.Event) error {
	defer s.restoreOnPanic() // the engine calls it in goroutines of its own
	var b strings.Builder
	s.notify(ctx, ev, &b)
	s.told(ev, b.String())
	return nil
}

// notify writes to b what each person is told of ev.
func (s *Shell) notify(ctx context.Context, ev bot.Event, b *strings.Builder) {
	r := ev.Request
	now := s.eng.Now()
	g, _ := s.eng.Policy().Group(r.GroupID)
	approvers := "approvers"
	if g != nil && len(g.Approvers) > 0 {
		approvers = "approvers " + strings.Join(g.Approvers, ", ")
	}
	who := r.Requester.Display()
	by := ""
	if ev.Actor != nil {
		by = ev.Actor.Display()
	}
	// The requester is told what the engine offers them now, the approvers what it offers an approver.
	toReq := func(format string, args ...any) {
		tell(b, s.short(r.Requester), "%s%s", fmt.Sprintf(format, args...), offer(r, s.eng.Actions(ctx, bot.Actor{User: r.Requester, Surface: s.Name()}, r)))
	}
	toApp := func(format string, args ...any) { tell(b, approvers, format, args...) }
	switch ev.Type {
	case bot.EvMFARequired:
		ch, err := s.eng.StartMFA(ctx, r)
		if err != nil {
			toReq("request %s needs MFA verification first, but it cannot start: %s", r.ID, bot.Describe(err))
			return
		}
		toReq("%s", challengeText(r, ch, now))
	case bot.EvSubmitted:
		if aa := r.AutoApproval; aa != nil && r.State == bot.StateScheduled {
			line := fmt.Sprintf("%s got %s %s, approved automatically by %s.", who, r.What(), r.When(now, s.loc), aa.Words())
			if r.Reason != "" {
				line += fmt.Sprintf(" Reason: %q.", r.Reason)
			}
			if h := hints(r.ID, s.eng.ApproverActions(r)); h != "" {
				line += " Review it: " + h
			}
			toApp("%s", line)
			toReq("request %s was approved automatically: you are on call (%s); it starts %s. The approvers see it and review it afterwards.",
				r.ID, aa.Source(), strings.TrimPrefix(r.When(now, s.loc), "from "))
			return
		}
		if r.State == bot.StatePending {
			line := who + " asks for " + r.What()
			if w := r.When(now, s.loc); w != "" { // an extension has no window of its own
				line += " " + w
			}
			line += "."
			if !r.MFAVerifiedAt.IsZero() {
				line += " Passed MFA at " + bot.FormatTime(r.MFAVerifiedAt, now, s.loc) + "."
			}
			if r.Reason != "" {
				line += fmt.Sprintf(" Reason: %q.", r.Reason)
			}
			if r.Ticket != "" {
				line += " Ticket: " + r.Ticket + "."
			}
			note := ""
			if r.OnCallNote != "" {
				note = " (" + r.OnCallNote + ")"
				line += " " + bot.Capitalize(r.OnCallNote) + "."
			}
			if h := hints(r.ID, s.eng.ApproverActions(r)); h != "" {
				line += " Type: " + h
			}
			toApp("%s", line)
			toReq("request %s is waiting for approval by %s%s.", r.ID, approverNames(g.ApproversFor(r.Requester)), note)
		}
	case bot.EvApprovalAdded:
		toReq("%s approved request %s (%d of %d); waiting for %d more.", by, r.ID, len(r.Approvals), r.ApprovalsRequired, r.ApprovalsRequired-len(r.Approvals))
		toApp("%s approved request %s (%d of %d).%s", by, r.ID, len(r.Approvals), r.ApprovalsRequired, offer(r, s.eng.ApproverActions(r)))
	case bot.EvApproved:
		if by == "" {
			by = "policy (no approval needed)"
		}
		if r.Kind == bot.KindExtend {
			toReq("extension %s was approved by %s.", r.ID, by)
			return
		}
		toReq("request %s was approved by %s; it starts %s.", r.ID, by, strings.TrimPrefix(r.When(now, s.loc), "from "))
		toApp("request %s was approved by %s.%s", r.ID, by, offer(r, s.eng.ApproverActions(r)))
	case bot.EvDenied:
		reason := ""
		if r.DenyReason != "" {
			reason = ": " + r.DenyReason
		}
		toReq("request %s was denied by %s%s.", r.ID, by, reason)
		toApp("request %s was denied by %s%s.", r.ID, by, reason)
	case bot.EvCanceled:
		toReq("request %s was canceled.", r.ID)
		if r.DecidedAt.IsZero() {
			toApp("request %s was canceled by %s; nothing to decide.", r.ID, who)
		}
	case bot.EvTimedOut:
		toReq("request %s timed out: nobody decided in time. Ask again if you still need it.", r.ID)
		toApp("request %s timed out undecided.", r.ID)
	case bot.EvActivated:
		changed := ""
		if ev.Detail != "" { // the window was changed at the start (PIM's 5-minute minimum)
			changed = " " + bot.Capitalize(ev.Detail) + "."
		}
		toReq("request %s is active: you are %s until %s.%s %s",
			r.ID, bot.HoldsWords(r.Access, r.Group), bot.FormatTime(r.EndsAt, now, s.loc), changed, bot.CachingCaveat)
	case bot.EvReminder:
		toReq("request %s ends at %s.", r.ID, bot.FormatTime(r.EndsAt, now, s.loc))
	case bot.EvEnded:
		toReq("request %s ended (%s): you are no longer %s.", r.ID, r.EndReason, bot.HoldsWords(r.Access, r.Group))
	case bot.EvExtended:
		toReq("request %s now ends at %s, extended %s.", r.ID, bot.FormatTime(r.EndsAt, now, s.loc), ev.Detail)
		// The approvers hear when an extension takes effect (an extension that needed no
		// approval too): the grant they look after now lasts longer.
		toApp("request %s of %s now ends at %s, extended %s.", r.ID, who, bot.FormatTime(r.EndsAt, now, s.loc), ev.Detail)
	case bot.EvFailed:
		toReq("request %s failed: %s.", r.ID, failReason(r))
		toApp("request %s of %s failed: %s.", r.ID, who, failReason(r))
	case bot.EvDelayed:
		toReq("request %s: the directory is not answering; activation is delayed and pimbot keeps trying.", r.ID)
	case bot.EvRemovalFailing:
		toApp("ALERT: removing %s from %s (request %s) keeps failing; pimbot keeps retrying. %s", who, r.Group, r.ID, ev.Detail)
		toReq("request %s: removing your access is delayed by a directory error; pimbot keeps retrying.", r.ID)
	case bot.EvReviewed:
		toApp("%s reviewed request %s, approved automatically by %s: looks good.", by, r.ID, r.AutoApproval.Words())
	case bot.EvReviewDue:
		line := fmt.Sprintf("REVIEW: %s got %s approved automatically by %s (request %s), and nobody reviewed it yet.", who, r.What(), r.AutoApproval.Words(), r.ID)
		if h := hints(r.ID, s.eng.ApproverActions(r)); h != "" {
			line += " Type: " + h
		}
		toApp("%s", line)
	case bot.EvDrift, bot.EvDriftRemoved, bot.EvDriftRemoveFailed, bot.EvDriftElsewhere:
		// Access found without a grant concerns no request: only the approvers hear of it.
		toApp("DRIFT: %s", printable(ev.Detail))
	case bot.EvDeadLetter:
		tell(b, "operators", "ALERT: %s", printable(ev.Detail))
	}
}

// approverNames lists approvers as the shell names them; "the approvers" when none is named.
func approverNames(xs []string) string {
	if len(xs) == 0 {
		return "the approvers"
	}
	return strings.Join(xs, ", ")
}

// challengeText tells the requester how to verify: the link, or the page and the code.
func challengeText(r *bot.Request, ch bot.Challenge, now time.Time) string {
	if ch.UserCode != "" {
		return fmt.Sprintf("request %s: %s needs MFA. Open %s and enter the code %s within %s.", r.ID, r.Group, printable(ch.URL), printable(ch.UserCode), bot.FormatDuration(ch.Expires.Sub(now).Round(time.Minute)))
	}
	return fmt.Sprintf("request %s: %s needs MFA. Verify with Microsoft: %s", r.ID, r.Group, printable(ch.URL))
}

// hints are the commands of the actions the engine offers, in its order: each is typed as
// the action's name and the request id ("extend R7KX2M9Q | deactivate R7KX2M9Q"). A command
// is one word to wrap (its spaces are no-break spaces, printed as spaces).
func hints(id string, acts []bot.Action) string {
	hs := make([]string, 0, len(acts))
	for _, a := range acts {
		h := command(a) + nbsp + id
		if a == bot.ActDeny {
			h += nbsp + "[reason]"
		}
		hs = append(hs, h)
	}
	return strings.Join(hs, " | ")
}

// command is the shell command of an action: its name, but looks-good for ActLooksGood.
func command(a bot.Action) string {
	if a == bot.ActLooksGood {
		return "looks-good"
	}
	return string(a)
}

// offer is the hints at the end of a line, if the engine offers anything; verifying again
// says when it helps.
func offer(r *bot.Request, acts []bot.Action) string {
	if len(acts) == 0 {
		return ""
	}
	var parts []string
	var rest []bot.Action
	for _, a := range acts {
		if a == bot.ActVerify {
			parts = append(parts, "if the sign-in fails or runs out: "+hints(r.ID, []bot.Action{a}))
		} else {
			rest = append(rest, a)
		}
	}
	if len(rest) > 0 {
		parts = append(parts, hints(r.ID, rest))
	}
	return "  (" + strings.Join(parts, "; ") + ")"
}

// printable drops control characters (terminal escapes) from text the directory returned.
func printable(text string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, text)
}

func (s *Shell) tell(to, format string, args ...any) {
	var b strings.Builder
	tell(&b, to, format, args...)
	s.printf("%s", b.String())
}

// tell writes what someone is told, one line.
func tell(b *strings.Builder, to, format string, args ...any) {
	fmt.Fprintf(b, "  → to %s: %s\n", to, fmt.Sprintf(format, args...))
}

// failReason is why a request failed: the engine's reason, and the directory's error if any.
func failReason(r *bot.Request) string {
	s := r.EndReason
	if s == "" {
		s = "the directory refused the grant"
	}
	if r.LastError != "" {
		s += " (" + r.LastError + ")"
	}
	return s
}
