package slack

import (
	"context"

	"github.com/pimbot/pimbot/bot"
)

// actions asks the engine what the person may do with each of their requests, for the
// buttons of a list.
func (s *Surface) actions(ctx context.Context, u bot.User, rs []*bot.Request) map[string][]bot.Action {
	out := make(map[string][]bot.Action, len(rs))
	for _, r := range rs {
		out[r.ID] = s.eng.Actions(ctx, s.actor(u), r)
	}
	return out
}

// requesterActions is what the engine offers the requester, for the buttons of the direct
// messages that tell them how their request moves on.
func (s *Surface) requesterActions(ctx context.Context, r *bot.Request) []bot.Action {
	return s.eng.Actions(ctx, s.actor(r.Requester), r)
}
