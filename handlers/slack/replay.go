package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// Replays (issue 13). A signed HTTP request stays valid while its timestamp is within 5
// minutes of our clock, so whoever captured one can send it again and have it act again
// (a second extension, a second request). Over Socket Mode nothing is signed, but Slack
// may send an envelope again, under a new envelope_id (retry_attempt set) and with the
// same payload, when it thinks the ack was lost. Both are met here, in the code both
// transports share (command, interaction): each slash command, click and view
// submission is claimed in the KV before it acts, and a request claimed already is
// acknowledged and does nothing.
//
// The key is the trigger_id of the request. Slack issues a fresh one with every slash
// command, click and view submission (a trigger "may only be used once"; the
// seratch/slack-edge typings of view_submission declare trigger_id required; not
// checked against live Slack), and it is inside the signed body, so a genuine action
// never repeats it and a replay or a retried envelope always does. Keys that look
// natural fail one way or the other:
//   - view.id + view.hash: the hash moves only when the view is updated (views.update
//     checks it so that only the latest view is overwritten); a submission refused with
//     response_action "errors" leaves the view as it was, so the person's corrected
//     submission would be taken for a replay (TestButtons_CancelDeactivateExtend and
//     TestSocketMode_SameCodeAsHTTP submit one view twice in just that way);
//   - the form's values: a genuine second action may carry the very same values
//     (`/activate sandbox for 1h` typed again after giving the grant up);
//   - the request signature: only the HTTP transport has one.
//
// Where Slack sends no trigger_id, the key falls back to the response_url of a slash
// command (also one per invocation), else to the whole payload.
const (
	// replayTTL outlasts every accepted copy: a timestamp is accepted up to 5 minutes
	// either side of our clock, so copies of one request may arrive up to 10 minutes
	// apart; 5 more cover the clocks of replicas that disagree.
	replayTTL = 15 * time.Minute
	// claimBudget bounds the claim, which comes before the ack Slack wants within 3 s.
	claimBudget = time.Second
	// queuedClaimBudget bounds the claim made by queued work (slash commands), which no
	// ack waits for: a burst keeps Redis busy for longer than a second.
	queuedClaimBudget = 10 * time.Second
)

// keyOnce marks a Slack request as handled. The id is hashed: a trigger_id still opens a
// view for 3 s, and keys stay short whatever a payload holds.
func keyOnce(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "slack:once:" + hex.EncodeToString(sum[:16])
}

// commandID names one slash-command invocation (see the comment at the top).
func commandID(cmd slack.SlashCommand) string {
	switch {
	case cmd.TriggerID != "":
		return "command|" + cmd.UserID + "|trigger|" + cmd.TriggerID
	case cmd.ResponseURL != "":
		return "command|" + cmd.UserID + "|response_url|" + cmd.ResponseURL
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return ""
	}
	return "command|" + cmd.UserID + "|body|" + string(b)
}

// interactionID names one click or view submission (see the comment at the top).
func interactionID(cb slack.InteractionCallback) string {
	prefix := string(cb.Type) + "|" + cb.User.ID
	if cb.TriggerID != "" {
		return prefix + "|trigger|" + cb.TriggerID
	}
	b, err := json.Marshal(&cb)
	if err != nil {
		return ""
	}
	return prefix + "|body|" + string(b)
}

// firstTime claims a Slack request (in the KV, so across replicas): true the first time
// it is seen within replayTTL, false for a copy (logged; the caller acknowledges it and does
// nothing). When the claim cannot be recorded the error says so in words for the person
// and the request is not handled: acting without the claim would let a replay through.
func (s *Surface) firstTime(ctx context.Context, kind, slackUser, id string) (bool, error) {
	return s.firstTimeWithin(ctx, claimBudget, kind, slackUser, id)
}

// firstTimeWithin is firstTime with its own budget.
func (s *Surface) firstTimeWithin(ctx context.Context, budget time.Duration, kind, slackUser, id string) (bool, error) {
	if id == "" {
		s.log.Warn("slack request has nothing to tell it from a replay; handling it", "kind", kind, "user", slackUser)
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	fresh, err := s.kv.PutIfAbsent(ctx, keyOnce(id), "1", replayTTL)
	if err != nil {
		s.log.Warn("slack request dedupe unavailable; refusing it", "kind", kind, "user", slackUser, "err", err)
		return false, fmt.Errorf("record slack %s: %w", kind, bot.Unavailable("the database (Redis)", err))
	}
	if !fresh {
		s.log.Info("slack request seen already (a replay or a retried delivery); acknowledged, not acted on", "kind", kind, "user", slackUser)
	}
	return fresh, nil
}
