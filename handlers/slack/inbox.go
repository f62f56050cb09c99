package slack

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// How many waiting requests a list shows (two blocks each): a message holds at most 50
// blocks, and the App Home at most 100 with its groups and the person's own requests.
const (
	maxInboxMessage = 20
	maxInboxHome    = 5
)

// blockInbox starts the block id of a waiting request's buttons ("inbox:<id>"): the buttons
// are the approvers' own (actApprove, actDeny), decided by the same handlers; the block id
// only tells a click on the inbox message apart, so that the message is redrawn after it.
const blockInbox = "inbox:"

// inbox is what waits for an approver's decision: the requests (bot.Engine.Inbox, oldest
// first), what the engine offers them on each one shown, or why it could not be read.
type inbox struct {
	Requests []*bot.Request
	Actions  map[string][]bot.Action
	Problem  string
}

// readInbox asks the engine what waits for the person, and what they may do with the first
// max of those (the ones a list shows).
func (s *Surface) readInbox(ctx context.Context, u bot.User, max int) inbox {
	rs, err := s.eng.Inbox(ctx, s.actor(u))
	if err != nil {
		return inbox{Problem: say(err)}
	}
	return inbox{Requests: rs, Actions: s.actions(ctx, u, rs[:min(len(rs), max)])}
}

// sendInbox answers /activate pending (or pending in the DM), privately.
func (s *Surface) sendInbox(ctx context.Context, o origin) {
	u, err := s.identify(ctx, o.UserID)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	s.tell(ctx, o, inboxMessage(s.readInbox(ctx, u, maxInboxMessage), "", s.now(), s.loc()))
}

// redrawInbox replaces the inbox message an approver clicked (through the click's
// response_url) with what waits now, and note on top (what came of the click).
func (s *Surface) redrawInbox(ctx context.Context, o origin, u bot.User, note string) {
	if !s.responseURLAllowed(o.ResponseURL) {
		return
	}
	m := inboxMessage(s.readInbox(ctx, u, maxInboxMessage), note, s.now(), s.loc())
	opts := append(msgOptions(m), slack.MsgOptionReplaceOriginal(o.ResponseURL))
	if _, _, err := s.api.PostMessageContext(ctx, o.ChannelID, opts...); err != nil {
		s.log.Warn("slack: redraw the inbox message failed", "user", o.UserID, "err", err)
	}
}

// refreshOwnHome redraws the App Home of a person who just decided a request, if they
// opened it lately: its "Waiting for your approval" section changed.
func (s *Surface) refreshOwnHome(ctx context.Context, u bot.User, slackID string) {
	if _, ok, err := s.kv.GetValue(ctx, keyHome(u.ID)); err == nil && ok {
		s.refreshHome(slackID, false)
	}
}

// inboxMessage is the answer to pending: the requests waiting for the approver's decision
// with the buttons of what the engine offers on each, or that nothing waits.
func inboxMessage(in inbox, note string, now time.Time, loc *time.Location) msg {
	var blocks []slack.Block
	if note != "" {
		blocks = append(blocks, section(note))
	}
	var text string
	switch {
	case in.Problem != "":
		text = ":warning: " + in.Problem
		blocks = append(blocks, section(text))
	case len(in.Requests) == 0:
		text = "Nothing is waiting for your approval."
		blocks = append(blocks, section(text))
	default:
		text = fmt.Sprintf("Waiting for your approval (%d), oldest first:", len(in.Requests))
		blocks = append(blocks, section("*"+text+"*"))
		blocks = append(blocks, inboxBlocks(in, maxInboxMessage, "Decide these, then `/activate pending` again for the rest.", now, loc)...)
		// The top-level text is what notifications and screen readers read: the list itself,
		// not only its title.
		for i, r := range in.Requests {
			if i == maxInboxMessage {
				text += fmt.Sprintf(" …and %d more.", len(in.Requests)-i)
				break
			}
			text += fmt.Sprintf(" %s: %s asks for %s.", r.ID, esc(truncate(r.Requester.Display(), 100)), esc(r.What()))
		}
	}
	if note != "" {
		text = stripMarks(note) + " " + text
	}
	return msg{Text: text, Blocks: blocks}
}

// homeInboxBlocks is the App Home's "Waiting for your approval" section, shown only when
// something waits (or when what waits could not be read).
func homeInboxBlocks(in inbox, now time.Time, loc *time.Location) []slack.Block {
	if in.Problem == "" && len(in.Requests) == 0 {
		return nil
	}
	blocks := []slack.Block{slack.NewHeaderBlock(plain("Waiting for your approval"))}
	if in.Problem != "" {
		blocks = append(blocks, section(":warning: "+in.Problem))
	} else {
		blocks = append(blocks, inboxBlocks(in, maxInboxHome, "`/activate pending` lists them all.", now, loc)...)
	}
	return append(blocks, slack.NewDividerBlock())
}

// inboxBlocks are the first max waiting requests, each a line and its buttons; more says
// how to see the rest.
func inboxBlocks(in inbox, max int, more string, now time.Time, loc *time.Location) []slack.Block {
	var blocks []slack.Block
	for i, r := range in.Requests {
		if i == max {
			blocks = append(blocks, contextLine(fmt.Sprintf("…and %d more. %s", len(in.Requests)-i, more)))
			break
		}
		blocks = append(blocks, section(inboxLine(r, now, loc)))
		if bs := actionButtons(r.ID, in.Actions[r.ID]); len(bs) > 0 {
			blocks = append(blocks, slack.NewActionBlock(blockInbox+r.ID, bs...))
		}
	}
	return blocks
}

// inboxLine is one waiting request for an approver: who asks for what and when, why, and
// where it stands.
func inboxLine(r *bot.Request, now time.Time, loc *time.Location) string {
	who := "*" + esc(truncate(r.Requester.Display(), 100)) + "*"
	if h := r.Requester.Handle(); h != r.Requester.Display() {
		who += " (" + esc(truncate(h, 100)) + ")"
	}
	line := fmt.Sprintf("%s asks for *%s*", who, esc(r.What()))
	if w := r.When(now, loc); w != "" {
		line += " " + esc(w)
	}
	if r.Unreviewed() {
		line = fmt.Sprintf("%s got *%s* approved automatically by %s (%s): *review it*", who, esc(r.What()), esc(r.AutoApproval.Words()), esc(r.State.Label()))
	}
	facts := []string{"`" + r.ID + "`", "asked " + bot.FormatTime(r.CreatedAt, now, loc)}
	if r.ApprovalsRequired > 1 {
		facts = append(facts, fmt.Sprintf("%d of %d approvals", len(r.Approvals), r.ApprovalsRequired))
	}
	if !r.MFAVerifiedAt.IsZero() {
		facts = append(facts, "passed MFA")
	}
	if r.Ticket != "" {
		facts = append(facts, "ticket "+esc(truncate(r.Ticket, 100)))
	}
	line += "\n" + strings.Join(facts, " · ")
	if r.Reason != "" {
		line += "\n*Reason:* " + esc(truncate(r.Reason, 500))
	}
	return line
}

// decidedNote says what came of an approver's approval click on the inbox.
func decidedNote(r *bot.Request) string {
	if r.State == bot.StatePending {
		return fmt.Sprintf(":large_yellow_circle: Your approval of request `%s` is recorded (%d of %d).", r.ID, len(r.Approvals), r.ApprovalsRequired)
	}
	return fmt.Sprintf(":white_check_mark: Request `%s` approved.", r.ID)
}
