package slack

import (
	"context"
	"errors"
	"time"

	"github.com/slack-go/slack"
)

// Trigger-bound work: a trigger_id lives 3 s and works once, so the views.open it allows
// runs on its own lane (Surface.trig), never behind directory work in the slow queue. What
// may be slow (the directory, the engine) runs after a loading view opened, on the slow
// lane, and fills the view with views.update. If the form still cannot open in time, the
// person is told so privately instead of silence.
const (
	triggerLife = 3 * time.Second // Slack: "Triggers expire in three seconds"
	// triggerSafe is how old a trigger may be when views.open is tried: past it, the call
	// would reach Slack after the trigger expired.
	triggerSafe    = 2500 * time.Millisecond
	triggerTimeout = 5 * time.Second // one trigger-bound task
)

// trig is a trigger_id, when its request arrived, and where to say that it was too late.
type trig struct {
	ID       string
	Received time.Time
	Origin   origin
	Again    string // what the person does to try again, e.g. "run `/activate` again"
}

// onTrigger queues trigger-bound work on its own lane. A full lane (its memory budget
// spent) makes it wait up to admitWait; false when no room came or the surface stops.
func (s *Surface) onTrigger(name string, t trig, f func(ctx context.Context, t trig)) bool {
	ctx, cancel := context.WithTimeout(context.Background(), admitWait)
	defer cancel()
	if s.trig.submit(ctx, name, int64(len(t.ID)+len(t.Origin.ResponseURL)), func(ctx context.Context) { f(ctx, t) }) {
		return true
	}
	s.log.Warn("slack trigger lane out of memory budget or stopped; refusing", "task", name)
	return false
}

// openView opens a modal with the trigger while it is still alive. When the trigger is too
// old, or Slack says it expired or was used, the person is told privately that the form
// could not open in time; other refusals are told too. nil: nothing opened.
func (s *Surface) openView(ctx context.Context, t trig, what string, v slack.ModalViewRequest) *slack.ViewResponse {
	if time.Since(t.Received) > triggerSafe {
		s.triggerLate(t, what, "too old to try")
		return nil
	}
	resp, err := s.api.OpenViewContext(ctx, t.ID, fitView(v))
	if err == nil {
		return resp
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id", "trigger_expired", "trigger_exchanged":
			s.triggerLate(t, what, se.Err)
			return nil
		}
	}
	s.log.Warn("slack views.open failed", "what", what, "err", err)
	s.laterSized("say views.open failed", 0, func(ctx context.Context) {
		s.tellText(ctx, t.Origin, ":warning: Slack did not open the "+what+" ("+esc(err.Error())+"); nothing was changed. Please "+t.Again+".")
	})
	return nil
}

// triggerLate tells the person that the form could not open within Slack's 3 seconds.
func (s *Surface) triggerLate(t trig, what, why string) {
	s.log.Warn("slack trigger expired before views.open", "what", what, "why", why, "age", time.Since(t.Received).String())
	s.laterSized("say trigger expired", 0, func(ctx context.Context) {
		s.tellText(ctx, t.Origin, lateTriggerText(what, t.Again))
	})
}

func lateTriggerText(what, again string) string {
	return ":hourglass: Slack allows 3 seconds to open the " + what + ", and pimbot could not open it in time (it is handling many requests); nothing was changed. Please " + again + "."
}

// loadingView is opened at once while what the view shows is looked up.
func loadingView(title, text string) slack.ModalViewRequest {
	return infoModal(title, ":hourglass_flowing_sand: "+text)
}

// fillView replaces a view opened earlier (a loading view) with v.
func (s *Surface) fillView(ctx context.Context, opened *slack.ViewResponse, v slack.ModalViewRequest) {
	if opened == nil {
		return
	}
	if _, err := s.api.UpdateViewContext(ctx, fitView(v), "", opened.Hash, opened.ID); err != nil {
		s.log.Info("slack views.update of a loading view failed (closed or changed meanwhile)", "err", err)
	}
}
