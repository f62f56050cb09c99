package teams

import (
	"context"

	"github.com/pimbot/pimbot/bot"
)

// offer asks the engine what the person may do with the request now, for a card's buttons.
func (s *Surface) offer(ctx context.Context, a bot.Actor, r *bot.Request) Offer {
	o := Offer{Actions: s.eng.Actions(ctx, a, r)}
	for _, act := range o.Actions {
		if act == bot.ActExtend {
			o.ExtendBy = s.eng.ExtensionDefault(r)
		}
	}
	return o
}

// actions asks the engine what the person may do with each request of a list, for the
// commands a status line suggests.
func (s *Surface) actions(ctx context.Context, a bot.Actor, rs []*bot.Request) map[string][]bot.Action {
	out := make(map[string][]bot.Action, len(rs))
	for _, r := range rs {
		out[r.ID] = s.eng.Actions(ctx, a, r)
	}
	return out
}

// requester is the requester of r acting in Teams, for what they are told in their chat.
func (s *Surface) requester(r *bot.Request) bot.Actor {
	return bot.Actor{User: r.Requester, Surface: Name}
}
