package teams

import (
	"fmt"

	"github.com/pimbot/pimbot/bot"
)

// maxInboxCard is how many waiting requests one inbox card shows, so that the card stays
// far below Teams' 28 KB message limit; the rest are counted.
const maxInboxCard = 10

// InboxCard lists the requests waiting for an approver's decision (bot.Engine.Inbox), oldest
// first: who asks, for what, when and why, and the buttons of what the engine offers the
// approver on each (acts, by request id; Deny asks for a reason). note, when set, says what
// came of the approver's last click on the card.
func InboxCard(v View, rs []*bot.Request, acts map[string][]bot.Action, note string) Card {
	var body []any
	if len(rs) == 0 {
		body = append(body, title("Nothing is waiting for your approval"))
	} else {
		body = append(body, title(fmt.Sprintf("Waiting for your approval (%d)", len(rs))))
	}
	if note != "" {
		body = append(body, para(note))
	}
	for i, r := range rs {
		if i == maxInboxCard {
			body = append(body, label(fmt.Sprintf("…and %d more. Decide these, and the next ones show here.", len(rs)-i)))
			break
		}
		body = append(body, inboxItem(v, r, acts[r.ID]))
	}
	return newCard(body, nil)
}

// inboxItem is one waiting request on the inbox card, with its own buttons.
func inboxItem(v View, r *bot.Request, acts []bot.Action) map[string]any {
	who := r.Requester.Display()
	if h := r.Requester.Handle(); h != who {
		who += " (" + h + ")"
	}
	facts := []fact{{"When", r.When(v.Now, v.loc())}, {"Asked", v.time(r.CreatedAt)}, {"Ticket", r.Ticket}}
	if !r.MFAVerifiedAt.IsZero() {
		facts = append(facts, fact{"MFA", "passed at " + v.time(r.MFAVerifiedAt)})
	}
	if r.ApprovalsRequired > 1 {
		facts = append(facts, fact{"Approvals", fmt.Sprintf("%d of %d", len(r.Approvals), r.ApprovalsRequired)})
	}
	facts = append(facts, fact{"Request", r.ID})
	head := runs(bold(run(who, maxNameLen+100)), run(" asks for ", 20), run(r.What(), 300))
	if r.Unreviewed() {
		head = runs(bold(run(who, maxNameLen+100)), run(" got ", 20), run(r.What(), 300),
			run(" approved automatically by "+r.AutoApproval.Words()+" ("+r.State.Label()+"): review it", 400))
	}
	items := []any{head, factSet(facts)}
	if r.Reason != "" {
		items = append(items, runs(bold(run("Reason: ", 20)), run(r.Reason, 300)))
	}
	if bs := actionButtons(r.ID, Offer{Actions: acts, From: fromInbox}); len(bs) > 0 {
		items = append(items, map[string]any{"type": "ActionSet", "actions": bs})
	}
	return map[string]any{"type": "Container", "separator": true, "spacing": "Medium", "items": items}
}

// decidedLine says what came of an approver's click on the inbox.
func decidedLine(r *bot.Request, verb string) string {
	switch {
	case verb == "deny":
		return "Request " + r.ID + " denied."
	case verb == "looks_good":
		return "Request " + r.ID + " reviewed: looks good."
	case verb == "revoke":
		return "Request " + r.ID + " revoked."
	case r.State == bot.StatePending:
		return fmt.Sprintf("Your approval of request %s is recorded (%d of %d).", r.ID, len(r.Approvals), r.ApprovalsRequired)
	}
	return "Request " + r.ID + " approved."
}
