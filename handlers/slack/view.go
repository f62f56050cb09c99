package slack

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// Callback ids of modals and action ids of buttons and selects. Button values carry a
// request id and nothing else that is trusted.
const (
	cbActivate = "activate"
	cbDeny     = "deny"
	cbExtend   = "extend"
	cbInfo     = "info"

	actGroup        = "group" // the group select in the activation modal (dispatches)
	actAccess       = "access"
	actDuration     = "duration"
	actStart        = "start"
	actReason       = "reason"
	actTicket       = "ticket"
	actApprove      = "approve"
	actDeny         = "deny"
	actCancel       = "cancel"
	actDeactivate   = "deactivate"
	actExtend       = "extend"
	actVerifyAgain  = "verify_again" // a fresh MFA sign-in ("verify" is the link button's id)
	actRevoke       = "revoke"       // an approver ends an automatic (on-call) approval
	actLooksGood    = "looks_good"   // an approver reviews an automatic approval
	actHomeActivate = "home_activate"
)

// formMeta is the activation modal's private_metadata: when the form was first shown,
// so that a start left at its default means "now" even if the form stayed open a while.
type formMeta struct {
	Opened int64 `json:"opened"`
}

func (m formMeta) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

func parseMeta(s string) formMeta {
	var m formMeta
	_ = json.Unmarshal([]byte(s), &m)
	return m
}

// activateForm is what the activation modal shows.
type activateForm struct {
	Groups   []*bot.Group // the groups the person may activate, in policy order
	Selected *bot.Group   // nil: the first
	Opened   time.Time    // when the form was first shown (the start's default)
}

// blockIDs of the group-dependent inputs carry the group's name, so that Slack does not
// carry a choice from one group's list over to another's after views.update.
func fieldBlock(field string, g *bot.Group) string { return field + "." + g.Name }

// activateModal is the activation form. It asks only what the selected group's policy needs.
// Slack's limits for a static select: 100 options, or 100 option groups of 100 options each
// (https://api.slack.com/reference/block-kit/block-elements#static_select).
const (
	maxSelectOptions = 100
	maxOptionGroups  = 100
)

// optionGroups splits more than 100 options into groups of 100 (Slack's limit per group),
// each labelled by its first and last option, so that every eligible group can be chosen.
func optionGroups(opts []*slack.OptionBlockObject) []*slack.OptionGroupBlockObject {
	var out []*slack.OptionGroupBlockObject
	for i := 0; i < len(opts); i += maxSelectOptions {
		part := opts[i:min(i+maxSelectOptions, len(opts))]
		label := truncate(part[0].Text.Text, 35) + " … " + truncate(part[len(part)-1].Text.Text, 35)
		out = append(out, slack.NewOptionGroupBlockElement(plain(label), part...))
	}
	return out
}

func activateModal(f activateForm) slack.ModalViewRequest {
	if len(f.Groups) == 0 {
		return infoModal("Activate access", "You are not eligible for any group. Ask your administrators to add you to the policy.")
	}
	g := f.Selected
	if g == nil {
		g = f.Groups[0]
	}
	opts := make([]*slack.OptionBlockObject, 0, len(f.Groups))
	var initial *slack.OptionBlockObject
	for i, x := range f.Groups {
		if i == maxSelectOptions*maxOptionGroups {
			break
		}
		var desc *slack.TextBlockObject
		if x.Description != "" {
			desc = plain(truncate(x.Description, 75))
		}
		o := slack.NewOptionBlockObject(groupValue(x.Name), plain(truncate(x.Name, 75)), desc)
		opts = append(opts, o)
		if x == g {
			initial = o
		}
	}
	var sel *slack.SelectBlockElement
	if len(opts) <= maxSelectOptions {
		sel = slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose a group"), actGroup, opts...)
	} else {
		sel = slack.NewOptionsGroupSelectBlockElement(slack.OptTypeStatic, plain("Choose a group"), actGroup, optionGroups(opts)...)
	}
	if initial != nil {
		sel = sel.WithInitialOption(initial)
	}
	blocks := []slack.Block{
		slack.NewInputBlock(actGroup, plain("Group"), nil, sel).WithDispatchAction(true),
	}
	if g.Description != "" {
		blocks = append(blocks, contextLine(esc(truncate(g.Description, 300))))
	}
	if len(g.Access) > 1 {
		var aopts []*slack.OptionBlockObject
		for _, a := range g.Access {
			aopts = append(aopts, slack.NewOptionBlockObject(string(a), plain(accessLabel(a)), nil))
		}
		radio := slack.NewRadioButtonsBlockElement(actAccess, aopts...)
		radio.InitialOption = aopts[0]
		blocks = append(blocks, slack.NewInputBlock(fieldBlock(actAccess, g), plain("Access"), nil, radio))
	} else {
		blocks = append(blocks, contextLine("Access: *"+string(g.Access[0])+"*"))
	}
	var dopts []*slack.OptionBlockObject
	var dinit *slack.OptionBlockObject
	for _, d := range durationChoices(g) {
		o := slack.NewOptionBlockObject(strconv.FormatInt(int64(d/time.Second), 10), plain(bot.FormatDuration(d)), nil)
		dopts = append(dopts, o)
		if d == g.DefaultDuration {
			dinit = o
		}
	}
	dsel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("How long"), actDuration, dopts...)
	if dinit != nil {
		dsel = dsel.WithInitialOption(dinit)
	}
	blocks = append(blocks, slack.NewInputBlock(fieldBlock(actDuration, g), plain("Duration"),
		plain(fmt.Sprintf("Between %s and %s.", bot.FormatDuration(g.MinDuration), bot.FormatDuration(g.MaxDuration))), dsel))
	start := slack.NewDateTimePickerBlockElement(actStart)
	start.InitialDateTime = f.Opened.Truncate(time.Minute).Unix()
	blocks = append(blocks, slack.NewInputBlock(actStart, plain("Start"),
		plain("Leave it as it is to start as soon as possible. The duration counts from the actual start."), start).WithOptional(true))
	reason := slack.NewPlainTextInputBlockElement(plain("Why do you need access?"), actReason).
		WithMultiline(true).WithMaxLength(bot.MaxReasonLen)
	blocks = append(blocks, slack.NewInputBlock(actReason, plain("Reason"), nil, reason).WithOptional(!g.RequireJustification))
	if g.RequireTicket {
		ticket := slack.NewPlainTextInputBlockElement(plain("INC-1234"), actTicket).WithMaxLength(bot.MaxTicketLen)
		blocks = append(blocks, slack.NewInputBlock(actTicket, plain("Ticket"), nil, ticket))
	}
	blocks = append(blocks, contextLine(approvalLine(g)))
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      cbActivate,
		Title:           plain("Activate access"),
		Submit:          plain("Request"),
		Close:           plain("Cancel"),
		Blocks:          slack.Blocks{BlockSet: blocks},
		PrivateMetadata: formMeta{Opened: f.Opened.Unix()}.String(),
	}
}

func accessLabel(a bot.Access) string {
	if a == bot.Owner {
		return "owner (manage the group)"
	}
	return "member (use the group's access)"
}

// approvalLine says who must approve, from the policy, for the form.
func approvalLine(g *bot.Group) string {
	mfa := ""
	if g.RequireMFA {
		mfa = "First you verify with Microsoft (MFA). "
	}
	if !g.RequireApproval {
		return mfa + "No approval needed: access is granted at the start time."
	}
	n := "an approval"
	if g.ApprovalsRequired > 1 {
		n = fmt.Sprintf("%d approvals", g.ApprovalsRequired)
	}
	return mfa + "Needs " + n + " from " + approverList(g) + "."
}

// approverList names a group's approvers for people.
func approverList(g *bot.Group) string {
	if len(g.Approvers) == 0 {
		return "nobody"
	}
	return esc(bot.ApproverWords(g.Approvers))
}

var durationSteps = []time.Duration{
	5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, 45 * time.Minute,
	time.Hour, 90 * time.Minute, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour, 6 * time.Hour,
	8 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 72 * time.Hour, 7 * 24 * time.Hour,
}

// durationChoices are the durations offered for g: common steps within its bounds, plus
// its minimum, default and maximum.
func durationChoices(g *bot.Group) []time.Duration {
	return choicesBetween(g.MinDuration, g.MaxDuration, g.DefaultDuration)
}

func choicesBetween(lo, hi, def time.Duration) []time.Duration {
	seen := map[time.Duration]bool{}
	var out []time.Duration
	add := func(d time.Duration) {
		if d >= lo && d <= hi && d > 0 && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	add(lo)
	add(def)
	add(hi)
	for _, d := range durationSteps {
		add(d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	if len(out) > 100 {
		out = out[:100]
	}
	return out
}

// loadingModal is opened at once (the trigger lasts 3 s) while the slow part runs.
func loadingModal() slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		CallbackID: cbInfo,
		Title:      plain("Activate access"),
		Close:      plain("Close"),
		Blocks:     slack.Blocks{BlockSet: []slack.Block{section(":hourglass_flowing_sand: Looking up the groups you may activate…")}},
	}
}

// infoModal shows one message and no form.
func infoModal(title, text string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		CallbackID: cbInfo,
		Title:      plain(truncate(title, 24)),
		Close:      plain("Close"),
		Blocks:     slack.Blocks{BlockSet: []slack.Block{section(text)}},
	}
}

// submittedModal replaces the form once the engine accepted the request.
func submittedModal(r *bot.Request, g *bot.Group, now time.Time, loc *time.Location) slack.ModalViewRequest {
	text := fmt.Sprintf("Request `%s`: *%s* %s.", r.ID, esc(r.What()), esc(r.When(now, loc)))
	if r.State == bot.StateVerifying {
		text += "\nNext: verify with Microsoft (MFA); the link is on its way in a direct message."
	} else if r.State == bot.StatePending && g != nil {
		text += "\nWaiting for approval by " + approverList(g) + "."
	} else {
		text += "\nNo approval needed."
	}
	text += "\nYou will get a direct message as it moves on."
	return infoModal("Request submitted", text)
}

// denyModal asks the approver for a reason. r may be nil when it could not be read in time.
func denyModal(id string, r *bot.Request, now time.Time, loc *time.Location) slack.ModalViewRequest {
	var blocks []slack.Block
	if r != nil {
		blocks = append(blocks, section(fmt.Sprintf("Deny %s's request `%s` for *%s*?", "*"+esc(r.Requester.Display())+"*", r.ID, esc(r.What()))))
	} else {
		blocks = append(blocks, section(fmt.Sprintf("Deny request `%s`?", esc(id))))
	}
	reason := slack.NewPlainTextInputBlockElement(plain("Tell the requester why (optional)"), actReason).
		WithMultiline(true).WithMaxLength(bot.MaxReasonLen)
	blocks = append(blocks, slack.NewInputBlock(actReason, plain("Reason"), nil, reason).WithOptional(true))
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: cbDeny, Title: plain("Deny request"),
		Submit: plain("Deny"), Close: plain("Back"),
		Blocks: slack.Blocks{BlockSet: blocks}, PrivateMetadata: id,
	}
}

// extension is what the engine leaves an extension of a grant: the grant's group, the room
// left under its max_duration, and what is asked for when no duration is typed.
type extension struct {
	Group         *bot.Group
	Room, Default time.Duration
}

// extendModal asks for how much longer. r and ext may be nil when they could not be read in time.
func extendModal(id string, r *bot.Request, ext *extension, now time.Time, loc *time.Location) slack.ModalViewRequest {
	var blocks []slack.Block
	hint := "e.g. 30m or 1h"
	initial := ""
	if r != nil {
		blocks = append(blocks, section(fmt.Sprintf("Request `%s`: *%s*, %s.", r.ID, esc(r.What()), esc(r.When(now, loc)))))
	}
	if ext != nil {
		if ext.Room >= time.Minute {
			hint = fmt.Sprintf("At most %s more (%s in total for %s).", bot.FormatDuration(ext.Room), bot.FormatDuration(ext.Group.MaxDuration), ext.Group.Name)
		}
		initial = bot.FormatDuration(ext.Default)
	}
	dur := slack.NewPlainTextInputBlockElement(plain("1h"), actDuration).WithMaxLength(20)
	if initial != "" {
		dur = dur.WithInitialValue(initial)
	}
	reason := slack.NewPlainTextInputBlockElement(plain("Leave empty to keep the original reason"), actReason).
		WithMultiline(true).WithMaxLength(bot.MaxReasonLen)
	blocks = append(blocks,
		slack.NewInputBlock(actDuration, plain("How much longer"), plain(hint), dur),
		slack.NewInputBlock(actReason, plain("Reason"), nil, reason).WithOptional(true))
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: cbExtend, Title: plain("Extend access"),
		Submit: plain("Extend"), Close: plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: blocks}, PrivateMetadata: id,
	}
}
