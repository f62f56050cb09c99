package shell

import (
	"slices"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// A round of jobs (one Engine.RunDue) runs the jobs of different requests at once, so their
// notifications arrive in no particular order. The shell holds what a round tells and prints
// it when the round is done, in the order things happened: by the time of the event, then
// in the order of a request's life (an extension is approved before its grant is extended),
// then oldest request first. Notifications outside a round print at once.

// lifecycle is the order of events in a request's life; others come after them.
var lifecycle = []string{
	bot.EvMFARequired, bot.EvSubmitted, bot.EvApprovalAdded, bot.EvApproved, bot.EvDenied,
	bot.EvCanceled, bot.EvTimedOut, bot.EvDelayed, bot.EvActivated, bot.EvExtended,
	bot.EvReminder, bot.EvFailed, bot.EvRemovalFailing, bot.EvEnded,
}

// tale is what one event tells, held until its round is done.
type tale struct {
	at, created time.Time
	step        int
	id, text    string
}

// told prints text, what ev tells, now or when the round under way is done.
func (s *Shell) told(ev bot.Event, text string) {
	if text == "" {
		return
	}
	s.roundMu.Lock()
	if s.round != nil {
		t := tale{at: ev.At, step: len(lifecycle), text: text}
		if i := slices.Index(lifecycle, ev.Type); i >= 0 {
			t.step = i
		}
		if ev.Request != nil {
			t.created, t.id = ev.Request.CreatedAt, ev.Request.ID
		}
		*s.round = append(*s.round, t)
		s.roundMu.Unlock()
		return
	}
	s.roundMu.Unlock()
	s.printf("%s", text)
}

// runRound runs the jobs due now, as one round; n is how many ran.
func (s *Shell) runRound(run func() (int, error)) (n int, err error) {
	var tales []tale
	s.roundMu.Lock()
	s.round = &tales
	s.roundMu.Unlock()
	defer func() {
		s.roundMu.Lock()
		s.round = nil
		s.roundMu.Unlock()
		slices.SortStableFunc(tales, func(a, b tale) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			if a.step != b.step {
				return a.step - b.step
			}
			if c := a.created.Compare(b.created); c != 0 {
				return c
			}
			return strings.Compare(a.id, b.id)
		})
		for _, t := range tales {
			s.printf("%s", t.text)
		}
	}()
	return run()
}
