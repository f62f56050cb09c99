package slack

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// origin is where a person acted, so that the answer goes back there privately.
type origin struct {
	UserID      string
	ChannelID   string
	ResponseURL string // slash commands and message buttons
	DM          bool   // the person wrote in their DM with the bot: answer there, not ephemerally
}

var slackHooks = []string{"https://hooks.slack.com/", "https://hooks.slack-gov.com/"}

// responseURLAllowed keeps the surface from posting to arbitrary URLs named in a payload.
func (s *Surface) responseURLAllowed(u string) bool {
	if u == "" {
		return false
	}
	for _, p := range slackHooks {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	for _, p := range s.opt.ResponseURLPrefixes {
		if p != "" && strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

func msgOptions(m msg) []slack.MsgOption {
	m = fitMessage(m) // Block Kit's limits, in one place (limits.go)
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	return opts
}

// tell answers the person who acted, privately: in their DM with the bot, through the
// response_url (ephemeral), as an ephemeral message in the channel, or else as a DM.
func (s *Surface) tell(ctx context.Context, o origin, m msg) {
	if m.Text == "" && len(m.Blocks) == 0 {
		return
	}
	if ctx.Err() != nil { // the work ran out of time: still say so
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), replyBudget)
		defer cancel()
	}
	var err error
	switch {
	case o.DM && o.ChannelID != "":
		_, _, err = s.postMessage(ctx, o.ChannelID, msgOptions(m)...)
	case s.responseURLAllowed(o.ResponseURL):
		opts := append(msgOptions(m), slack.MsgOptionResponseURL(o.ResponseURL, slack.ResponseTypeEphemeral))
		_, _, err = s.api.PostMessageContext(ctx, o.ChannelID, opts...)
	case o.ChannelID != "" && o.UserID != "":
		_, err = s.api.PostEphemeralContext(ctx, o.ChannelID, o.UserID, msgOptions(m)...)
		if err != nil && !retryable(err) { // not in that channel: say it in the DM instead
			_, _, err = s.postMessage(ctx, o.UserID, msgOptions(m)...)
		}
	case o.UserID != "":
		_, _, err = s.postMessage(ctx, o.UserID, msgOptions(m)...)
	default:
		return
	}
	if err != nil {
		s.log.Warn("slack reply failed", "user", o.UserID, "err", err)
	}
}

// tellText answers with a line of mrkdwn (already escaped where people typed it).
func (s *Surface) tellText(ctx context.Context, o origin, text string) {
	s.tell(ctx, o, msg{Text: text, Blocks: []slack.Block{section(text)}})
}

// tellErr answers with what went wrong, in words, escaped.
func (s *Surface) tellErr(ctx context.Context, o origin, err error) {
	s.tellText(ctx, o, ":warning: "+say(err))
}

// retryable reports whether a Slack call may succeed if tried again later.
func retryable(err error) bool {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return true
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return true
		}
		return false
	}
	return true // transport errors, timeouts, 5xx
}

// ephemeral is an immediate answer to a slash command.
type ephemeral struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

func ephemeralText(text string) *ephemeral {
	return &ephemeral{ResponseType: slack.ResponseTypeEphemeral, Text: text}
}

// replyBudget bounds a reply sent after the work it answers ran out of time.
const replyBudget = 5 * time.Second

const busyText = "pimbot is busy right now; please try again in a moment."
