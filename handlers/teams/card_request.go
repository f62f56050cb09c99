package teams

import (
	"fmt"
	"strings"

	"github.com/pimbot/pimbot/bot"
)

// ApprovalCard is the approvers' card in the approval channel: the request and its state and
// the buttons of what the engine offers an approver (bot.Engine.ApproverActions: Approve and
// Deny while it is pending; Deny asks for a reason). Once decided it shows the outcome and
// who decided. g may be nil (a group no longer in the policy).
func ApprovalCard(v View, r *bot.Request, g *bot.Group, acts []bot.Action) Card {
	kind := "Access request "
	if r.Kind == bot.KindExtend {
		kind = "Extension request "
	}
	status, tone := approvalStatus(v, r, g)
	body := []any{
		title(kind+r.ID, tone),
		runs(bold(run(r.Requester.Display(), maxNameLen)), run(" asks for ", 20), run(r.What(), 300)),
		factSet(requestFacts(v, r)),
	}
	if r.Reason != "" {
		body = append(body, label("Reason"), para(r.Reason))
	}
	body = append(body, runs(colored(run(status, 600), tone)))
	if r.State == bot.StateDenied && r.DenyReason != "" {
		body = append(body, label("Why it was denied"), para(r.DenyReason))
	}
	return newCard(body, actionButtons(r.ID, Offer{Actions: acts}))
}

func requestFacts(v View, r *bot.Request) []fact {
	who := r.Requester.Display()
	if h := r.Requester.Handle(); h != who {
		who += " (" + h + ")"
	}
	facts := []fact{
		{"Requester", who},
		{"Group", r.Group},
		{"Access", string(r.Access)},
		{"Duration", bot.FormatDuration(r.Duration)},
	}
	if r.Kind == bot.KindExtend {
		facts = append(facts, fact{"Extends", "request " + r.ParentID})
	} else if !r.Start.IsZero() {
		facts = append(facts, fact{"Start", v.time(r.Start)})
	}
	facts = append(facts, fact{"Ticket", r.Ticket})
	if !r.MFAVerifiedAt.IsZero() {
		facts = append(facts, fact{"MFA", "passed at " + v.time(r.MFAVerifiedAt)})
	}
	if r.ApprovalsRequired > 0 {
		facts = append(facts, fact{"Approvals", fmt.Sprintf("%d of %d", len(r.Approvals), r.ApprovalsRequired)})
	}
	return append(facts, fact{"Request", r.ID})
}

// approvalStatus says where the request stands, for approvers.
func approvalStatus(v View, r *bot.Request, g *bot.Group) (string, string) {
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
		return "Waiting for the requester to verify with Microsoft (MFA).", toneWarning
	case bot.StatePending:
		if len(r.Approvals) > 0 {
			return fmt.Sprintf("Approved so far by %s; waiting for %d more approval(s) from %s.",
				joinDecisions(r.Approvals), r.ApprovalsRequired-len(r.Approvals), approversText(g)), toneWarning
		}
		return "Waiting for approval by " + approversText(g) + ".", toneWarning
	case bot.StateScheduled:
		return approved + "Starts " + strings.TrimPrefix(r.When(v.Now, v.loc()), "from ") + ".", toneGood
	case bot.StateActive:
		if r.EndReason != "" {
			return approved + "Being removed (" + r.EndReason + ").", toneWarning
		}
		return approved + "Active until " + v.time(r.EndsAt) + ".", toneGood
	case bot.StateEnded:
		return approved + "Ended " + v.time(r.EndedAt) + " (" + r.EndReason + ").", toneDefault
	case bot.StateApplied:
		return approved + "Added to request " + r.ParentID + ".", toneGood
	case bot.StateDenied:
		by := "an approver"
		if r.Denial != nil {
			by = r.Denial.By.Display()
		}
		if r.DecidedAt.IsZero() {
			return "Denied by " + by + ".", toneAttention
		}
		return "Denied by " + by + " at " + v.time(r.DecidedAt) + ".", toneAttention
	case bot.StateCanceled:
		return approved + "Canceled (" + r.EndReason + ").", toneDefault
	case bot.StateTimedOut:
		return "Timed out: nobody decided in time.", toneDefault
	case bot.StateFailed:
		reason := r.EndReason
		if reason == "" {
			reason = "the directory refused the grant"
		}
		return approved + "Failed: " + reason + ".", toneAttention
	}
	return string(r.State), toneDefault
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
