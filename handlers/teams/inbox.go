package teams

import (
	"context"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/pimbot/pimbot/bot"
)

// inboxCommand answers pending (or inbox): in the personal chat only, since the list shows
// other people's requests and reasons, which a channel's members may not all be meant to see.
func (s *Surface) inboxCommand(ctx context.Context, a bot.Actor, act *schema.Activity, v View) (Card, string) {
	if !isPersonal(act) {
		return MessageCard("Ask me in our personal chat", "pending lists other people's requests; type it in your personal chat with me.", toneDefault), ""
	}
	return s.inbox(ctx, a, v, "")
}

// inbox is the card of what waits for the person's decision, with note on top (what came of
// their last click on it), and its plain-text summary.
func (s *Surface) inbox(ctx context.Context, a bot.Actor, v View, note string) (Card, string) {
	rs, err := s.eng.Inbox(ctx, a)
	if err != nil {
		return MessageCard("That did not work", bot.Describe(err), toneAttention), ""
	}
	shown := rs[:min(len(rs), maxInboxCard)]
	summary := "Nothing is waiting for your approval"
	if len(rs) > 0 {
		summary = "Waiting for your approval"
	}
	return InboxCard(v, rs, s.actions(ctx, a, shown), note), summary
}
