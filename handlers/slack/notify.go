package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// approvalRef is where the approvers' messages of a request are, kept in Redis (several
// replicas, restarts) so that they can be updated in place.
type approvalRef struct {
	Version int64    `json:"v"` // the request version they show
	Msgs    []msgRef `json:"m"`
}

type msgRef struct {
	To      string `json:"to,omitempty"` // the approver's Slack id when sent as a DM
	Channel string `json:"c"`
	TS      string `json:"ts"`
}

func (s *Surface) loadRef(ctx context.Context, id string) (approvalRef, error) {
	var ref approvalRef
	v, ok, err := s.kv.GetValue(ctx, keyApproval(id))
	if err != nil {
		return ref, fmt.Errorf("read slack message ids of %s: %w", id, err)
	}
	if ok {
		_ = json.Unmarshal([]byte(v), &ref)
	}
	return ref, nil
}

func (s *Surface) saveRef(ctx context.Context, id string, ref approvalRef) error {
	b, err := json.Marshal(ref)
	if err != nil {
		return err
	}
	if err := s.kv.SetValue(ctx, keyApproval(id), string(b), s.opt.RefTTL); err != nil {
		return fmt.Errorf("keep slack message ids of %s: %w", id, err)
	}
	return nil
}

// Notify tells people on Slack about an event: the group's approvers (in its Slack
// approval channel, else by DM) for requests from any surface, and the requester by DM
// when they asked on Slack. It is called once per event and retried on error, so each
// step remembers that it was done.
//
// A drift finding goes to the group's Slack approval channel only. When the policy sets
// settings.audit_channel.slack, every audit-worthy event is also summed up there in one
// line; that line is marked sent on its own, so a retry caused by another step does not
// post it again.
//
// The requester's App Home is redrawn in the background if they opened it lately, for a
// request from any surface (the Home lists them all). That needs no mark (publishing the
// Home again is harmless), and its failures are logged, never returned.
func (s *Surface) Notify(ctx context.Context, ev bot.Event) error {
	if ev.Request == nil {
		return nil
	}
	g := s.groupOf(ev.Request)
	var err error
	if bot.IsBinding(ev.Type) {
		err = s.notifyBinding(ctx, ev)
	} else if bot.IsDrift(ev.Type) {
		err = s.notifyDrift(ctx, ev, g)
	} else {
		who := s.people(ctx, ev)
		err = s.notifyApprovers(ctx, ev, g, who)
		if ev.Request.Surface == Name {
			err = errors.Join(err, s.notifyRequester(ctx, ev, g, who))
		}
		s.refreshRequesterHome(ctx, ev)
	}
	return errors.Join(err, s.notifyAudit(ctx, ev))
}

// notifyBinding tells both accounts of a refused identity binding: the Slack account the
// link was made for, and the Slack account of the person who signed in with it (a link
// forwarded with "please verify" is the attack this stops). A binding that went through
// is only in the audit trail and channel.
func (s *Surface) notifyBinding(ctx context.Context, ev bot.Event) error {
	if ev.Type != bot.EvBindRefused || ev.Chat == nil {
		return nil
	}
	signer := ev.Request.Requester
	var errs []error
	if ev.Chat.Surface == Name {
		text := fmt.Sprintf(":rotating_light: Someone else (%s) signed in with Microsoft from the link that was to link your Slack account (%s) to you: nothing was linked. If you did not send that link to anyone, tell your security team.",
			esc(signer.Handle()), esc(ev.Chat.Email))
		errs = append(errs, s.postOnce(ctx, ev, keySent(ev.Request.ID, ev.Type, "chat"), ev.Chat.ID, msg{Text: stripMarks(text), Blocks: []slack.Block{section(text)}}, "binding refusal"))
	}
	id, ok, err := s.slackIDOf(ctx, signer)
	switch {
	case err != nil:
		errs = append(errs, err)
	case ok && !(ev.Chat.Surface == Name && id == ev.Chat.ID):
		text := fmt.Sprintf(":rotating_light: You signed in with Microsoft from a link that was made for another %s account (%s): nothing was linked. If someone sent you that link asking you to verify something, tell your security team.",
			esc(ev.Chat.Surface), esc(ev.Chat.Email))
		errs = append(errs, s.postOnce(ctx, ev, keySent(ev.Request.ID, ev.Type, "signer"), id, msg{Text: stripMarks(text), Blocks: []slack.Block{section(text)}}, "binding refusal"))
	}
	return errors.Join(errs...)
}

// notifyDrift tells the group's Slack approval channel that someone holds access without a
// grant, once per finding. A group without one hears nothing on Slack: the holder asked for
// nothing, and approvers listed one by one are not paged for it.
func (s *Surface) notifyDrift(ctx context.Context, ev bot.Event, g *bot.Group) error {
	if g == nil || g.ApprovalChannel[Name] == "" {
		return nil
	}
	return s.postOnce(ctx, ev, keySent(ev.Request.ID, ev.Type, strconv.FormatInt(ev.Request.Version, 10), "drift"),
		g.ApprovalChannel[Name], driftMessage(ev), "drift finding")
}

// driftMessage names the holder (never a mention: they are not told), the access and the
// group, and what pimbot did about it.
func driftMessage(ev bot.Event) msg {
	r := ev.Request
	holder := "*" + esc(truncate(r.Requester.Display(), 100)) + "*"
	if h := r.Requester.Handle(); h != r.Requester.Display() {
		holder += " (" + esc(truncate(h, 200)) + ")"
	}
	what := fmt.Sprintf("%s of *%s*", r.Access, esc(r.Group))
	var text string
	switch ev.Type {
	case bot.EvDriftElsewhere:
		text = fmt.Sprintf(":information_source: *Managed elsewhere*: %s is %s through %s, not a pimbot grant — left alone.", holder, what, esc(bot.ManagedByWords(ev)))
	case bot.EvDriftRemoved:
		text = fmt.Sprintf(":broom: *Access without a grant*: %s was %s without a pimbot grant — removed.", holder, what)
	case bot.EvDriftRemoveFailed:
		text = fmt.Sprintf(":rotating_light: *Access without a grant*: %s is %s without a pimbot grant — removal failed, retrying next round.", holder, what)
	default:
		text = fmt.Sprintf(":warning: *Access without a grant*: %s is %s without a pimbot grant — reported. Remove it in Entra ID unless someone meant it.", holder, what)
	}
	blocks := []slack.Block{section(text)}
	if ev.Type == bot.EvDriftRemoveFailed && ev.Detail != "" {
		blocks = append(blocks, contextLine(esc(truncate(ev.Detail, 500))))
	}
	return msg{Text: stripMarks(text), Blocks: blocks}
}

// notifyAudit sums up the event in one line in the Slack audit channel, if one is set.
func (s *Surface) notifyAudit(ctx context.Context, ev bot.Event) error {
	ch := s.eng.Policy().Settings.AuditChannel[Name]
	if ch == "" {
		return nil
	}
	line, ok := bot.AuditLine(ev, s.loc())
	if !ok {
		return nil
	}
	return s.postOnce(ctx, ev, keySent(ev.Request.ID, ev.Type, strconv.FormatInt(ev.Request.Version, 10), "audit"),
		ch, msg{Text: auditText(line)}, "audit line")
}

// auditText escapes an audit line and keeps it under Slack's message limit without cutting
// an entity in two.
func auditText(line string) string {
	t := esc(line)
	if utf8.RuneCountInString(t) <= 3900 {
		return t
	}
	t = string([]rune(t)[:3900])
	if i := strings.LastIndexByte(t, '&'); i >= 0 && !strings.Contains(t[i:], ";") {
		t = t[:i]
	}
	return t + "…"
}

// postOnce posts m to channel once (delivery.go): marked before, looked up after an unknown
// outcome, recorded after. A permanent refusal is recorded and returned as undeliverable.
func (s *Surface) postOnce(ctx context.Context, ev bot.Event, key, channel string, m msg, what string) error {
	recipient := what
	if i := strings.LastIndexByte(key, ':'); i >= 0 {
		recipient = key[i+1:]
	}
	_, _, err := s.deliver(ctx, delivery{key: key, channel: channel, m: m, meta: metaOf(ev, recipient), what: what, noUnfurl: true})
	return err
}

// people looks up the Slack ids of the people an event names (for mentions), from the KV only.
func (s *Surface) people(ctx context.Context, ev bot.Event) people {
	r := ev.Request
	us := []bot.User{r.Requester}
	if ev.Actor != nil {
		us = append(us, *ev.Actor)
	}
	for _, a := range r.Approvals {
		us = append(us, a.By)
	}
	if r.Denial != nil {
		us = append(us, r.Denial.By)
	}
	if r.EndedBy != nil {
		us = append(us, r.EndedBy.By)
	}
	p := people{}
	for _, u := range us {
		if _, done := p[u.ID]; done || u.ID == "" {
			continue
		}
		id, ok, err := s.kv.GetValue(ctx, keySlackID(u.ID))
		if err == nil && ok {
			p[u.ID] = id
		} else {
			p[u.ID] = ""
		}
	}
	return p
}

func (s *Surface) notifyApprovers(ctx context.Context, ev bot.Event, g *bot.Group, who people) error {
	r := ev.Request
	ref, err := s.loadRef(ctx, r.ID)
	if err != nil {
		return err
	}
	if g == nil {
		// The group left the policy (or its id changed): where its approvers are asked is
		// no longer known, but the messages already posted to them are where they look.
		if len(ref.Msgs) == 0 {
			return nil
		}
		g = &bot.Group{Name: r.Group, ID: r.GroupID}
	}
	var alertErr error
	if ev.Type == bot.EvRemovalFailing || ev.Type == bot.EvFailed || ev.Type == bot.EvReviewDue {
		alertErr = s.alert(ctx, ev, g, who, ref)
	}
	// An automatic (on-call) approval is posted to the approvers as a request is: they see it
	// at once, with Revoke and Looks good. A request sent back to them (no longer on call at
	// its start) is a submission again: the messages already posted are updated below.
	if ev.Type == bot.EvSubmitted && (r.State == bot.StatePending || r.AutoApproval != nil) {
		if err := s.postApproval(ctx, ev, g, who, ref); err != nil {
			return errors.Join(alertErr, err)
		}
		if ref, err = s.loadRef(ctx, r.ID); err != nil || ref.Version >= r.Version {
			return errors.Join(alertErr, err)
		}
	}
	if len(ref.Msgs) == 0 || r.Version < ref.Version {
		return alertErr // nobody was asked on Slack, or a newer state is already shown
	}
	view := approvalView{Req: r, Parent: ev.Parent, Group: g, Actions: s.eng.ApproverActions(r), Now: s.now(), Loc: s.loc(), Who: who}
	// Every copy is updated (chat.update is idempotent, so a retry updates them all again).
	// A copy Slack refuses for good (deleted, channel archived) is dropped from the refs and
	// reported; the others are retried until they show this version.
	var errs, refused []error
	kept := ref.Msgs[:0:0]
	for _, mr := range ref.Msgs {
		err := s.updateMessage(ctx, mr.Channel, mr.TS, msgOptions(s.approvalFor(ctx, view, mr.To))...)
		switch {
		case err == nil:
			kept = append(kept, mr)
		case errors.Is(err, bot.ErrUndeliverable):
			s.log.Error("slack chat.update refused", "request_id", r.ID, "event", ev.Type, "channel", mr.Channel, "err", err)
			refused = append(refused, fmt.Errorf("slack chat.update %s: %w", mr.Channel, err))
		default:
			kept = append(kept, mr)
			errs = append(errs, fmt.Errorf("slack chat.update %s: %w", mr.Channel, err))
		}
	}
	if len(refused) > 0 {
		ref.Msgs = kept
		if len(errs) > 0 { // the version is not shown everywhere yet: keep it
			errs = append(errs, s.saveRef(ctx, r.ID, ref))
		}
	}
	if len(errs) > 0 {
		return errors.Join(append(append(errs, refused...), alertErr)...)
	}
	ref.Version = r.Version
	return errors.Join(append(refused, alertErr, s.saveRef(ctx, r.ID, ref))...)
}

// approvalTargets are where approvers are asked: the group's Slack approval channel, else
// a DM to each approver listed as a user (the requester excepted unless they may approve
// their own request).
func (s *Surface) approvalTargets(ctx context.Context, g *bot.Group, requester bot.User) ([]msgRef, error) {
	if ch := g.ApprovalChannel[Name]; ch != "" {
		return []msgRef{{Channel: ch}}, nil
	}
	var out []msgRef
	for _, entry := range g.Approvers {
		if strings.HasPrefix(entry, "group:") {
			s.log.Warn("slack: a group of approvers cannot be messaged without an approval channel; set approval_channel.slack", "group", g.Name, "approvers", entry)
			continue
		}
		u := bot.User{Email: entry}
		if !strings.Contains(entry, "@") {
			du, err := s.eng.Directory().ResolveUser(ctx, entry)
			if err != nil {
				s.log.Warn("slack: approver not in the directory", "group", g.Name, "approver", entry, "err", err)
				continue
			}
			u = du
		}
		if strings.EqualFold(u.Email, requester.Email) && requester.Email != "" && !g.AllowSelfApproval {
			continue
		}
		id, ok, err := s.slackIDOf(ctx, u)
		if err != nil {
			return nil, err
		}
		if !ok {
			s.log.Warn("slack: approver has no Slack account with that e-mail", "group", g.Name, "approver", entry)
			continue
		}
		out = append(out, msgRef{To: id, Channel: id})
	}
	return out, nil
}

// postApproval posts the approvers' message where it is missing (a retry posts only the rest).
func (s *Surface) postApproval(ctx context.Context, ev bot.Event, g *bot.Group, who people, ref approvalRef) error {
	r := ev.Request
	targets, err := s.approvalTargets(ctx, g, r.Requester)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		s.log.Warn("slack: nobody to ask for approval on Slack", "group", g.Name, "request_id", r.ID)
		return nil
	}
	view := approvalView{Req: r, Parent: ev.Parent, Group: g, Actions: s.eng.ApproverActions(r), Now: s.now(), Loc: s.loc(), Who: who}
	var errs []error
	for _, t := range targets {
		if ref.has(t) {
			continue
		}
		ch, ts, err := s.deliver(ctx, delivery{key: keySent(r.ID, ev.Type, strconv.FormatInt(r.Version, 10), "approval", t.Channel),
			channel: t.Channel, m: s.approvalFor(ctx, view, t.To), meta: metaOf(ev, "approvers:"+t.Channel), what: "approval message"})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ts == "" {
			continue // refused earlier, and reported then
		}
		ref.Msgs = append(ref.Msgs, msgRef{To: t.To, Channel: ch, TS: ts})
		if ref.Version < r.Version {
			ref.Version = r.Version
		}
		if err := s.saveRef(ctx, r.ID, ref); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// approvalFor renders the approvers' message for one copy: a channel post, shared by all
// the approvers, offers what the engine offers an approver who has not voted (the view's
// actions; whoever clicks is judged then); a DM to one approver (to: their Slack id) offers
// what the engine offers that person now (not Approve once they voted, nothing to a
// disabled account). When the person cannot be looked up, the shared actions are shown.
func (s *Surface) approvalFor(ctx context.Context, v approvalView, to string) msg {
	if to != "" {
		if u, err := s.identify(ctx, to); err == nil {
			v.Actions = s.eng.Actions(ctx, s.actor(u), v.Req)
		}
	}
	return approvalMessage(v)
}

func (ref approvalRef) has(t msgRef) bool {
	for _, m := range ref.Msgs {
		if (t.To != "" && m.To == t.To) || (t.To == "" && m.To == "" && m.Channel == t.Channel) {
			return true
		}
	}
	return false
}

// alert tells approvers that a person is needed, once per event.
func (s *Surface) alert(ctx context.Context, ev bot.Event, g *bot.Group, who people, ref approvalRef) error {
	r := ev.Request
	targets, err := s.approvalTargets(ctx, g, bot.User{})
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		// A group no longer in the policy: alert where its approvers were asked.
		seen := map[string]bool{}
		for _, m := range ref.Msgs {
			if !seen[m.Channel] {
				seen[m.Channel] = true
				targets = append(targets, msgRef{To: m.To, Channel: m.Channel})
			}
		}
	}
	m := alertMessage(ev, who)
	var errs []error
	for _, t := range targets {
		_, _, err := s.deliver(ctx, delivery{key: keySent(r.ID, ev.Type, strconv.FormatInt(r.Version, 10), "approvers", t.Channel),
			channel: t.Channel, m: m, meta: metaOf(ev, "alert:"+t.Channel), what: "alert"})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// notifyRequester DMs the requester, once per event.
func (s *Surface) notifyRequester(ctx context.Context, ev bot.Event, g *bot.Group, who people) error {
	r := ev.Request
	key := keySent(r.ID, ev.Type, strconv.FormatInt(r.Version, 10), "requester")
	if done, err := s.delivered(ctx, key); err != nil {
		return err
	} else if done {
		return nil
	}
	var m msg
	if ev.Type == bot.EvMFARequired {
		ch, err := s.eng.StartMFA(ctx, r)
		problem := ""
		var se *bot.StateError
		switch {
		case errors.As(err, &se):
			return nil // no longer waiting for MFA (canceled, timed out): nothing to verify
		case err != nil:
			problem = bot.Describe(err)
		}
		m = mfaMessage(r, ch, problem, s.requesterActions(ctx, r), s.now())
	} else {
		var ok bool
		if m, ok = requesterMessage(ev, g, s.requesterActions(ctx, r), s.now(), s.loc(), who); !ok {
			return nil
		}
	}
	id, found, err := s.slackIDOf(ctx, r.Requester)
	if err != nil {
		return err
	}
	if !found {
		s.log.Warn("slack: cannot find the requester on Slack to tell them", "request_id", r.ID, "requester", r.Requester.Handle())
		return nil
	}
	_, _, err = s.deliver(ctx, delivery{key: key, channel: id, m: m, meta: metaOf(ev, "requester"), what: "DM to the requester"})
	return err
}
