package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pimbot/pimbot/bot"
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
func (s *Surface) Notify(ctx context.Context, ev bot.Event) error {
	if ev.Request == nil {
		return nil
	}
	g := s.groupOf(ev.Request)
	who := s.people(ctx, ev)
	err := s.notifyApprovers(ctx, ev, g, who)
	if ev.Request.Surface == Name {
		err = errors.Join(err, s.notifyRequester(ctx, ev, g, who))
	}
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
	if g == nil {
		return nil
	}
	var alertErr error
	if ev.Type == bot.EvRemovalFailing || ev.Type == bot.EvFailed {
		alertErr = s.alert(ctx, ev, g, who)
	}
	ref, err := s.loadRef(ctx, r.ID)
	if err != nil {
		return errors.Join(alertErr, err)
	}
	if ev.Type == bot.EvSubmitted && r.State == bot.StatePending {
		return errors.Join(alertErr, s.postApproval(ctx, ev, g, who, ref))
	}
	if len(ref.Msgs) == 0 || r.Version < ref.Version {
		return alertErr // nobody was asked on Slack, or a newer state is already shown
	}
	m := approvalMessage(approvalView{Req: r, Parent: ev.Parent, Group: g, Now: s.now(), Loc: s.loc(), Who: who})
	var errs []error
	for _, mr := range ref.Msgs {
		if _, _, _, err := s.api.UpdateMessageContext(ctx, mr.Channel, mr.TS, msgOptions(m)...); err != nil {
			if retryable(err) {
				errs = append(errs, fmt.Errorf("slack chat.update %s: %w", mr.Channel, err))
			} else {
				s.log.Error("slack chat.update refused", "request_id", r.ID, "channel", mr.Channel, "err", err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(append(errs, alertErr)...)
	}
	ref.Version = r.Version
	return errors.Join(alertErr, s.saveRef(ctx, r.ID, ref))
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
	m := approvalMessage(approvalView{Req: r, Parent: ev.Parent, Group: g, Now: s.now(), Loc: s.loc(), Who: who})
	var errs []error
	for _, t := range targets {
		if ref.has(t) {
			continue
		}
		ch, ts, err := s.api.PostMessageContext(ctx, t.Channel, msgOptions(m)...)
		if err != nil {
			if retryable(err) {
				errs = append(errs, fmt.Errorf("slack chat.postMessage %s: %w", t.Channel, err))
			} else {
				s.log.Error("slack refused the approval message", "request_id", r.ID, "channel", t.Channel, "err", err)
			}
			continue
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

func (ref approvalRef) has(t msgRef) bool {
	for _, m := range ref.Msgs {
		if (t.To != "" && m.To == t.To) || (t.To == "" && m.To == "" && m.Channel == t.Channel) {
			return true
		}
	}
	return false
}

// alert tells approvers that a person is needed, once per event.
func (s *Surface) alert(ctx context.Context, ev bot.Event, g *bot.Group, who people) error {
	r := ev.Request
	key := keySent(r.ID, ev.Type, strconv.FormatInt(r.Version, 10), "approvers")
	if _, done, err := s.kv.GetValue(ctx, key); err == nil && done {
		return nil
	}
	targets, err := s.approvalTargets(ctx, g, bot.User{})
	if err != nil {
		return err
	}
	m := alertMessage(ev, who)
	var errs []error
	for _, t := range targets {
		if _, _, err := s.api.PostMessageContext(ctx, t.Channel, msgOptions(m)...); err != nil && retryable(err) {
			errs = append(errs, fmt.Errorf("slack alert to %s: %w", t.Channel, err))
		} else if err != nil {
			s.log.Error("slack refused an alert", "request_id", r.ID, "channel", t.Channel, "err", err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return s.kv.SetValue(ctx, key, "1", s.opt.RefTTL)
}

// notifyRequester DMs the requester, once per event.
func (s *Surface) notifyRequester(ctx context.Context, ev bot.Event, g *bot.Group, who people) error {
	r := ev.Request
	key := keySent(r.ID, ev.Type, strconv.FormatInt(r.Version, 10), "requester")
	if _, done, err := s.kv.GetValue(ctx, key); err == nil && done {
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
		m = mfaMessage(r, ch, problem, s.now())
	} else {
		var ok bool
		if m, ok = requesterMessage(ev, g, s.now(), s.loc(), who); !ok {
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
	if _, _, err := s.api.PostMessageContext(ctx, id, msgOptions(m)...); err != nil {
		if retryable(err) {
			return fmt.Errorf("slack DM to the requester of %s: %w", r.ID, err)
		}
		s.log.Error("slack refused a DM to the requester", "request_id", r.ID, "err", err)
		return nil
	}
	return s.kv.SetValue(ctx, key, "1", s.opt.RefTTL)
}
