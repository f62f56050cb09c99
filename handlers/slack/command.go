package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// command handles /activate. It returns the immediate answer (nil: an empty ack) and
// leaves everything slow to the workers, without a round trip to Redis first, so that a
// burst is acknowledged at once. The queued work claims the invocation before acting: one
// seen already (a replayed request, a retried envelope) does nothing (replay.go).
func (s *Surface) command(ctx context.Context, cmd slack.SlashCommand) any {
	received := time.Now()
	o := origin{UserID: cmd.UserID, ChannelID: cmd.ChannelID, ResponseURL: cmd.ResponseURL}
	once := func(f func(ctx context.Context)) func(ctx context.Context) {
		return func(ctx context.Context) {
			fresh, err := s.firstTimeWithin(ctx, queuedClaimBudget, "slash command", cmd.UserID, commandID(cmd))
			if err != nil {
				s.tellErr(ctx, o, err)
				return
			}
			if fresh {
				f(ctx)
			}
		}
	}
	text := strings.TrimSpace(cmd.Text)
	switch strings.ToLower(text) {
	case "":
		t := trig{ID: cmd.TriggerID, Received: received, Origin: o, Again: "run `/activate` again"}
		if !s.onTrigger("open activation form", t, func(ctx context.Context, t trig) {
			once(func(ctx context.Context) { s.openActivate(ctx, t, cmd.UserID, "") })(ctx)
		}) {
			return ephemeralText(busyText)
		}
		return nil
	case "help", "?":
		return ephemeralText(helpText)
	case "unlink":
		if !s.later("unlink", once(func(ctx context.Context) { s.unlink(ctx, o) })) {
			return ephemeralText(busyText)
		}
		return nil
	case "status", "my requests", "list":
		if !s.later("status", once(func(ctx context.Context) { s.sendStatus(ctx, o) })) {
			return ephemeralText(busyText)
		}
		return nil
	case "pending", "inbox":
		if !s.later("inbox", once(func(ctx context.Context) { s.sendInbox(ctx, o) })) {
			return ephemeralText(busyText)
		}
		return nil
	}
	if id, ok := verifyArg(text); ok {
		if id == "" {
			return ephemeralText(verifyUsage)
		}
		if !s.later("verify again", once(func(ctx context.Context) { s.verifyAgain(ctx, o, o, id) })) {
			return ephemeralText(busyText)
		}
		return nil
	}
	q, err := bot.ParseQuick(text, s.now(), s.loc())
	if err != nil {
		return ephemeralText(":warning: " + say(err) + "\nUsage: `/activate " + esc(bot.QuickUsage) + "` — or `/activate` alone for the form.")
	}
	if !s.laterSized("quick submit", int64(len(cmd.Text)+len(cmd.ResponseURL)), once(func(ctx context.Context) { s.quickSubmit(ctx, o, q) })) {
		return ephemeralText(busyText)
	}
	return nil
}

// openActivate opens the activation form (on the trigger lane). The trigger lasts 3 s, so
// nothing slow happens first: with the person and their groups in the cache the form
// opens at once; otherwise a loading view opens, and the slow lane replaces it once the
// directory answered.
func (s *Surface) openActivate(ctx context.Context, t trig, slackID, preselect string) {
	now := s.now()
	fctx, cancel := context.WithTimeout(ctx, fastPathBudget)
	u, ok := s.cachedUser(fctx, slackID)
	var groups []*bot.Group
	if ok {
		groups, ok = s.cachedEligible(fctx, u)
	}
	cancel()
	if ok {
		s.openView(ctx, t, "activation form", activateModal(activateForm{Groups: groups, Selected: pick(groups, preselect), Opened: now}))
		return
	}
	v := s.openView(ctx, t, "activation form", loadingModal())
	if v == nil {
		return
	}
	if !s.later("fill activation form", func(ctx context.Context) { s.fillActivate(ctx, v, slackID, preselect, now) }) {
		s.fillView(ctx, v, infoModal("Activate access", ":warning: "+busyText))
	}
}

// fillActivate replaces the loading view with the form once the directory answered.
func (s *Surface) fillActivate(ctx context.Context, v *slack.ViewResponse, slackID, preselect string, now time.Time) {
	var view slack.ModalViewRequest
	if u, err := s.identify(ctx, slackID); err != nil {
		view = infoModal("Activate access", ":warning: "+say(err))
	} else if groups, err := s.eligible(ctx, u); err != nil {
		view = infoModal("Activate access", ":warning: "+say(err))
	} else {
		view = activateModal(activateForm{Groups: groups, Selected: pick(groups, preselect), Opened: now})
	}
	s.fillView(ctx, v, view)
}

// pick finds a group by name among the choices (nil: none or not there).
func pick(groups []*bot.Group, name string) *bot.Group {
	for _, g := range groups {
		if name != "" && strings.EqualFold(g.Name, name) {
			return g
		}
	}
	return nil
}

// quickSubmit submits the quick form and says what came of it.
func (s *Surface) quickSubmit(ctx context.Context, o origin, q bot.Quick) {
	u, err := s.identify(ctx, o.UserID)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	r, err := s.eng.Submit(ctx, s.actor(u), q.Input())
	if err != nil {
		var fe *bot.FieldError
		if errors.As(err, &fe) {
			s.tellText(ctx, o, ":warning: "+say(err)+"\nUsage: `/activate "+esc(bot.QuickUsage)+"`")
			return
		}
		s.tellErr(ctx, o, err)
		return
	}
	s.tellText(ctx, o, submittedText(r, s.groupOf(r), s.now(), s.loc()))
}

func submittedText(r *bot.Request, g *bot.Group, now time.Time, loc *time.Location) string {
	text := fmt.Sprintf(":white_check_mark: Request `%s` submitted: *%s* %s", r.ID, esc(r.What()), esc(r.When(now, loc)))
	if r.State == bot.StateVerifying {
		return text + "; next, verify with Microsoft (MFA): the link is on its way in a direct message."
	}
	if r.State == bot.StatePending {
		if g != nil {
			return text + ", waiting for approval by " + approverList(g) + "."
		}
		return text + ", waiting for approval."
	}
	return text + "; no approval needed."
}

func (s *Surface) groupOf(r *bot.Request) *bot.Group {
	g, _ := s.eng.Policy().Group(r.GroupID)
	return g
}

// sendStatus lists the person's requests with their buttons.
func (s *Surface) sendStatus(ctx context.Context, o origin) {
	u, err := s.identify(ctx, o.UserID)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	rs, err := s.eng.List(ctx, s.actor(u), listLimit)
	if err != nil {
		s.tellErr(ctx, o, err)
		return
	}
	s.tell(ctx, o, msg{Text: "Your requests", Blocks: statusBlocks(rs, s.actions(ctx, u, rs), s.now(), s.loc())})
}
