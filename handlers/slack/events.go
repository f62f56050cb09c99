package slack

import (
	"context"
	"strings"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// event handles one Events API event (already acknowledged). Slack retries deliveries it
// thinks were lost; the event id is recorded so that each is handled once, by one replica.
func (s *Surface) event(ctx context.Context, eventID string, ev slackevents.EventsAPIEvent) {
	if eventID != "" {
		fresh, err := s.kv.PutIfAbsent(ctx, keyEvent(eventID), "1", eventDedupeTTL)
		if err != nil {
			s.log.Warn("slack event dedupe unavailable; handling anyway", "event_id", eventID, "err", err)
		} else if !fresh {
			return
		}
	}
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.MessageEvent:
		s.message(e)
	case *slackevents.AppHomeOpenedEvent:
		if e.Tab == "home" && e.User != "" {
			s.refreshHome(e.User, true)
		}
	}
}

// message answers a person writing in their DM with the bot.
func (s *Surface) message(e *slackevents.MessageEvent) {
	if e.ChannelType != slackevents.ChannelTypeIM || e.User == "" || e.BotID != "" || e.SubType != "" {
		return // our own messages, edits, bots, channels
	}
	o := origin{UserID: e.User, ChannelID: e.Channel, DM: true}
	text := strings.TrimSpace(e.Text)
	lower := strings.ToLower(text)
	var f func(ctx context.Context)
	switch lower {
	case "help", "?", "/activate help", "activate help":
		f = func(ctx context.Context) { s.tellText(ctx, o, helpText) }
	case "status", "my requests", "requests", "list", "/activate status", "activate status":
		f = func(ctx context.Context) { s.sendStatus(ctx, o) }
	case "pending", "inbox", "/activate pending", "activate pending", "/activate inbox", "activate inbox":
		f = func(ctx context.Context) { s.sendInbox(ctx, o) }
	case "activate", "/activate":
		f = func(ctx context.Context) {
			s.tellText(ctx, o, "Use `/activate` to open the form, or write `activate "+esc(bot.QuickUsage)+"`.")
		}
	default:
		rest, ok := cutPrefixFold(text, "activate ")
		if !ok {
			rest, ok = cutPrefixFold(text, "/activate ")
		}
		if !ok {
			rest = text // "verify <id>" needs no "activate" in the DM
		}
		if id, verify := verifyArg(rest); verify {
			if id == "" {
				f = func(ctx context.Context) { s.tellText(ctx, o, verifyUsage) }
			} else {
				f = func(ctx context.Context) { s.verifyAgain(ctx, o, o, id) }
			}
			break
		}
		if !ok {
			f = func(ctx context.Context) { s.tellText(ctx, o, hintText) }
			break
		}
		q, err := bot.ParseQuick(rest, s.now(), s.loc())
		if err != nil {
			f = func(ctx context.Context) {
				s.tellText(ctx, o, ":warning: "+say(err)+"\nUsage: `activate "+esc(bot.QuickUsage)+"`")
			}
			break
		}
		f = func(ctx context.Context) { s.quickSubmit(ctx, o, q) }
	}
	s.later("dm", f)
}

// publishHome draws the person's App Home. opened says that they just opened it: that is
// remembered (homeTTL) so that changes to their requests redraw it while it may be open.
func (s *Surface) publishHome(ctx context.Context, slackID string, opened bool) {
	var (
		groups  []*bot.Group
		rs      []*bot.Request
		waiting inbox
		problem string
	)
	u, err := s.identify(ctx, slackID)
	if err == nil && opened {
		if err := s.kv.SetValue(ctx, keyHome(u.ID), slackID, homeTTL); err != nil {
			s.log.Warn("slack: cannot remember that the App Home was opened", "err", err)
		}
	}
	if err == nil {
		groups, err = s.eligible(ctx, u)
	}
	if err == nil {
		rs, err = s.eng.List(ctx, s.actor(u), listLimit)
	}
	if err != nil {
		problem = say(err)
	} else {
		waiting = s.readInbox(ctx, u, maxInboxHome)
	}
	view := homeView(groups, rs, s.actions(ctx, u, rs), waiting, problem, s.now(), s.loc())
	view.Blocks.BlockSet = fitBlocks(view.Blocks.BlockSet, limitViewBlocks) // limits.go
	if _, err := s.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: slackID, View: view}); err != nil {
		s.log.Warn("slack views.publish failed", "user", slackID, "err", err)
	}
}

// cutPrefixFold cuts an ASCII prefix, ignoring case, keeping the rest as typed.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return strings.TrimSpace(s[len(prefix):]), true
}
