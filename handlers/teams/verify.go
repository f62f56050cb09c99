package teams

import (
	"context"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/pimbot/pimbot/bot"
)

// verifyAgain asks the engine for a fresh step-up sign-in for the person's own request
// waiting for MFA (the engine decides whether they may) and answers with a new MFA card.
// The link and the code are the requester's alone, so they are shown only in the personal
// chat, never in a channel's thread where everyone reads them.
func (s *Surface) verifyAgain(ctx context.Context, a bot.Actor, act *schema.Activity, v View, id string) actionResult {
	if !isPersonal(act) {
		return actionResult{message: "A sign-in link is yours alone: write verify " + truncateRunes(id, 20) + " in your personal chat with me."}
	}
	r, ch, err := s.eng.VerifyAgain(ctx, a, id)
	if err != nil {
		return say(err)
	}
	return actionResult{card: MFACard(v, r, ch, s.eng.Actions(ctx, a, r))}
}
