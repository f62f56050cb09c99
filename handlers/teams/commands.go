package teams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/pimbot/pimbot/bot"
)

// command runs one text command (personal chat, or a channel message that mentions the bot)
// and returns the reply card and its plain-text summary.
func (s *Surface) command(ctx context.Context, a bot.Actor, act *schema.Activity, text string) (Card, string) {
	v := s.view(act.LocalTimezone)
	word, rest, _ := strings.Cut(text, " ")
	word = strings.ToLower(strings.TrimPrefix(word, "/"))
	rest = strings.TrimSpace(rest)
	fail := func(err error) (Card, string) {
		return MessageCard("That did not work", bot.Describe(err), toneAttention), ""
	}
	needID := func(usage string) (Card, string) {
		return MessageCard("Which request?", "Usage: "+usage+". Type status to see your requests.", toneWarning), ""
	}
	switch word {
	case "activate":
		switch strings.ToLower(rest) {
		case "":
			return s.form(ctx, a, v, Form{}, nil, "")
		case "help":
			return HelpCard(), ""
		case "status":
			return s.status(ctx, a, v, "")
		case "pending", "inbox":
			return s.inboxCommand(ctx, a, act, v)
		}
		q, err := bot.ParseQuick(rest, v.Now, v.loc())
		if err != nil {
			return MessageCard("That did not work", bot.Describe(err)+" Usage: activate "+bot.QuickUsage, toneAttention), ""
		}
		r, err := s.eng.Submit(ctx, a, q.Input())
		if err != nil {
			return fail(err)
		}
		g, _ := s.eng.Policy().Group(r.GroupID)
		return SubmittedCard(v, r, g, s.eng.Actions(ctx, a, r)), "Request " + r.ID + " submitted"
	case "status":
		return s.status(ctx, a, v, rest)
	case "pending", "inbox":
		return s.inboxCommand(ctx, a, act, v)
	case "groups":
		gs, err := s.eng.EligibleGroups(ctx, a.User)
		if err != nil {
			return fail(errors.Join(bot.ErrUnavailable, err))
		}
		return GroupsCard(gs), ""
	case "cancel", "deactivate":
		if rest == "" {
			return needID(word + " <id>")
		}
		op, heading := s.eng.Cancel, "Request %s canceled"
		if word == "deactivate" {
			op, heading = s.eng.Deactivate, "Request %s is being deactivated"
		}
		r, err := op(ctx, a, firstWord(rest))
		if err != nil {
			return fail(err)
		}
		if r.State == bot.StateCanceled {
			heading = "Request %s canceled"
		}
		return ResultCard(v, fmt.Sprintf(heading, r.ID), r, s.eng.Actions(ctx, a, r)), ""
	case "verify":
		if rest == "" {
			return needID("verify <id>")
		}
		res := s.verifyAgain(ctx, a, act, v, firstWord(rest))
		if res.card == nil {
			return MessageCard("That did not work", res.message, toneAttention), ""
		}
		return res.card, "Verify with Microsoft"
	case "extend":
		if rest == "" {
			return needID("extend <id> [for <duration>] [reason]")
		}
		id, more, _ := strings.Cut(rest, " ")
		d, reason, err := extendArgs(strings.TrimSpace(more), v)
		if err != nil {
			return fail(err)
		}
		r, err := s.eng.Extend(ctx, a, id, d, reason)
		if err != nil {
			return fail(err)
		}
		g, _ := s.eng.Policy().Group(r.GroupID)
		return SubmittedCard(v, r, g, s.eng.Actions(ctx, a, r)), ""
	case "approve", "deny":
		if rest == "" {
			return needID(word + " <id>")
		}
		id, reason, _ := strings.Cut(rest, " ")
		var r *bot.Request
		var err error
		if word == "approve" {
			r, err = s.eng.Approve(ctx, a, id)
		} else {
			r, err = s.eng.Deny(ctx, a, id, reason)
		}
		if err != nil {
			return fail(err)
		}
		g, _ := s.eng.Policy().Group(r.GroupID)
		return ApprovalCard(v, r, g, s.eng.ApproverActions(r)), ""
	case "channel":
		if td := teamsData(act); td.channelID != "" {
			return ChannelIDCard(td.channelID), ""
		}
		return MessageCard("This is not a channel", "Mention me in a Teams channel with channel to learn its id for approval_channel.teams.", toneDefault), ""
	case "help", "?", "hi", "hello":
		return HelpCard(), ""
	case "":
		return HelpCard(), ""
	}
	return MessageCard("I did not understand that", `You wrote "`+truncateRunes(text, 80)+`". Try activate, status or help.`, toneWarning), ""
}

func (s *Surface) status(ctx context.Context, a bot.Actor, v View, id string) (Card, string) {
	if id != "" {
		r, err := s.eng.Get(ctx, a, firstWord(id))
		if err != nil {
			return MessageCard("That did not work", bot.Describe(err), toneAttention), ""
		}
		return StatusCard(v, []*bot.Request{r}, s.actions(ctx, a, []*bot.Request{r})), ""
	}
	rs, err := s.eng.List(ctx, a, 20)
	if err != nil {
		return MessageCard("That did not work", bot.Describe(err), toneAttention), ""
	}
	return StatusCard(v, rs, s.actions(ctx, a, rs)), ""
}

// form renders the activation form for the person's eligible groups.
func (s *Surface) form(ctx context.Context, a bot.Actor, v View, f Form, fe *bot.FieldError, topErr string) (Card, string) {
	gs, err := s.eng.EligibleGroups(ctx, a.User)
	if err != nil {
		return MessageCard("That did not work", bot.Describe(errors.Join(bot.ErrUnavailable, err)), toneAttention), ""
	}
	if len(gs) == 0 {
		return MessageCard("No groups for you", "You are not eligible for any group. Ask your administrators to add you to the policy.", toneWarning), ""
	}
	return FormCard(v, gs, f, fe, topErr), "Request access"
}

// extendArgs reads "[for <duration>] [reason]".
func extendArgs(rest string, v View) (time.Duration, string, error) {
	after, ok := strings.CutPrefix(strings.ToLower(rest), "for ")
	if !ok {
		return 0, rest, nil
	}
	q, err := bot.ParseQuick("x for "+rest[len(rest)-len(after):], v.Now, v.loc())
	if err != nil {
		return 0, "", err
	}
	return q.Duration, q.Reason, nil
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	return w
}
