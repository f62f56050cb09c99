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
}

// actionButtons are the card buttons of the actions the engine offers, in its order. Deny
// opens a small card that asks for the reason first.
func actionButtons(id string, o Offer) []any {
	var out []any
	for _, a := range o.Actions {
		switch a {
		case bot.ActApprove:
			out = append(out, execute("Approve", "approve", id, "positive"))
		case bot.ActDeny:
			out = append(out, map[string]any{
				"type":  "Action.ShowCard",
				"title": "Deny",
				"card": map[string]any{
					"type": "AdaptiveCard",
					"body": []any{map[string]any{
						"type": "Input.Text", "id": "denyReason", "label": "Reason (optional, the requester sees it)",
						"isMultiline": true, "maxLength": bot.MaxReasonLen, "placeholder": "Why is it denied?",
					}},
					"actions": []any{execute("Deny", "deny", id, "destructive")},
				},
			})
		case bot.ActVerify:
			out = append(out, execute("Verify again", "verify", id, ""))
		case bot.ActExtend:
			title := "Extend"
			if o.ExtendBy > 0 {
				title = "Extend by " + bot.FormatDuration(o.ExtendBy)
			}
			out = append(out, execute(title, "extend", id, ""))
		case bot.ActDeactivate:
			out = append(out, execute("Deactivate now", "deactivate", id, ""))
		case bot.ActCancel:
			out = append(out, execute("Cancel request", "cancel", id, ""))
		}
	}
	return out
}

// actionHints are the commands of the actions the engine offers, for a line of text: each
// action is typed as its name and the request id ("extend R7KX2M9Q").
func actionHints(id string, acts []bot.Action) string {
	s := ""
	for _, a := range acts {
		s += " · " + string(a) + " " + id
	}
	return s
}
