package teams

import (
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Offer is what the engine offers the person a card is for: the actions
// (bot.Engine.Actions) and how much more time the Extend button asks for
// (bot.Engine.ExtensionDefault), when extending is one of them.
type Offer struct {
	Actions  []bot.Action
	ExtendBy time.Duration
	// From names the card when it carries the buttons of several requests (fromInbox): each
	// click says so, for the answer to redraw that card, and each deny reason is keyed by
	// its request id (an input id is unique within a card).
	From string
}

// fromInbox marks the buttons of the inbox card (InboxCard); fromStatus those of the status
// card (StatusCard), whose clicks are answered like those of any one request's card.
const (
	fromInbox  = "inbox"
	fromStatus = "status"
)

// actionButtons are the card buttons of the actions the engine offers, in its order. Deny
// opens a small card that asks for the reason first, and says so.
func actionButtons(id string, o Offer) []any {
	exec := func(text, verb, style string) map[string]any {
		a := execute(text, verb, id, style)
		if o.From != "" {
			a["data"].(map[string]any)["from"] = o.From // shared with the fallback
		}
		return a
	}
	reasonID := "denyReason"
	if o.From != "" {
		reasonID = denyReasonKey(id)
	}
	var out []any
	for _, a := range o.Actions {
		switch a {
		case bot.ActApprove:
			out = append(out, exec("Approve", "approve", "positive"))
		case bot.ActDeny:
			out = append(out, map[string]any{
				"type":  "Action.ShowCard",
				"title": "Deny with a reason…",
				"card": map[string]any{
					"type": "AdaptiveCard",
					"body": []any{map[string]any{
						"type": "Input.Text", "id": reasonID, "label": "Reason (optional, the requester sees it)",
						"isMultiline": true, "maxLength": bot.MaxReasonLen, "placeholder": "Why is it denied?",
					}},
					"actions": []any{exec("Deny", "deny", "destructive")},
				},
			})
		case bot.ActVerify:
			out = append(out, exec("Verify again", "verify", ""))
		case bot.ActExtend:
			title := "Extend"
			if o.ExtendBy > 0 {
				title = "Extend by " + bot.FormatDuration(o.ExtendBy)
			}
			out = append(out, exec(title, "extend", ""))
		case bot.ActDeactivate:
			out = append(out, exec("Deactivate now", "deactivate", ""))
		case bot.ActCancel:
			out = append(out, exec("Cancel request", "cancel", ""))
		case bot.ActRevoke:
			out = append(out, exec("Revoke", "revoke", "destructive"))
		case bot.ActLooksGood:
			out = append(out, exec("Looks good", "looks_good", "positive"))
		}
	}
	return out
}

// denyReasonKey is the id of the deny reason's input of one request on a card that carries
// several.
func denyReasonKey(id string) string { return "denyReason." + id }

// denyReason is the reason typed with a Deny click: the card's one reason input, or the one
// of the request clicked on a card that carries several.
func denyReason(data map[string]any, id string) string {
	if s, ok := data["denyReason"].(string); ok && s != "" {
		return s
	}
	s, _ := data[denyReasonKey(id)].(string)
	return s
}
