package teams

import (
	"context"
	"errors"
	"fmt"

	"github.com/pimbot/pimbot/bot"
)

// Notify tells people about an event: the requester in their personal chat when they asked
// in Teams, and the approvers in the group's Teams approval channel for requests from any
// surface, where the approval card is then updated in place. The engine calls it once per
// event and retries on error, so what was already delivered is marked in the KV and not
// sent twice.
func (s *Surface) Notify(ctx context.Context, ev bot.Event) error {
	r := ev.Request
	if r == nil {
		return nil
	}
	g, _ := s.eng.Policy().Group(r.GroupID)
	var errs []error
	if bot.IsDrift(ev.Type) {
		// Access held without a grant concerns no request: only the approvers hear of it.
		if g != nil && g.ApprovalChannel[Name] != "" {
			if err := s.postOnce(ctx, ev, g.ApprovalChannel[Name], "drift", DriftCard(s.view(""), ev), "Access without a grant in "+r.Group); err != nil {
				errs = append(errs, fmt.Errorf("tell the approvers in %s: %w", g.ApprovalChannel[Name], err))
			}
		}
		return errors.Join(append(errs, s.tellAudit(ctx, ev))...)
	}
	if r.Surface == Name {
		if err := s.tellRequester(ctx, ev, g); err != nil {
			errs = append(errs, fmt.Errorf("tell the requester: %w", err))
		}
	}
	if g != nil && g.ApprovalChannel[Name] != "" {
		if err := s.tellApprovers(ctx, ev, g, g.ApprovalChannel[Name]); err != nil {
			errs = append(errs, fmt.Errorf("tell the approvers in %s: %w", g.ApprovalChannel[Name], err))
		}
	}
	return errors.Join(append(errs, s.tellAudit(ctx, ev))...)
}

// tellAudit sums up the event in one line in the Teams audit channel, when the policy sets
// settings.audit_channel.teams. The line is marked sent on its own, so a retry caused by
// another delivery does not post it again.
func (s *Surface) tellAudit(ctx context.Context, ev bot.Event) error {
	ch := s.eng.Policy().Settings.AuditChannel[Name]
	if ch == "" {
		return nil
	}
	line, ok := bot.AuditLine(ev, s.eng.Policy().Settings.Timezone)
	if !ok {
		return nil
	}
	if err := s.postOnce(ctx, ev, ch, "audit", AuditCard(line), "pimbot audit: "+ev.Type+" "+auditRef(ev)); err != nil {
		return fmt.Errorf("post the audit line in %s: %w", ch, err)
	}
	return nil
}

// auditRef names the request in the preview; a drift finding has no request id worth showing.
func auditRef(ev bot.Event) string {
	if bot.IsDrift(ev.Type) {
		return ev.Request.Group
	}
	return ev.Request.ID
}

func sentKey(ev bot.Event, target string) string {
	return fmt.Sprintf("%s%s:%s:%d:%s", keySent, ev.Request.ID, ev.Type, ev.Request.Version, target)
}

// once runs send unless the delivery was marked done, and marks it after it succeeded.
func (s *Surface) once(ctx context.Context, key string, send func() error) error {
	if _, done, err := s.kv.GetValue(ctx, key); err != nil {
		return err
	} else if done {
		return nil
	}
	if err := send(); err != nil {
		return err
	}
	if err := s.kv.SetValue(ctx, key, "1", sentTTL); err != nil {
		s.log.Warn("mark a notification delivered", "key", key, "err", err)
	}
	return nil
}

func (s *Surface) tellRequester(ctx context.Context, ev bot.Event, g *bot.Group) error {
	r := ev.Request
	var ref userRef
	ok, err := s.getJSON(ctx, keyUser+r.Requester.ID, &ref)
	if err != nil {
		return err
	}
	if !ok {
		// Nobody can be told without a reference; retrying will not create one.
		s.log.Warn("no Teams conversation reference for the requester; not told", "request_id", r.ID, "user", r.Requester.Handle(), "event", ev.Type)
		return nil
	}
	v := s.view(ref.Timezone)
	card, summary, ok := RequesterNotice(v, ev, g, s.offer(ctx, s.requester(r), r))
	if ev.Type == bot.EvMFARequired {
		card, summary, ok = s.mfaNotice(ctx, v, r), "Request "+r.ID+": verify with Microsoft", true
	}
	if !ok {
		return nil
	}
	return s.once(ctx, sentKey(ev, "dm"), func() error {
		conv, err := s.personalChat(ctx, r.Requester.ID, &ref)
		if err != nil {
			return err
		}
		_, err = s.conn.Send(ctx, ref.ServiceURL, conv, CardMessage(card, summary))
		return err
	})
}

// mfaNotice starts the step-up verification and renders its link.
func (s *Surface) mfaNotice(ctx context.Context, v View, r *bot.Request) Card {
	ch, err := s.eng.StartMFA(ctx, r)
	if err != nil {
		return noticeCard(notice{Title: "Request " + r.ID + " needs MFA first", Tone: toneAttention,
			Lines:   []string{"The verification cannot start: " + bot.Describe(err)},
			Actions: actionButtons(r.ID, s.offer(ctx, s.requester(r), r))})
	}
	return MFACard(v, r, ch, s.eng.Actions(ctx, s.requester(r), r))
}

// personalChat returns the person's 1:1 chat with the bot, creating it when the bot only
// knows them from a channel (msbotbuilder-go cannot: POST /v3/conversations). The chat's id
// is kept under the key the reference was read from (userID), never under an id the stored
// value names.
func (s *Surface) personalChat(ctx context.Context, userID string, ref *userRef) (string, error) {
	if ref.ConversationID != "" {
		return ref.ConversationID, nil
	}
	conv, err := s.conn.CreateConversation(ctx, ref.ServiceURL, NewConversation{BotID: ref.BotID, UserID: ref.TeamsID, TenantID: ref.TenantID})
	if err != nil {
		return "", err
	}
	ref.ConversationID = conv
	if err := s.putJSON(ctx, keyUser+userID, ref, refTTL); err != nil {
		s.log.Warn("keep the personal chat's reference", "err", err)
	}
	return conv, nil
}

func (s *Surface) tellApprovers(ctx context.Context, ev bot.Event, g *bot.Group, channel string) error {
	r := ev.Request
	switch ev.Type {
	case bot.EvReminder, bot.EvDelayed:
		return nil
	case bot.EvRemovalFailing:
		if err := s.postOnce(ctx, ev, channel, "alert", AlertCard(s.view(""), ev), "Alert: removal of request "+r.ID+" keeps failing"); err != nil {
			return err
		}
	case bot.EvReviewDue:
		return s.postOnce(ctx, ev, channel, "alert", AlertCard(s.view(""), ev), "Automatic approval of request "+r.ID+" is not reviewed yet")
	case bot.EvExtended:
		// The approvers hear when an extension takes effect; the grant's own card (if it
		// needed approval) is updated below as well.
		if err := s.postOnce(ctx, ev, channel, "extended", ExtendedCard(s.view(""), ev), "Request "+r.ID+" now ends later"); err != nil {
			return err
		}
	}
	var card cardRef
	exists, err := s.getJSON(ctx, keyCard+r.ID, &card)
	if err != nil {
		return err
	}
	msg := CardMessage(approvalCard(s.view(""), r, ev.Parent, g, s.eng.ApproverActions(r)), "Access request "+r.ID)
	if !exists {
		switch {
		case ev.Type == bot.EvSubmitted && (r.State == bot.StatePending || r.AutoApproval != nil):
			return s.postCard(ctx, ev, channel, msg)
		case ev.Type == bot.EvFailed:
			return s.postOnce(ctx, ev, channel, "alert", AlertCard(s.view(""), ev), "Request "+r.ID+" failed")
		}
		return nil // it needed no approval: nothing to update
	}
	if r.Version < card.Version {
		return nil // a late retry of an older event: the card already shows newer news
	}
	if err := s.conn.Update(ctx, card.ServiceURL, card.ConversationID, card.ActivityID, msg); err != nil {
		return err
	}
	card.Version = r.Version
	return s.putJSON(ctx, keyCard+r.ID, card, cardTTL)
}

// postCard posts the approvers' card and keeps its activity id to update it later.
func (s *Surface) postCard(ctx context.Context, ev bot.Event, channel string, msg *Message) error {
	target, err := s.channelTarget(ctx, channel)
	if err != nil {
		return err
	}
	id, err := s.conn.Send(ctx, target.ServiceURL, channel, msg)
	if err != nil {
		return err
	}
	if id == "" {
		return errors.New("the connector returned no activity id for the approval card")
	}
	return s.putJSON(ctx, keyCard+ev.Request.ID, cardRef{ServiceURL: target.ServiceURL, ConversationID: channel,
		ActivityID: id, Version: ev.Request.Version}, cardTTL)
}

func (s *Surface) postOnce(ctx context.Context, ev bot.Event, channel, what string, card Card, summary string) error {
	return s.once(ctx, sentKey(ev, what), func() error {
		target, err := s.channelTarget(ctx, channel)
		if err != nil {
			return err
		}
		_, err = s.conn.Send(ctx, target.ServiceURL, channel, CardMessage(card, summary))
		return err
	})
}
