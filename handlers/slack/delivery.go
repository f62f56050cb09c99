package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// Delivery of the surface's notifications: paced per channel, errors classified for the core
// (bot/delivery.go), and each post made once.
//
// Once: a post whose answer never came (a timeout) may have been posted. So before posting,
// the surface marks its intent in the KV (with the time); every post carries message
// metadata naming the request, the event, the request version and the recipient; and a
// retry that finds an intent without an outcome first looks for that metadata in the
// conversation's history since the intent (conversations.history with
// include_all_metadata) before it posts again. The outcome (channel and ts, or Slack's
// permanent refusal) replaces the intent.

// MetaEventType is the event_type of the metadata on every notification pimbot posts.
const MetaEventType = "pimbot_event"

const (
	historySkew  = 5 * time.Second // how far before the intent to look (clock skew with Slack)
	historyPages = 5               // pages of 100 messages read when looking for a post
	dmKeyTTL     = 30 * 24 * time.Hour
)

// eventMeta is the metadata payload of a notification: which delivery it is.
type eventMeta struct {
	RequestID string
	Event     string
	Version   int64
	Recipient string // "approvers:<channel>", "requester", "audit", …
}

func (m eventMeta) option() slack.MsgOption {
	return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetaEventType, EventPayload: map[string]any{
		"request_id": m.RequestID, "event": m.Event, "version": m.Version, "recipient": m.Recipient,
	}})
}

func (m eventMeta) matches(md slack.SlackMetadata) bool {
	p := md.EventPayload
	return md.EventType == MetaEventType && fmt.Sprint(p["request_id"]) == m.RequestID && fmt.Sprint(p["event"]) == m.Event &&
		fmt.Sprint(p["version"]) == strconv.FormatInt(m.Version, 10) && fmt.Sprint(p["recipient"]) == m.Recipient
}

func metaOf(ev bot.Event, recipient string) eventMeta {
	return eventMeta{RequestID: ev.Request.ID, Event: ev.Type, Version: ev.Request.Version, Recipient: recipient}
}

// delivery is one message to post once.
type delivery struct {
	key      string // the KV key that records it
	channel  string // a channel id, or a user id for a DM
	m        msg
	meta     eventMeta
	what     string // for logs and errors: "approval message", "audit line", …
	noUnfurl bool
}

// sentRecord is what the KV holds for a delivery: the intent (a Slack-style timestamp of
// when the post was tried first), then the outcome.
type sentRecord struct {
	Intent  string `json:"i,omitempty"`
	Channel string `json:"c,omitempty"`
	TS      string `json:"ts,omitempty"`
	Refused string `json:"x,omitempty"` // Slack's permanent refusal: not tried again
}

func (r sentRecord) done() bool { return r.TS != "" || r.Refused != "" }

// record reads a delivery's record; the legacy value "1" means delivered.
func (s *Surface) record(ctx context.Context, key string) (sentRecord, error) {
	v, ok, err := s.kv.GetValue(ctx, key)
	if err != nil {
		return sentRecord{}, fmt.Errorf("read whether a slack message was posted: %w", err)
	}
	var rec sentRecord
	switch {
	case !ok:
	case v == "1":
		rec.Refused = "delivered before records were kept"
	default:
		_ = json.Unmarshal([]byte(v), &rec)
	}
	return rec, nil
}

func (s *Surface) keep(ctx context.Context, key string, rec sentRecord) error {
	b, _ := json.Marshal(rec)
	if err := s.kv.SetValue(ctx, key, string(b), s.opt.RefTTL); err != nil {
		return fmt.Errorf("record a slack delivery: %w", err)
	}
	return nil
}

// delivered reports whether a delivery's outcome is already known (posted or refused).
func (s *Surface) delivered(ctx context.Context, key string) (bool, error) {
	rec, err := s.record(ctx, key)
	return rec.done(), err
}

// deliver posts d once and returns where it is. An earlier attempt's unknown outcome is
// looked up first. A permanent refusal is recorded (not tried again) and returned marked
// bot.Undeliverable; other errors come back classified (Retry-After, transient).
func (s *Surface) deliver(ctx context.Context, d delivery) (channel, ts string, err error) {
	rec, err := s.record(ctx, d.key)
	if err != nil {
		return "", "", err
	}
	if rec.done() {
		return rec.Channel, rec.TS, nil
	}
	fresh := rec.Intent == ""
	if !fresh {
		ch, ts, found, err := s.findPosted(ctx, d, rec.Intent)
		if err != nil {
			return "", "", fmt.Errorf("look for an earlier slack %s in %s: %w", d.what, d.channel, err)
		}
		if found {
			return ch, ts, s.keep(ctx, d.key, sentRecord{Channel: ch, TS: ts})
		}
	} else {
		rec.Intent = slackTS(time.Now()) // Slack's clock, not the engine's: compared with message ts
		if err := s.keep(ctx, d.key, rec); err != nil {
			return "", "", err
		}
	}
	opts := append(msgOptions(d.m), d.meta.option())
	if d.noUnfurl {
		opts = append(opts, slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
	}
	ch, ts, err := s.postMessage(ctx, d.channel, opts...)
	if err != nil {
		err = fmt.Errorf("slack %s to %s: %w", d.what, d.channel, err)
		if errors.Is(err, bot.ErrUndeliverable) {
			s.log.Error("slack refused the "+d.what, "request_id", d.meta.RequestID, "event", d.meta.Event, "channel", d.channel, "err", err)
			rec.Refused = errCode(err)
			return "", "", errors.Join(err, s.keep(ctx, d.key, rec))
		}
		if fresh && notPosted(err) {
			// Known not to be posted, and no earlier attempt is in doubt: forget the intent,
			// so that the retry posts without looking first.
			if derr := s.kv.DeleteValue(ctx, d.key); derr != nil {
				s.log.Debug("slack: forget a delivery intent", "err", derr)
			}
		}
		return "", "", err
	}
	if ch != "" && ch != d.channel && isUserID(d.channel) {
		s.rememberDM(ctx, d.channel, ch)
	}
	return ch, ts, s.keep(ctx, d.key, sentRecord{Channel: ch, TS: ts})
}

// findPosted looks in the conversation's history since the intent for the message of d.
func (s *Surface) findPosted(ctx context.Context, d delivery, intent string) (channel, ts string, found bool, err error) {
	conv := d.channel
	if isUserID(conv) {
		if conv, err = s.dmChannel(ctx, d.channel); err != nil {
			if errors.Is(err, bot.ErrUndeliverable) {
				s.log.Warn("slack: cannot look up an earlier DM; posting again (it may show twice)", "request_id", d.meta.RequestID, "user", d.channel, "err", err)
				return "", "", false, nil
			}
			return "", "", false, err
		}
	}
	oldest := intent
	if f, perr := strconv.ParseFloat(intent, 64); perr == nil {
		oldest = slackTS(time.Unix(0, int64(f*1e9)).Add(-historySkew))
	}
	cursor := ""
	for page := 0; page < historyPages; page++ {
		h, err := s.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: conv, Oldest: oldest, Limit: 100, Cursor: cursor, IncludeAllMetadata: true, Inclusive: true})
		if err != nil {
			if cerr := classify(err); errors.Is(cerr, bot.ErrUndeliverable) {
				// No history scope, or no such conversation: whether it went out cannot be
				// known; posting again may show it twice, which beats not showing it.
				s.log.Warn("slack: cannot read the history to find an earlier post; posting again", "request_id", d.meta.RequestID, "channel", conv, "err", err)
				return "", "", false, nil
			} else {
				return "", "", false, cerr
			}
		}
		for _, m := range h.Messages {
			if d.meta.matches(m.Metadata) {
				return conv, m.Timestamp, true, nil
			}
		}
		if !h.HasMore || h.ResponseMetaData.NextCursor == "" {
			break
		}
		cursor = h.ResponseMetaData.NextCursor
	}
	return "", "", false, nil
}

func keyDM(slackUser string) string { return "slack:dm:" + slackUser }

func (s *Surface) rememberDM(ctx context.Context, user, channel string) {
	if err := s.kv.SetValue(ctx, keyDM(user), channel, dmKeyTTL); err != nil {
		s.log.Debug("slack: keep a DM channel id", "err", err)
	}
}

// dmChannel is the app's DM channel with a user: remembered from an earlier post, else
// conversations.open (im:write).
func (s *Surface) dmChannel(ctx context.Context, user string) (string, error) {
	if ch, ok, err := s.kv.GetValue(ctx, keyDM(user)); err == nil && ok && ch != "" {
		return ch, nil
	}
	c, _, _, err := s.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}, ReturnIM: true})
	if err != nil {
		return "", classify(err)
	}
	if c == nil || c.ID == "" {
		return "", bot.Undeliverable(errors.New("conversations.open returned no channel"))
	}
	s.rememberDM(ctx, user, c.ID)
	return c.ID, nil
}

// postMessage is chat.postMessage, paced per channel, its error classified.
func (s *Surface) postMessage(ctx context.Context, channel string, opts ...slack.MsgOption) (string, string, error) {
	if err := s.pace.wait(ctx, channel); err != nil {
		return "", "", err
	}
	ch, ts, err := s.api.PostMessageContext(ctx, channel, opts...)
	return ch, ts, s.slackErr(channel, err)
}

// updateMessage is chat.update, paced per channel, its error classified.
func (s *Surface) updateMessage(ctx context.Context, channel, ts string, opts ...slack.MsgOption) error {
	if err := s.pace.wait(ctx, channel); err != nil {
		return err
	}
	_, _, _, err := s.api.UpdateMessageContext(ctx, channel, ts, opts...)
	return s.slackErr(channel, err)
}

// slackErr classifies a Web API error and, on a 429, holds the channel back for Slack's
// Retry-After so that the surface's other posts there wait too.
func (s *Surface) slackErr(channel string, err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		s.pace.block(channel, rl.RetryAfter)
	}
	return classify(err)
}

// rateLimited is Slack's 429, with its Retry-After for bot.RetryAfter.
type rateLimited struct{ err *slack.RateLimitedError }

func (e *rateLimited) Error() string             { return e.err.Error() }
func (e *rateLimited) Unwrap() error             { return e.err }
func (e *rateLimited) RetryAfter() time.Duration { return e.err.RetryAfter }

// permanentErrors are Slack's answers to posting that retrying the same call cannot change:
// the conversation or user is gone, archived or closed to the app, or the message itself
// is refused (a defect to fix, not a reason to retry for a day).
var permanentErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "user_not_found": true,
	"users_not_found": true, "user_disabled": true, "cannot_dm_bot": true, "message_not_found": true,
	"cant_update_message": true, "edit_window_closed": true, "msg_too_long": true, "no_text": true,
	"invalid_blocks": true, "invalid_blocks_format": true, "invalid_metadata_format": true,
	"invalid_metadata_schema": true, "metadata_too_large": true, "restricted_action": true,
	"restricted_action_read_only_channel": true, "restricted_action_thread_only_channel": true,
	"restricted_action_non_threadable_channel": true, "team_access_not_granted": true,
	"ekm_access_denied": true, "channel_is_archived": true, "method_deprecated": true,
	"missing_scope": true, "not_allowed_token_type": true, "invalid_arguments": true,
}

// classify turns a Web API error into what the core reads: a 429 carries Retry-After, a
// permanent refusal is bot.Undeliverable, the rest (timeouts, 5xx, Slack's own failures,
// auth errors an operator can fix) is transient.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &rateLimited{err: rl}
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && permanentErrors[se.Err] {
		return bot.Undeliverable(err)
	}
	return err
}

// notPosted reports whether a failed post is known not to have been made: Slack answered
// (an error or a 429), or the pacer never sent it. A timeout or a transport error leaves
// the outcome unknown.
func notPosted(err error) bool {
	var rl *slack.RateLimitedError
	var se slack.SlackErrorResponse
	var pe *pacedError
	return errors.As(err, &rl) || errors.As(err, &se) || errors.As(err, &pe)
}

// errCode is Slack's error code in err, else its text.
func errCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return truncate(err.Error(), 200)
}

func isUserID(ch string) bool { return strings.HasPrefix(ch, "U") || strings.HasPrefix(ch, "W") }

// slackTS writes a time as Slack writes message timestamps ("1732800000.000100").
func slackTS(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%06d", t.Nanosecond()/1000)
}
