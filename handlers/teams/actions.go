package teams

import (
	"context"
	"errors"
	"fmt"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/pimbot/pimbot/bot"
)

// actionResult is the answer to a card button: a card that replaces the clicked one, or a
// message for the person who clicked while the card stays as it was.
type actionResult struct {
	card    Card
	message string
}

func say(err error) actionResult { return actionResult{message: bot.Describe(err)} }

// cardAction runs one card button for the person who clicked, already resolved to a directory
// user. Nothing in data is trusted beyond the request id it names: the engine decides.
func (s *Surface) cardAction(ctx context.Context, a bot.Actor, act *schema.Activity, verb string, data map[string]any) actionResult {
	v := s.view(act.LocalTimezone)
	id, _ := data["requestId"].(string)
	group := func(r *bot.Request) *bot.Group {
		g, _ := s.eng.Policy().Group(r.GroupID)
		return g
	}
	switch verb {
	case "form":
		card, _ := s.form(ctx, a, v, Form{}, nil, "")
		return actionResult{card: card}
	case "submit":
		return s.submitForm(ctx, a, v, FormFromData(data))
	case "approve", "deny", "revoke", "looks_good":
		var r *bot.Request
		var err error
		switch verb {
		case "approve":
			r, err = s.eng.Approve(ctx, a, id)
		case "deny":
			r, err = s.eng.Deny(ctx, a, id, denyReason(data, id))
		case "revoke":
			r, err = s.eng.Revoke(ctx, a, id)
		default:
			r, err = s.eng.LooksGood(ctx, a, id)
		}
		if err != nil {
			return say(err)
		}
		if from, _ := data["from"].(string); from == fromInbox && isPersonal(act) {
			// Clicked on the inbox (only ever sent to a personal chat): the inbox again, with
			// what came of the click.
			card, _ := s.inbox(ctx, a, v, decidedLine(r, verb))
			return actionResult{card: card}
		}
		// The approvers' card shows the channel's time zone, as the notifications render it.
		return actionResult{card: ApprovalCard(s.view(""), r, group(r), s.eng.ApproverActions(r))}
	case "cancel":
		r, err := s.eng.Cancel(ctx, a, id)
		if err != nil {
			return say(err)
		}
		return actionResult{card: ResultCard(v, "Request "+r.ID+" canceled", r, s.eng.Actions(ctx, a, r))}
	case "deactivate":
		r, err := s.eng.Deactivate(ctx, a, id)
		if err != nil {
			return say(err)
		}
		heading := "Request " + r.ID + " is being deactivated"
		if r.State == bot.StateCanceled {
			heading = "Request " + r.ID + " canceled"
		}
		return actionResult{card: ResultCard(v, heading, r, s.eng.Actions(ctx, a, r))}
	case "verify":
		return s.verifyAgain(ctx, a, act, v, id)
	case "extend":
		r, err := s.eng.Extend(ctx, a, id, 0, "")
		if err != nil {
			return say(err)
		}
		return actionResult{card: SubmittedCard(v, r, group(r), s.eng.Actions(ctx, a, r))}
	}
	return actionResult{message: fmt.Sprintf("This button (%q) is not known to this version of pimbot.", truncateRunes(verb, 20))}
}

// submitForm submits the activation form. A refusal comes back as the same form, with what
// the person entered and the engine's words under the field they concern.
func (s *Surface) submitForm(ctx context.Context, a bot.Actor, v View, f Form) actionResult {
	again := func(fe *bot.FieldError, top string) actionResult {
		card, _ := s.form(ctx, a, v, f, fe, top)
		return actionResult{card: card}
	}
	g, _ := s.eng.Policy().Group(f.Group) // nil: no such group, which the engine refuses
	in, err := f.Input(v.Now, v.loc(), g)
	var fe *bot.FieldError
	if errors.As(err, &fe) {
		return again(fe, "")
	}
	r, err := s.eng.Submit(ctx, a, in)
	switch {
	case errors.As(err, &fe):
		return again(fe, "")
	case err != nil:
		return again(nil, bot.Describe(err))
	}
	g, _ = s.eng.Policy().Group(r.GroupID)
	return actionResult{card: SubmittedCard(v, r, g, s.eng.Actions(ctx, a, r))}
}
