package teams

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/pimbot/pimbot/bot"
)

// notice is a short message card: the state as a label, a title of our own words (ids and
// states), paragraphs that may hold anything people typed, and optional buttons.
type notice struct {
	Label   string // where the request stands, in a few words ("Active"); empty: no label
	Tone    string // the label's tone (its background; text is never coloured)
	Title   string
	Lines   []string
	Actions []any
}

// NoticeCard renders a notice.
func noticeCard(n notice) Card {
	var body []any
	if n.Label != "" {
		body = append(body, stateLabel(n.Label, n.Tone))
	}
	body = append(body, title(n.Title))
	for _, l := range n.Lines {
		if l != "" {
			body = append(body, para(l))
		}
	}
	return newCard(body, n.Actions)
}

// RequesterNotice is what the requester is told in their personal chat about an event, with
// the buttons of what the engine offers them (o). ok=false: nothing to tell them.
func RequesterNotice(v View, ev bot.Event, g *bot.Group, o Offer) (Card, string, bool) {
	n, ok := requesterNotice(v, ev, g)
	if !ok {
		return nil, "", false
	}
	n.Actions = actionButtons(ev.Request.ID, o)
	return noticeCard(n), n.Title, true
}

func requesterNotice(v View, ev bot.Event, g *bot.Group) (notice, bool) {
	r := ev.Request
	by := "policy (no approval needed)"
	if ev.Actor != nil {
		by = ev.Actor.Display()
	}
	noun := "Request "
	if r.Kind == bot.KindExtend {
		noun = "Extension "
	}
	switch ev.Type {
	case bot.EvSubmitted:
		if r.State != bot.StatePending {
			return notice{}, false // the reply to the submit already said so
		}
		lines := []string{whatWhen(v, r), "Approvers: " + approverWords(g.ApproversFor(r.Requester)) + "."}
		if r.OnCallNote != "" {
			lines = append(lines, bot.Capitalize(r.OnCallNote)+".")
		}
		return notice{Label: "Pending approval", Tone: toneWarning, Title: noun + r.ID + " is waiting for approval", Lines: lines}, true
	case bot.EvApprovalAdded:
		return notice{Label: fmt.Sprintf("Pending approval (%d of %d)", len(r.Approvals), r.ApprovalsRequired), Tone: toneWarning, Title: noun + r.ID + " has an approval",
			Lines: []string{fmt.Sprintf("%s approved it (%d of %d); waiting for %d more.", by, len(r.Approvals), r.ApprovalsRequired, r.ApprovalsRequired-len(r.Approvals))}}, true
	case bot.EvApproved:
		if r.Kind == bot.KindExtend {
			return notice{Label: "Approved", Tone: toneGood, Title: noun + r.ID + " was approved",
				Lines: []string{"Approved by " + by + "."}}, true
		}
		return notice{Label: "Approved", Tone: toneGood, Title: noun + r.ID + " was approved",
			Lines: []string{"Approved by " + by + ". " + r.What() + ", starting " + strings.TrimPrefix(r.When(v.Now, v.loc()), "from ") + "."}}, true
	case bot.EvDenied:
		lines := []string{"Denied by " + by + "."}
		if r.DenyReason != "" {
			lines = append(lines, "Reason: "+r.DenyReason)
		}
		return notice{Label: "Denied", Tone: toneAttention, Title: noun + r.ID + " was denied", Lines: lines}, true
	case bot.EvCanceled:
		return notice{Label: "Canceled", Title: noun + r.ID + " was canceled", Lines: []string{bot.Capitalize(r.EndReason) + "."}}, true
	case bot.EvTimedOut:
		return notice{Label: "Timed out", Title: noun + r.ID + " timed out",
			Lines: []string{"Nobody decided in time. Ask again if you still need it."}}, true
	case bot.EvActivated:
		return notice{Label: "Active", Tone: toneGood, Title: "Request " + r.ID + " is active",
			Lines: []string{fmt.Sprintf("You are %s until %s.", bot.HoldsWords(r.Access, r.Group), v.time(r.EndsAt)), detailLine(ev.Detail), bot.CachingCaveat}}, true
	case bot.EvReminder:
		return notice{Label: "Ending soon", Tone: toneWarning, Title: "Request " + r.ID + " ends at " + v.time(r.EndsAt),
			Lines: []string{fmt.Sprintf("Your %s access to %s ends soon. To keep it, extend it.", r.Access, r.Group)}}, true
	case bot.EvEnded:
		return notice{Label: "Ended", Title: "Request " + r.ID + " ended",
			Lines: []string{fmt.Sprintf("You are no longer %s (%s).", bot.HoldsWords(r.Access, r.Group), r.EndReason)}}, true
	case bot.EvExtended:
		return notice{Label: "Extended", Tone: toneGood, Title: "Request " + r.ID + " now ends at " + v.time(r.EndsAt),
			Lines: []string{"Extended " + ev.Detail + "."}}, true
	case bot.EvFailed:
		return notice{Label: "Failed", Tone: toneAttention, Title: noun + r.ID + " failed",
			Lines: []string{failLine(r)}}, true
	case bot.EvDelayed:
		return notice{Label: "Delayed", Tone: toneWarning, Title: noun + r.ID + " is delayed",
			Lines: []string{"The directory is not answering; activation is delayed and pimbot keeps trying."}}, true
	case bot.EvRemovalFailing:
		return notice{Label: "Removal delayed", Tone: toneWarning, Title: "Removing request " + r.ID + " is delayed",
			Lines: []string{"Removing your access is delayed by a directory error; pimbot keeps retrying."}}, true
	}
	return notice{}, false
}

// MFACard asks the requester to verify with Microsoft before the request goes on, with the
// buttons of what the engine offers them (acts: verify again, cancel). The link is the
// verifier's own (an Entra sign-in, or the device-login page with a code).
func MFACard(v View, r *bot.Request, ch bot.Challenge, acts []bot.Action) Card {
	n := notice{Label: "MFA required", Tone: toneWarning, Title: "Request " + r.ID + ": verify with Microsoft"}
	if r.Kind == bot.KindExtend {
		n.Title = "Extension " + r.ID + ": verify with Microsoft"
	}
	within := ""
	if !ch.Expires.IsZero() {
		within = " within " + bot.FormatDuration(ch.Expires.Sub(v.Now).Round(time.Minute))
	}
	if ch.UserCode != "" {
		n.Lines = []string{r.Group + " needs MFA. Open the Microsoft sign-in page and enter this code" + within + ":", ch.UserCode}
	} else {
		n.Lines = []string{r.Group + " needs MFA. Sign in with Microsoft" + within + "; the request goes on to its approvers after that."}
	}
	if slices.Contains(acts, bot.ActVerify) {
		n.Lines = append(n.Lines, "If the sign-in fails or the code runs out, choose Verify again for a fresh one.")
	}
	if u, err := url.Parse(ch.URL); err == nil && u.Scheme == "https" {
		// The step everyone takes next: the positive (primary) button.
		n.Actions = []any{map[string]any{"type": "Action.OpenUrl", "title": "Verify with Microsoft", "url": ch.URL, "style": "positive"}}
	}
	n.Actions = append(n.Actions, actionButtons(r.ID, Offer{Actions: acts})...)
	return noticeCard(n)
}

// AlertCard is posted in the approval channel when removing a grant keeps failing.
func AlertCard(v View, ev bot.Event) Card {
	r := ev.Request
	if ev.Type == bot.EvReviewDue && r.AutoApproval != nil {
		return noticeCard(notice{Label: "Not reviewed", Tone: toneWarning, Title: "Automatic approval of request " + r.ID + " is not reviewed yet",
			Lines: []string{fmt.Sprintf("%s (%s) got %s of %s approved automatically by %s.", r.Requester.Display(), r.Requester.Handle(), r.Access, r.Group, r.AutoApproval.Words()),
				"An approver should look at it: Looks good or Revoke on the request's card, or pending in a personal chat with pimbot."}})
	}
	return noticeCard(notice{Label: "Alert", Tone: toneAttention, Title: "Removal of request " + r.ID + " keeps failing",
		Lines: []string{fmt.Sprintf("Removing %s (%s) as %s of %s keeps failing; pimbot keeps retrying.", r.Requester.Display(), r.Requester.Handle(), r.Access, r.Group), ev.Detail}})
}

// ExtendedCard tells the approvers' channel that an extension took effect: the grant they
// look after now ends later.
func ExtendedCard(v View, ev bot.Event) Card {
	r := ev.Request
	line := fmt.Sprintf("%s (%s) keeps %s of %s until %s: extended %s.", r.Requester.Display(), r.Requester.Handle(), r.Access, r.Group, v.time(r.EndsAt), ev.Detail)
	if ev.Actor != nil {
		line = strings.TrimSuffix(line, ".") + ", approved by " + ev.Actor.Display() + "."
	}
	return noticeCard(notice{Label: "Extended", Tone: toneGood, Title: "Request " + r.ID + " now ends at " + v.time(r.EndsAt), Lines: []string{line}})
}

// DriftCard is posted in the group's approval channel when someone holds its access without
// a grant: the holder (named, never mentioned: they are not told), the access, the group and
// what pimbot did about it.
func DriftCard(v View, ev bot.Event) Card {
	r := ev.Request
	holder := r.Requester.Display()
	if h := r.Requester.Handle(); h != holder {
		holder += " (" + h + ")"
	}
	n := notice{Label: "Reported", Tone: toneWarning, Title: "Access without a grant"}
	switch ev.Type {
	case bot.EvDriftElsewhere:
		n.Label, n.Tone, n.Title = "Managed elsewhere", toneDefault, "Access managed elsewhere"
		n.Lines = []string{fmt.Sprintf("%s is %s of %s through %s, not a pimbot grant — left alone.", holder, r.Access, r.Group, bot.ManagedByWords(ev))}
	case bot.EvDriftRemoved:
		n.Label = "Removed"
		n.Lines = []string{fmt.Sprintf("%s was %s of %s without a pimbot grant — removed.", holder, r.Access, r.Group)}
	case bot.EvDriftRemoveFailed:
		n.Label, n.Tone = "Removal failed", toneAttention
		n.Lines = []string{fmt.Sprintf("%s is %s of %s without a pimbot grant — removal failed, retrying next round.", holder, r.Access, r.Group), ev.Detail}
	default:
		n.Lines = []string{fmt.Sprintf("%s is %s of %s without a pimbot grant — reported. Remove it in Entra ID unless someone meant it.", holder, r.Access, r.Group)}
	}
	return noticeCard(n)
}

// AuditCard carries one line of the audit channel (see bot.AuditLine), as plain text.
func AuditCard(line string) Card {
	return newCard([]any{para(line)}, nil)
}

// SubmittedCard replaces the form once the engine accepted the request, with the buttons of
// what the engine offers the requester (acts).
func SubmittedCard(v View, r *bot.Request, g *bot.Group, acts []bot.Action) Card {
	n := notice{Title: "Request " + r.ID + " submitted", Lines: []string{whatWhen(v, r)},
		Actions: actionButtons(r.ID, Offer{Actions: acts})}
	if r.Kind == bot.KindExtend {
		n.Title = "Extension " + r.ID + " submitted"
	}
	switch {
	case r.State == bot.StateVerifying:
		n.Label, n.Tone = "Waiting for MFA", toneWarning
		n.Lines = append(n.Lines, "Next: verify with Microsoft (MFA). The link is on its way to your personal chat.")
	case r.State == bot.StatePending:
		n.Label, n.Tone = "Pending approval", toneWarning
		n.Lines = append(n.Lines, "Waiting for approval by "+approverWords(g.ApproversFor(r.Requester))+".")
		if r.OnCallNote != "" {
			n.Lines = append(n.Lines, bot.Capitalize(r.OnCallNote)+".")
		}
	case r.State == bot.StateScheduled && r.AutoApproval != nil:
		n.Label, n.Tone = "Approved automatically", toneGood
		n.Lines = append(n.Lines, "Approved automatically: you are on call ("+r.AutoApproval.Source()+
			"). The approvers see it and review it afterwards.")
	case r.State == bot.StateScheduled:
		n.Label, n.Tone = "Approved", toneGood
		n.Lines = append(n.Lines, "No approval needed.")
	case r.State == bot.StateApplied:
		n.Label, n.Tone = "Extension applied", toneGood
		n.Title = "Extension " + r.ID + " applied"
		n.Lines = append(n.Lines, "No approval needed.")
	}
	return noticeCard(n)
}

// ResultCard answers an action on a request (cancel, deactivate, extend) with where it
// stands and the buttons of what the engine offers the person now (acts).
func ResultCard(v View, heading string, r *bot.Request, acts []bot.Action) Card {
	return newCard([]any{title(heading), requestItem(v, r, acts, "")}, nil)
}

// MessageCard carries one reply that may quote what people typed (an error, a hint). With
// toneAttention the text is a problem (a box of the attention style); text is never coloured.
func MessageCard(heading, text, tone string) Card {
	if tone == toneAttention {
		return newCard([]any{title(heading), problem(text)}, nil)
	}
	return noticeCard(notice{Title: heading, Lines: []string{text}})
}

// StatusCard lists the person's requests, newest first, each in its own container with its
// state as a label and the buttons of what the engine offers them (acts, by request id).
func StatusCard(v View, rs []*bot.Request, acts map[string][]bot.Action) Card {
	if len(rs) == 0 {
		return noticeCard(notice{Title: "You have no requests",
			Lines: []string{"Type activate to ask for access, or groups to see what you may activate."}})
	}
	body := []any{title("Your requests")}
	size := 0
	for i, r := range rs {
		item := requestItem(v, r, acts[r.ID], fromStatus)
		b, _ := json.Marshal(item)
		if size += utf16Len(b); size > maxStatusBytes && i > 0 { // Teams measures in UTF-16
			body = append(body, label(fmt.Sprintf("…and %d more. Type status and a request id to see one.", len(rs)-i)))
			break
		}
		body = append(body, item)
	}
	return newCard(body, nil)
}

// maxStatusBytes bounds the requests of one status card, so that the card stays below Teams'
// 28 KB message limit however many requests, buttons and words there are; the rest are
// counted.
const maxStatusBytes = 24 << 10

// requestItem is one request of the person's, in its own container: its state as a label,
// what it gives and when (bot.Request.Status, the words every surface uses), its id, and
// the buttons of the actions the engine offers (acts). from names the card for the buttons
// (see Offer.From).
func requestItem(v View, r *bot.Request, acts []bot.Action, from string) map[string]any {
	// The label beside what it labels: the state, then the request in words and its id.
	state := labelColumn(bot.Capitalize(stateWords(v, r)), stateTone(r))
	words := para(bot.Capitalize(r.Status(v.Now, v.loc())))
	id := footer("Request " + r.ID)
	id["spacing"] = "Small"
	items := []any{map[string]any{"type": "ColumnSet", "columns": []any{state, map[string]any{
		"type": "Column", "width": "stretch", "verticalContentAlignment": "Center", "items": []any{words, id}}}}}
	if bs := actionButtons(r.ID, Offer{Actions: acts, From: from}); len(bs) > 0 {
		items = append(items, map[string]any{"type": "ActionSet", "actions": bs})
	}
	return map[string]any{"type": "Container", "separator": true, "spacing": "Medium", "items": items}
}

// stateWords is the request's state for its label: the engine's label, or "ending" for an
// active grant being removed.
func stateWords(v View, r *bot.Request) string {
	if r.Ending() {
		return "ending"
	}
	return r.StatusLabel(v.Now)
}

// stateTone is the tone of a request's state label.
func stateTone(r *bot.Request) string {
	switch {
	case r.Ending():
		return toneWarning
	case r.State == bot.StateVerifying || r.State == bot.StatePending:
		return toneWarning
	case r.State == bot.StateScheduled || r.State == bot.StateActive || r.State == bot.StateApplied:
		return toneGood
	case r.State == bot.StateDenied || r.State == bot.StateFailed:
		return toneAttention
	}
	return toneDefault
}

func whatWhen(v View, r *bot.Request) string {
	s := bot.Capitalize(r.What())
	if w := r.When(v.Now, v.loc()); w != "" {
		s += " " + w
	}
	return s + "."
}

// HelpCard lists the commands (static text: markdown is ours).
func HelpCard() Card {
	lines := []string{
		"**activate**: the form, asking only what the policy needs",
		"**activate** *group* [member|owner] [for *duration*] [at *time*] [ticket *id*] [*reason*]: the quick form, e.g. activate prod-db-admins for 2h fixing the outage",
		"**status**: your requests and grants, newest first",
		"**groups**: the groups you may activate",
		"**cancel** *id*: withdraw a pending or scheduled request",
		"**verify** *id*: a fresh Microsoft sign-in (link or code) for your request waiting for MFA",
		"**deactivate** *id*: end an active grant now",
		"**extend** *id* [for *duration*] [*reason*]: more time on an active grant",
		"**pending**: the requests waiting for your approval, with Approve and Deny (approvers; also inbox)",
		"**approve** *id*, **deny** *id* [*reason*]: decide (approvers; the card's buttons do the same)",
	}
	body := []any{map[string]any{"type": "TextBlock", "text": "pimbot: just-in-time access to Entra ID groups", "weight": "Bolder", "size": "Large", "style": "heading", "wrap": true}}
	for _, l := range lines {
		body = append(body, map[string]any{"type": "TextBlock", "text": "- " + l, "wrap": true, "spacing": "Small"})
	}
	body = append(body, map[string]any{"type": "TextBlock", "isSubtle": true, "wrap": true,
		"text": "Durations: 30m, 2h, 1h30m, 1d. Times: 14:30, 2026-12-01 09:00 or +30m, in your time zone. In a channel, mention the bot first."})
	return newCard(body, nil)
}

// GroupsCard lists the groups a person may activate, with their terms.
func GroupsCard(groups []*bot.Group) Card {
	if len(groups) == 0 {
		return noticeCard(notice{Title: "No groups for you",
			Lines: []string{"You are not eligible for any group. Ask your administrators to add you to the policy."}})
	}
	body := append([]any{title("Groups you may activate")}, groupList(groups)...)
	return newCard(body, []any{execute("Request access", "form", "", "positive")})
}

// ChannelIDCard tells people the id to put in a group's approval_channel.teams.
func ChannelIDCard(channelID string) Card {
	return noticeCard(notice{Title: "Approval channel id",
		Lines: []string{"To send a group's approval cards here, set its approval_channel.teams to this id in the policy file:", channelID}})
}

// failLine says why a request failed: the engine's reason, and the directory's error if any.
func failLine(r *bot.Request) string {
	line := r.EndReason
	if line == "" {
		line = "the directory refused the grant"
	}
	line = "Reason: " + line + "."
	if r.LastError != "" {
		line += " (" + r.LastError + ")"
	}
	return line
}

// utf16Len is the length of UTF-8 text in UTF-16 code units, as Teams measures a message.
func utf16Len(b []byte) int {
	n := 0
	for _, r := range string(b) {
		n += utf16.RuneLen(r)
	}
	return n
}

// detailLine is an event's detail as a sentence ("" for none): why the window changed at the
// start (PIM's 5-minute minimum).
func detailLine(detail string) string {
	if detail == "" {
		return ""
	}
	return bot.Capitalize(detail) + "."
}
