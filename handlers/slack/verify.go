package slack

import (
	"context"
	"strings"
)

// verifyUsage answers "verify" without a request id.
const verifyUsage = "Usage: `/activate verify &lt;id&gt;`: a fresh Microsoft sign-in for your request waiting for MFA. `/activate status` lists your requests."

// verifyArg reads "verify <id>" (any case): ok says the text is a verify command, id is
// empty when it names no request.
func verifyArg(text string) (id string, ok bool) {
	word, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	if !strings.EqualFold(word, "verify") {
		return "", false
	}
	id, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
	return id, true
}

// dmOf is the person's DM with the bot, as a place to answer.
func dmOf(slackID string) origin { return origin{UserID: slackID, ChannelID: slackID, DM: true} }

// verifyAgain asks the engine for a fresh sign-in for the person's own request waiting for
// MFA (the engine decides whether they may) and sends a new MFA message to `to`. A refusal
// is told privately where they acted (o), and nothing changes.
func (s *Surface) verifyAgain(ctx context.Context, o, to origin, id string) {
	u, err := s.identify(ctx, o.UserID)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	r, ch, err := s.eng.VerifyAgain(ctx, s.actor(u), id)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	s.tell(ctx, to, mfaMessage(r, ch, "", s.eng.Actions(ctx, s.actor(u), r), s.now()))
}
