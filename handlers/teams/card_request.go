package teams

import (
	"fmt"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// ApprovalCard is the approvers' card in the approval channel: a state label, a headline
// of who asks for what ("Alice requests prod-db-admins (member) · 2h"), the reason, the facts
// the headline leaves out, where the request stands, and the buttons of what the engine offers
// an approver (bot.Engine.ApproverActions: Approve and Deny while it is pending; Deny asks for
// a reason). Once decided it shows the outcome and who decided. The request id is the small
// print at the end. g may be nil (a group no longer in the policy).
func ApprovalCard(v View, r *bot.Request, g *bot.Group, acts []bot.Action) Card {
	return approvalCard(v, r, nil, g, acts)
}

// approvalCard is ApprovalCard with, for an extension, the grant it extends as it is now
// (parent may be nil): an applied extension then says when the grant now ends.
func approvalCard(v View, r, parent *bot.Request, g *bot.Group, acts []bot.Action) Card {
	st := approvalStatus(v, r, g)
	if r.State == bot.StateApplied && parent != nil && parent.ID == r.ParentID && !parent.EndsAt.IsZero() {
		st.Line += " It now ends at " + v.time(parent.EndsAt) + "."
	}
	body := []any{stateLabel(st.Label, st.Tone), heading(headline(r))}
	if r.Reason != "" {
		body = append(body, runs(bold(run("Reason: ", 20)), run(r.Reason, maxReasonLen)))
	}
	body = append(body, factSet(requestFacts(v, r)), para(st.Line))
	if r.State == bot.StateDenied && r.DenyReason != "" {
		body = append(body, runs(bold(run("Why it was denied: ", 30)), run(r.DenyReason, maxReasonLen)))
	}
	kind := "Access request "
	if r.Kind == bot.KindExtend {
		kind = "Extension request "
	}
	body = append(body, footer(kind+r.ID+" · asked "+v.time(r.CreatedAt)))
	return newCard(body, actionButtons(r.ID, Offer{Actions: acts}))
}

// headline says who asks for what in one line: "Alice requests prod-db-admins (member) · 2h",
// or "Alice asks for 1h more of prod-db-admins (member)" for an extension.
func headline(r *bot.Request) string {
	who := truncateRunes(r.Requester.Display(), maxNameLen)
	if r.Kind == bot.KindExtend {
		return fmt.Sprintf("%s asks for %s more of %s (%s)", who, bot.FormatDuration(r.Duration), r.Group, r.Access)
	}
	return fmt.Sprintf("%s requests %s (%s) · %s", who, r.Group, r.Access, bot.FormatDuration(r.Duration))
}

// requestFacts are what the headline and the state leave out: when, the requester's account,
// the ticket and MFA. (The approvals so far are in the label and the line under the facts.)
func requestFacts(v View, r *bot.Request) []fact {
	var facts []fact
	if r.Kind == bot.KindExtend {
		facts = append(facts, fact{"Extends", "request " + r.ParentID})
	} else {
		facts = append(facts, fact{"When", v.window(r)})
	}
	if h := r.Requester.Handle(); h != r.Requester.Display() {
		facts = append(facts, fact{"Requester", h})
	}
	facts = append(facts, fact{"Ticket", r.Ticket})
	if !r.MFAVerifiedAt.IsZero() {
		facts = append(facts, fact{"MFA", "passed at " + v.time(r.MFAVerifiedAt)})
	}
	return facts
}

// window is when the grant runs, or ran: "09:00–11:00 UTC". A request that waits to start
// at once shows the window it would have if it went on now, and says so.
func (v View) window(r *bot.Request) string {
	switch {
	case (r.State == bot.StateActive || r.State == bot.StateEnded) && !r.ActivatedAt.IsZero():
		end := r.EndsAt
		if r.State == bot.StateEnded && !r.EndedAt.IsZero() {
			end = r.EndedAt
		}
		return v.span(r.ActivatedAt, end)
	case r.Start.IsZero():
		return bot.FormatDuration(r.Duration) + " from the start"
	}
	start, waits := r.Start, ""
	if !start.After(v.Now.Add(time.Minute)) {
		switch r.State {
		case bot.StatePending:
			start, waits = v.Now, " (starts when approved)"
		case bot.StateVerifying:
			start, waits = v.Now, " (starts once verified)"
			if r.ApprovalsRequired > 0 {
				waits = " (starts once verified and approved)"
			}
		}
	}
	return v.span(start, start.Add(r.Duration)) + waits
}

// standing is where a request stands: a short label, a sentence, and the label's tone.
type standing struct{ Label, Line, Tone string }

// approvalStatus says where the request stands, for approvers.
func approvalStatus(v View, r *bot.Request, g *bot.Group) standing {
	approved := ""
	if len(r.Approvals) > 0 {
		names := make([]string, len(r.Approvals))
		for i, a := range r.Approvals {
			names[i] = a.By.Display()
		}
		last := r.Approvals[len(r.Approvals)-1].At
		approved = "Approved by " + strings.Join(names, ", ") + " at " + v.time(last) + ". "
	}
	switch r.State {
	case bot.StateVerifying:
		return standing{"Waiting for MFA", "Waiting for the requester to verify with Microsoft (MFA).", toneWarning}
	case bot.StatePending:
		if len(r.Approvals) > 0 {
			return standing{fmt.Sprintf("Pending approval (%d of %d)", len(r.Approvals), r.ApprovalsRequired),
				fmt.Sprintf("Approved so far by %s; waiting for %d more approval(s) from %s.",
					joinDecisions(r.Approvals), r.ApprovalsRequired-len(r.Approvals), approversText(g)), toneWarning}
		}
		line := "Waiting for approval by " + approversText(g) + "."
		if r.OnCallNote != "" {
			line += " (" + bot.Capitalize(r.OnCallNote) + ".)"
		}
		return standing{"Pending approval", line, toneWarning}
	case bot.StateScheduled:
		if r.AutoApproval != nil {
			return standing{"Approved automatically", "Approved automatically by " + r.AutoApproval.Words() + ". Starts " +
				strings.TrimPrefix(r.When(v.Now, v.loc()), "from ") + "." + reviewWords(r), toneGood}
		}
		return standing{"Approved", approved + "Starts " + strings.TrimPrefix(r.When(v.Now, v.loc()), "from ") + ".", toneGood}
	case bot.StateActive:
		if r.AutoApproval != nil && len(r.Approvals) == 0 {
			approved = "Approved automatically by " + r.AutoApproval.Words() + ". "
		}
		if r.Ending() {
			return standing{"Ending", approved + "Being removed (" + r.EndReason + ")." + reviewWords(r), toneWarning}
		}
		return standing{"Active", approved + "Active until " + v.time(r.EndsAt) + "." + reviewWords(r), toneGood}
	case bot.StateEnded:
		return standing{"Ended", approved + "Ended " + v.time(r.EndedAt) + " (" + r.EndReason + ")." + reviewWords(r), toneDefault}
	case bot.StateApplied:
		return standing{"Extension applied", approved + "Added to request " + r.ParentID + ".", toneGood}
	case bot.StateDenied:
		by := "an approver"
		if r.Denial != nil {
			by = r.Denial.By.Display()
		}
		if r.DecidedAt.IsZero() {
			return standing{"Denied", "Denied by " + by + ".", toneAttention}
		}
		return standing{"Denied", "Denied by " + by + " at " + v.time(r.DecidedAt) + ".", toneAttention}
	case bot.StateCanceled:
		return standing{"Canceled", approved + "Canceled (" + r.EndReason + ").", toneDefault}
	case bot.StateTimedOut:
		return standing{"Timed out", "Timed out: nobody decided in time.", toneDefault}
	case bot.StateFailed:
		reason := r.EndReason
		if reason == "" {
			reason = "the directory refused the grant"
		}
		return standing{"Failed", approved + "Failed: " + reason + ".", toneAttention}
	}
	return standing{bot.Capitalize(string(r.State)), bot.Capitalize(string(r.State)) + ".", toneDefault}
}

func joinDecisions(ds []bot.Decision) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.By.Display()
	}
	return strings.Join(names, ", ")
}

// approversText names who may approve, as the policy says it.
func approversText(g *bot.Group) string {
	if g == nil {
		return "the approvers"
	}
	return approverWords(g.Approvers)
}

// approverWords names approvers (policy entries) for people: "a, b or members of c".
func approverWords(entries []string) string {
	if len(entries) == 0 {
		return "the approvers"
	}
	return bot.ApproverWords(entries)
}

// reviewWords is where an automatic approval's review stands (bot.ReviewWords).
func reviewWords(r *bot.Request) string { return bot.ReviewWords(r, bot.User.Display) }
