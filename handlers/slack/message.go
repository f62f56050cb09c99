package slack

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// msg is a rendered Slack message: fallback text (notifications, screen readers) and blocks.
type msg struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

// people maps directory user ids to Slack user ids, for mentions.
type people map[string]string

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,30}$`)

// mention names a person: a Slack mention when their Slack id is known, else their name.
func (p people) mention(u bot.User) string {
	if id := p[u.ID]; slackUserID.MatchString(id) {
		return "<@" + id + ">"
	}
	return "*" + esc(u.Display()) + "*"
}

// plainName names a person in fallback text.
func plainName(u bot.User) string { return esc(u.Display()) }

// approvalView is what the approvers' message shows.
type approvalView struct {
	Req     *bot.Request
	Parent  *bot.Request // for an extension, the grant it extends (may be nil)
	Group   *bot.Group   // may be nil when the group left the policy
	Actions []bot.Action // what the engine offers an approver (bot.Engine.ApproverActions)
	Now     time.Time
	Loc     *time.Location
	Who     people
}

// approvalMessage is the approvers' message: who, what, when, how long, reason, ticket,
// the state and the buttons the engine offers an approver (Approve and Deny while it is
// pending). It is updated in place as the request moves on.
func approvalMessage(v approvalView) msg {
	r := v.Req
	who := v.Who.mention(r.Requester)
	var head string
	if r.Kind == bot.KindExtend {
		head = fmt.Sprintf(":hourglass: %s asks for *%s more* as *%s* of *%s* (extends request `%s`)",
			who, bot.FormatDuration(r.Duration), r.Access, esc(r.Group), esc(r.ParentID))
	} else {
		head = fmt.Sprintf(":key: %s asks for *%s* of *%s*", who, r.Access, esc(r.Group))
	}
	if r.Requester.Email != "" && v.Who[r.Requester.ID] == "" {
		head += " (" + esc(r.Requester.Email) + ")"
	}
	fields := []*slack.TextBlockObject{
		md("*Group*\n" + esc(r.Group)),
		md("*Access*\n" + string(r.Access)),
		md("*Duration*\n" + bot.FormatDuration(r.Duration)),
	}
	if when := whenText(r, v.Now, v.Loc); when != "" {
		fields = append(fields, md("*When*\n"+esc(when)))
	}
	if r.Ticket != "" {
		fields = append(fields, md("*Ticket*\n"+esc(r.Ticket)))
	}
	if !r.MFAVerifiedAt.IsZero() {
		fields = append(fields, md("*MFA*\npassed at "+bot.FormatTime(r.MFAVerifiedAt, v.Now, v.Loc)))
	}
	blocks := []slack.Block{
		section(head),
		slack.NewSectionBlock(nil, fields, nil),
	}
	if r.Reason != "" {
		blocks = append(blocks, section("*Reason*\n"+esc(truncate(r.Reason, 500))))
	}
	status := statusLine(r, v.Parent, v.Now, v.Loc, v.Who)
	blocks = append(blocks, section(status))
	ctx := fmt.Sprintf("Request `%s` · asked %s", r.ID, bot.FormatTime(r.CreatedAt, v.Now, v.Loc))
	if r.State == bot.StatePending && v.Group != nil {
		ctx += " · approvers: " + approverList(v.Group)
	}
	blocks = append(blocks, contextLine(ctx))
	if bs := actionButtons(r.ID, v.Actions); len(bs) > 0 {
		blocks = append(blocks, slack.NewActionBlock("decide", bs...))
	}
	text := fmt.Sprintf("%s asks for %s (request %s): %s", plainName(r.Requester), esc(r.What()), r.ID, stripMarks(status))
	return msg{Text: text, Blocks: blocks}
}

func whenText(r *bot.Request, now time.Time, loc *time.Location) string {
	if r.Kind == bot.KindExtend {
		return ""
	}
	if r.State == bot.StatePending || r.State == bot.StateScheduled {
		return r.When(now, loc)
	}
	if !r.ActivatedAt.IsZero() {
		return "started " + bot.FormatTime(r.ActivatedAt, now, loc)
	}
	return r.When(now, loc)
}

// statusLine is where the request stands, and who moved it there.
func statusLine(r *bot.Request, parent *bot.Request, now time.Time, loc *time.Location, who people) string {
	approvedBy := func() string {
		names := make([]string, len(r.Approvals))
		for i, a := range r.Approvals {
			names[i] = who.mention(a.By)
		}
		return strings.Join(names, ", ")
	}
	switch r.State {
	case bot.StateVerifying:
		return ":lock: *Waiting for the requester to verify with Microsoft (MFA).*"
	case bot.StatePending:
		if len(r.Approvals) > 0 {
			return fmt.Sprintf(":large_yellow_circle: *%d of %d approvals* so far (%s); waiting for %d more.",
				len(r.Approvals), r.ApprovalsRequired, approvedBy(), r.ApprovalsRequired-len(r.Approvals))
		}
		if r.ApprovalsRequired > 1 {
			return fmt.Sprintf(":large_yellow_circle: *Waiting for %d approvals.*", r.ApprovalsRequired)
		}
		if r.OnCallNote != "" {
			return ":large_yellow_circle: *Waiting for approval* (" + esc(r.OnCallNote) + ")."
		}
		return ":large_yellow_circle: *Waiting for approval.*"
	case bot.StateScheduled:
		if r.AutoApproval != nil {
			return ":white_check_mark: *Approved automatically* by " + esc(r.AutoApproval.Words()) + "; starts " + esc(strings.TrimPrefix(r.When(now, loc), "from ")) + "." + reviewText(r, who)
		}
		if len(r.Approvals) == 0 {
			return ":white_check_mark: *Approved* (no approval needed); starts " + esc(strings.TrimPrefix(r.When(now, loc), "from ")) + "."
		}
		return ":white_check_mark: *Approved* by " + approvedBy() + "; starts " + esc(strings.TrimPrefix(r.When(now, loc), "from ")) + "."
	case bot.StateActive:
		s := ":large_green_circle: *Active* until " + bot.FormatTime(r.EndsAt, now, loc) + "."
		if len(r.Approvals) > 0 {
			s += " Approved by " + approvedBy() + "."
		} else if r.AutoApproval != nil {
			s += " Approved automatically by " + esc(r.AutoApproval.Words()) + "."
		}
		return s + reviewText(r, who)
	case bot.StateEnded:
		return ":white_circle: *Ended* " + bot.FormatTime(r.EndedAt, now, loc) + " (" + esc(r.EndReason) + ")." + reviewText(r, who)
	case bot.StateDenied:
		s := ":x: *Denied*"
		if r.Denial != nil {
			s += " by " + who.mention(r.Denial.By)
		}
		if r.DenyReason != "" {
			s += ": " + esc(truncate(r.DenyReason, 500))
		}
		return s + "."
	case bot.StateCanceled:
		s := ":no_entry_sign: *Canceled*"
		if r.EndedBy != nil {
			s += " by " + who.mention(r.EndedBy.By)
		} else if r.EndReason != "" {
			s += ": " + esc(r.EndReason)
		}
		return s + "."
	case bot.StateTimedOut:
		return ":hourglass: *Timed out*: nobody decided in time."
	case bot.StateFailed:
		return ":warning: *Failed*: " + esc(failReason(r)) + "."
	case bot.StateApplied:
		s := ":white_check_mark: *Approved*"
		if len(r.Approvals) > 0 {
			s += " by " + approvedBy()
		}
		s += "; request `" + esc(r.ParentID) + "` was extended"
		if parent != nil && parent.ID == r.ParentID {
			s += " until " + bot.FormatTime(parent.EndsAt, now, loc)
		}
		return s + "."
	}
	return esc(r.State.Label())
}

// reviewText is where an automatic approval's review stands (bot.ReviewWords), with the
// reviewer mentioned.
func reviewText(r *bot.Request, who people) string { return bot.ReviewWords(r, who.mention) }

// stripMarks turns a status line into fallback text: no emoji codes, no bold marks.
func stripMarks(s string) string {
	if i := strings.Index(s, ": "); i > 0 && strings.HasPrefix(s, ":") && !strings.Contains(s[:i], " ") {
		s = s[i+2:]
	}
	return strings.ReplaceAll(s, "*", "")
}

// actionButtons are the buttons of the actions the engine offers, in its order.
func actionButtons(id string, acts []bot.Action) []slack.BlockElement {
	var bs []slack.BlockElement
	for _, a := range acts {
		switch a {
		case bot.ActApprove:
			bs = append(bs, button(actApprove, id, "Approve", slack.StylePrimary))
		case bot.ActDeny:
			bs = append(bs, button(actDeny, id, "Deny", slack.StyleDanger))
		case bot.ActVerify:
			bs = append(bs, button(actVerifyAgain, id, "Verify again", slack.StylePrimary))
		case bot.ActExtend:
			bs = append(bs, button(actExtend, id, "Extend", slack.StylePrimary))
		case bot.ActDeactivate:
			bs = append(bs, button(actDeactivate, id, "Deactivate now", slack.StyleDanger))
		case bot.ActCancel:
			bs = append(bs, button(actCancel, id, "Cancel request", ""))
		case bot.ActRevoke:
			b := button(actRevoke, id, "Revoke", slack.StyleDanger)
			b.Confirm = slack.NewConfirmationBlockObject(plain("Revoke the automatic approval?"),
				md("The access ends now (or never starts), and the requester is told."), plain("Revoke"), plain("Keep it"))
			bs = append(bs, b)
		case bot.ActLooksGood:
			bs = append(bs, button(actLooksGood, id, "Looks good", slack.StylePrimary))
		}
	}
	return bs
}

// requesterMessage is the DM that tells the requester what happened, with the buttons of
// what the engine offers them now (acts); ok is false for events the requester does not
// hear about.
func requesterMessage(ev bot.Event, g *bot.Group, acts []bot.Action, now time.Time, loc *time.Location, who people) (msg, bool) {
	r := ev.Request
	id := "`" + r.ID + "`"
	by := ""
	if ev.Actor != nil {
		by = who.mention(*ev.Actor)
	}
	var text string
	switch ev.Type {
	case bot.EvSubmitted:
		switch {
		case r.State == bot.StatePending && r.Kind == bot.KindExtend:
			text = fmt.Sprintf(":hourglass: Extension %s (*%s more* for request `%s`) is waiting for approval", id, bot.FormatDuration(r.Duration), esc(r.ParentID))
		case r.State == bot.StatePending:
			text = fmt.Sprintf(":hourglass: Request %s (*%s*, %s) is waiting for approval", id, esc(r.What()), esc(r.When(now, loc)))
		case r.State == bot.StateScheduled && r.AutoApproval != nil:
			text = fmt.Sprintf(":white_check_mark: Request %s (*%s*) was approved automatically: you are on call (%s); it starts %s. The approvers see it and review it afterwards.",
				id, esc(r.What()), esc(r.AutoApproval.Source()), esc(strings.TrimPrefix(r.When(now, loc), "from ")))
		case r.State == bot.StateScheduled:
			text = fmt.Sprintf(":white_check_mark: Request %s (*%s*) needs no approval; it starts %s.", id, esc(r.What()), esc(strings.TrimPrefix(r.When(now, loc), "from ")))
		default:
			return msg{}, false // an extension applied at once: the "extended" message says it
		}
		if r.State == bot.StatePending {
			if g != nil {
				text += " by " + approverNames(g.ApproversFor(r.Requester))
			}
			text += "."
			if r.OnCallNote != "" {
				text += " (" + esc(bot.Capitalize(r.OnCallNote)) + ".)"
			}
		}
	case bot.EvApprovalAdded:
		text = fmt.Sprintf(":large_yellow_circle: %s approved request %s (%d of %d); waiting for %d more.",
			by, id, len(r.Approvals), r.ApprovalsRequired, r.ApprovalsRequired-len(r.Approvals))
	case bot.EvApproved:
		if r.Kind == bot.KindExtend {
			return msg{}, false // the "extended" message follows
		}
		if by == "" {
			by = "policy (no approval needed)"
		}
		text = fmt.Sprintf(":white_check_mark: Request %s (*%s*) was approved by %s; it starts %s.", id, esc(r.What()), by, esc(strings.TrimPrefix(r.When(now, loc), "from ")))
	case bot.EvDenied:
		text = fmt.Sprintf(":x: Request %s (*%s*) was denied", id, esc(r.What()))
		if by != "" {
			text += " by " + by
		}
		text += "."
		if r.DenyReason != "" {
			text += "\n*Reason:* " + esc(truncate(r.DenyReason, 1000))
		}
	case bot.EvCanceled:
		text = fmt.Sprintf(":no_entry_sign: Request %s (*%s*) was canceled", id, esc(r.What()))
		if ev.Actor != nil && ev.Actor.ID != r.Requester.ID {
			text += " by " + by
		} else if ev.Actor == nil && r.EndReason != "" {
			text += ": " + esc(r.EndReason)
		}
		text += "."
	case bot.EvTimedOut:
		text = fmt.Sprintf(":hourglass: Request %s (*%s*) timed out: nobody decided in time. Use `/activate` again if you still need it.", id, esc(r.What()))
	case bot.EvActivated:
		text = fmt.Sprintf(":large_green_circle: You are now %s until %s (request %s).\n_%s_",
			holds(r.Access, r.Group), bot.FormatTime(r.EndsAt, now, loc), id, bot.CachingCaveat)
		if ev.Detail != "" { // the window was changed at the start (PIM's 5-minute minimum)
			text += "\n" + esc(bot.Capitalize(ev.Detail)) + "."
		}
	case bot.EvReminder:
		text = fmt.Sprintf(":alarm_clock: Your access as *%s* of *%s* ends at %s (request %s). Extend it if you still need it.",
			r.Access, esc(r.Group), bot.FormatTime(r.EndsAt, now, loc), id)
	case bot.EvEnded:
		text = fmt.Sprintf(":white_circle: Your access as *%s* of *%s* has ended (%s; request %s).", r.Access, esc(r.Group), esc(r.EndReason), id)
	case bot.EvExtended:
		text = fmt.Sprintf(":arrow_forward: Request %s now ends at %s (extended %s", id, bot.FormatTime(r.EndsAt, now, loc), esc(ev.Detail))
		if by != "" {
			text += ", approved by " + by
		}
		text += ")."
	case bot.EvFailed:
		text = fmt.Sprintf(":warning: Request %s (*%s*) failed: %s. Nothing was granted.", id, esc(r.What()), esc(failReason(r)))
	case bot.EvDelayed:
		text = fmt.Sprintf(":warning: Request %s: the directory is not answering, so your access is delayed; pimbot keeps trying.", id)
	case bot.EvRemovalFailing:
		text = fmt.Sprintf(":warning: Request %s: removing your access is delayed by a directory error; pimbot keeps retrying.", id)
	default:
		return msg{}, false
	}
	blocks := []slack.Block{section(text)}
	if bs := actionButtons(r.ID, acts); len(bs) > 0 {
		blocks = append(blocks, slack.NewActionBlock("request:"+r.ID, bs...))
	}
	return msg{Text: stripMarks(text), Blocks: blocks}, true
}

// mfaMessage asks the requester to verify with Microsoft before the request goes on, with
// the link and the buttons of what the engine offers them (acts: verify again, cancel).
// problem is set when the verification could not start.
func mfaMessage(r *bot.Request, ch bot.Challenge, problem string, acts []bot.Action, now time.Time) msg {
	id := "`" + r.ID + "`"
	offered := actionButtons(r.ID, acts)
	if problem != "" {
		text := fmt.Sprintf(":warning: Request %s needs MFA first, but the verification cannot start: %s", id, esc(problem))
		blocks := []slack.Block{section(text)}
		if len(offered) > 0 {
			blocks = append(blocks, slack.NewActionBlock("request:"+r.ID, offered...))
		}
		return msg{Text: stripMarks(text), Blocks: blocks}
	}
	within := ""
	if !ch.Expires.IsZero() && ch.Expires.After(now) {
		within = " within " + bot.FormatDuration(ch.Expires.Sub(now).Round(time.Minute))
	}
	var text string
	if ch.UserCode != "" {
		text = fmt.Sprintf(":lock: Request %s: *%s* needs MFA. Open the Microsoft sign-in page and enter the code `%s`%s; the request goes on to its approvers after that.",
			id, esc(r.Group), esc(ch.UserCode), within)
	} else {
		text = fmt.Sprintf(":lock: Request %s: *%s* needs MFA. Verify with Microsoft%s; the request goes on to its approvers after that.", id, esc(r.Group), within)
	}
	var buttons []slack.BlockElement
	if strings.HasPrefix(ch.URL, "https://") && len(ch.URL) <= 3000 {
		buttons = append(buttons, button("verify", r.ID, "Verify with Microsoft", slack.StylePrimary).WithURL(ch.URL))
		for _, b := range offered { // the link is the one primary button
			if bb, ok := b.(*slack.ButtonBlockElement); ok && bb.ActionID == actVerifyAgain {
				bb.Style = ""
			}
		}
	}
	blocks := []slack.Block{section(text)}
	if buttons = append(buttons, offered...); len(buttons) > 0 {
		blocks = append(blocks, slack.NewActionBlock("request:"+r.ID, buttons...))
	}
	if slices.Contains(acts, bot.ActVerify) {
		blocks = append(blocks, contextLine("If the sign-in fails or the code runs out, press *Verify again* for a fresh one."))
	}
	return msg{Text: stripMarks(text), Blocks: blocks}
}

// alertMessage tells approvers that something needs a person (a removal keeps failing,
// the directory refused a grant).
// failReason is why a request failed, for people: the engine's reason (the directory refused
// the grant; the group left the policy; the requester is no longer eligible; ...).
func failReason(r *bot.Request) string {
	if r.EndReason != "" {
		return r.EndReason
	}
	return "the directory refused the grant"
}

func alertMessage(ev bot.Event, who people) msg {
	r := ev.Request
	var text string
	switch ev.Type {
	case bot.EvReviewDue:
		text = fmt.Sprintf(":eyes: *Not reviewed yet*: %s got *%s* of *%s* approved automatically by %s (request `%s`). An approver should look at it: *Looks good* or *Revoke* on the request's message, or `/activate pending`.",
			who.mention(r.Requester), r.Access, esc(r.Group), esc(r.AutoApproval.Words()), r.ID)
	case bot.EvRemovalFailing:
		text = fmt.Sprintf(":rotating_light: *Removal keeps failing*: %s is still *%s* of *%s* (request `%s`); pimbot keeps retrying. %s",
			who.mention(r.Requester), r.Access, esc(r.Group), r.ID, esc(truncate(ev.Detail, 500)))
	default:
		text = strings.TrimSpace(fmt.Sprintf(":warning: *Grant failed*: %s was not made *%s* of *%s* (request `%s`): %s. %s",
			who.mention(r.Requester), r.Access, esc(r.Group), r.ID, esc(failReason(r)), esc(truncate(r.LastError, 500))))
	}
	return msg{Text: stripMarks(text), Blocks: []slack.Block{section(text)}}
}

// statusBlocks lists a person's requests: the open ones with the buttons of what the engine
// offers them (acts, by request id), then the recent finished ones.
func statusBlocks(rs []*bot.Request, acts map[string][]bot.Action, now time.Time, loc *time.Location) []slack.Block {
	if len(rs) == 0 {
		return []slack.Block{section("You have no requests. Use `/activate` to ask for access.")}
	}
	var open, done []*bot.Request
	for _, r := range rs {
		if r.State.Terminal() {
			done = append(done, r)
		} else {
			open = append(open, r)
		}
	}
	var blocks []slack.Block
	if len(open) == 0 {
		blocks = append(blocks, section("You have no open requests or active grants."))
	}
	for _, r := range open {
		blocks = append(blocks, section(requestLine(r, now, loc)))
		if bs := actionButtons(r.ID, acts[r.ID]); len(bs) > 0 {
			blocks = append(blocks, slack.NewActionBlock("request:"+r.ID, bs...))
		}
	}
	if len(done) > 0 {
		lines := make([]string, 0, len(done))
		for i, r := range done {
			if i == 10 {
				break
			}
			lines = append(lines, requestLine(r, now, loc))
		}
		blocks = append(blocks, contextLine("*Recent:*\n"+strings.Join(lines, "\n")))
	}
	return blocks
}

// requestLine is one request in a list: what, id, state and times.
func requestLine(r *bot.Request, now time.Time, loc *time.Location) string {
	line := fmt.Sprintf("*%s* · `%s` · %s", esc(r.Holding()), r.ID, esc(r.StatusLabel(now)))
	switch r.State {
	case bot.StateActive:
		line += " until " + bot.FormatTime(r.EndsAt, now, loc)
	case bot.StateVerifying, bot.StatePending, bot.StateScheduled:
		if w := r.When(now, loc); w != "" {
			line += " · " + esc(w)
		}
	case bot.StateDenied:
		line = fmt.Sprintf("*%s* · `%s` · %s", esc(r.Holding()), r.ID, esc(r.DeniedWords()))
	default:
		if !r.EndedAt.IsZero() {
			line += " " + bot.FormatTime(r.EndedAt, now, loc)
		}
	}
	return line
}

// holds is "a *member* of *group*" in the requester's sentences (bot.HoldsWords, in mrkdwn).
func holds(a bot.Access, group string) string {
	article, _, _ := strings.Cut(bot.HoldsWords(a, ""), " ")
	return article + " *" + string(a) + "* of *" + esc(group) + "*"
}

// helpText explains the commands.
const helpText = "*pimbot* gives you just-in-time access to Entra ID groups.\n" +
	"• `/activate` opens the form: group, member or owner, reason, start and duration.\n" +
	"• `/activate <group> [member|owner] [for <duration>] [at <time>] [ticket <id>] [<reason...>]` asks at once, e.g. `/activate prod-db-admins for 2h fixing the outage`.\n" +
	"• `/activate status` (or `status` here) lists your requests and active grants, with buttons to cancel, extend or deactivate.\n" +
	"• `/activate pending` (or `pending` here) lists the requests waiting for your approval, with *Approve* and *Deny* (approvers).\n" +
	"• `/activate verify <id>` gives a fresh Microsoft sign-in (link or code) for your request waiting for MFA, after a sign-in failed or ran out.\n" +
	"• `/activate unlink` undoes the link between your Slack account and your Microsoft account, where sign-in linking is on.\n" +
	"• The Home tab lists the groups you may activate, and what waits for your approval.\n" +
	"Approvers get a message with *Approve* and *Deny*; you get a direct message at each step."

const hintText = "I did not understand that. Try `status`, `help`, or `/activate` to ask for access."

// approverNames names the approvers shown to a requester (bot.Group.ApproversFor), as
// approverList does for a whole group.
func approverNames(entries []string) string {
	if len(entries) == 0 {
		return "the approvers"
	}
	return approverList(&bot.Group{Approvers: entries})
}
