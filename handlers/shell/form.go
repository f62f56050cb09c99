package shell

import (
	"context"
	"errors"
	"strings"

	"github.com/pimbot/pimbot/bot"
)

// The guided form: `/activate` alone asks for the fields one at a time, like the Slack
// modal, and checks each answer as it is given; `cancel` at any question leaves it.

// formTries bounds how often one question is asked again, and the form submitted again.
const formTries = 5

// wizard runs the guided form for the person.
func (s *Shell) wizard(ctx context.Context) {
	groups, err := s.eng.EligibleGroups(ctx, s.me)
	if err != nil {
		s.printf("%s\n", bot.Describe(errors.Join(bot.ErrUnavailable, err)))
		return
	}
	if len(groups) == 0 {
		s.printf("You are not eligible for any group. Ask your administrators to add you to the policy.\n")
		return
	}
	f := &form{s: s, groups: groups}
	for _, field := range []string{bot.FieldGroup, bot.FieldAccess, bot.FieldDuration, bot.FieldStart, bot.FieldReason, bot.FieldTicket} {
		if !f.ask(ctx, field) {
			return
		}
	}
	for tries := 0; tries < formTries; tries++ {
		err := s.submit(ctx, f.in)
		var fe *bot.FieldError
		if !errors.As(err, &fe) || !f.ask(ctx, fe.Field) {
			return
		}
	}
}

// form is one run of the guided form: the groups offered, the answers so far.
type form struct {
	s      *Shell
	groups []*bot.Group
	g      *bot.Group // the group chosen
	in     bot.SubmitInput
	asked  bool // a question was asked already (the first one says how to leave)
}

func (f *form) names() []string {
	names := make([]string, len(f.groups))
	for i, g := range f.groups {
		names[i] = g.Name
	}
	return names
}

// prompt asks one question and reads the answer; false: the person left the form (cancel;
// Ctrl-C or SIGINT; the end of input: Ctrl-D leaves the form only, and the prompt then reads
// on, or exits if the input has truly ended). A line too long is refused and the question
// asked again. An empty answer is def.
func (f *form) prompt(ctx context.Context, question, def string) (string, bool) {
	if def != "" {
		question += " [" + def + "]"
	}
	if !f.asked {
		question += ", or cancel to leave the form"
		f.asked = true
	}
	line, err := f.s.next(ctx, question+": ", true)
	var long tooLongError
	for errors.As(err, &long) {
		f.s.printf("%s\n", long.refusal())
		line, err = f.s.next(ctx, question+": ", true)
	}
	switch {
	case errors.Is(err, errInterrupt), errors.Is(err, errLineCanceled):
		f.s.printf("Canceled: nothing was requested.\n")
		return "", false
	case err != nil, strings.EqualFold(line, "cancel"):
		f.s.printf("Nothing was requested.\n")
		return "", false
	}
	if line == "" {
		line = def
	}
	return line, true
}

// ask asks for one field until the answer is accepted; false: the form is left.
func (f *form) ask(ctx context.Context, field string) bool {
	for tries := 0; tries < formTries; tries++ {
		refusal, ok := f.answer(ctx, field)
		if !ok {
			return false
		}
		if refusal == "" {
			return true
		}
		f.s.printf("%s\n", refusal)
	}
	f.s.printf("Nothing was requested.\n")
	return false
}

// answer asks for field once: ok false when the person left, else the refusal of the answer
// ("" when it was taken).
func (f *form) answer(ctx context.Context, field string) (refusal string, ok bool) {
	g := f.g
	switch field {
	case bot.FieldGroup:
		names := f.names()
		def := ""
		if len(names) == 1 {
			def = names[0]
		}
		v, ok := f.prompt(ctx, "Group ("+strings.Join(names, ", ")+")", def)
		if !ok {
			return "", false
		}
		chosen := f.pick(v)
		if chosen == nil {
			if pg, exists := f.s.eng.Policy().Group(v); exists {
				return bot.Describe(&bot.FieldError{Field: field, Message: "you are not eligible for " + pg.Name +
					"; you can activate: " + strings.Join(names, ", ")}), true
			}
			return bot.Describe(bot.NoSuchGroup(v, names)), true
		}
		f.g, f.in.Group = chosen, chosen.Name
	case bot.FieldAccess:
		if g == nil || len(g.Access) < 2 {
			return "", true
		}
		v, ok := f.prompt(ctx, "Member or owner", string(g.Access[0]))
		if !ok {
			return "", false
		}
		a, known := bot.ParseAccess(v)
		if !known || !g.Allows(a) {
			return "Say member or owner.", true
		}
		f.in.Access = a
	case bot.FieldDuration:
		if g == nil {
			return "", true
		}
		v, ok := f.prompt(ctx, "Duration ("+g.DurationRange()+")", bot.FormatDuration(g.DefaultDuration))
		if !ok {
			return "", false
		}
		d, err := g.ReadDuration(v)
		if err != nil {
			return bot.Describe(err), true
		}
		f.in.Duration = d
	case bot.FieldStart:
		v, ok := f.prompt(ctx, "Start (now, 14:30, +30m or 2026-12-01 09:00)", "now")
		if !ok {
			return "", false
		}
		t, err := bot.ParseTime(v, f.s.eng.Now(), f.s.loc)
		if err != nil {
			return bot.Describe(&bot.FieldError{Field: field, Message: err.Error()}), true
		}
		f.in.Start = t
	case bot.FieldReason:
		q := "Reason (optional)"
		if g == nil || g.RequireJustification {
			q = "Reason"
		}
		v, ok := f.prompt(ctx, q, "")
		if !ok {
			return "", false
		}
		f.in.Reason = v
	case bot.FieldTicket:
		if g == nil || !g.RequireTicket {
			return "", true
		}
		v, ok := f.prompt(ctx, "Ticket", "")
		if !ok {
			return "", false
		}
		f.in.Ticket = v
	}
	return "", true
}

// pick finds the group named (or identified) v among those offered; nil: none of them.
func (f *form) pick(v string) *bot.Group {
	pg, ok := f.s.eng.Policy().Group(v)
	if !ok {
		return nil
	}
	for _, g := range f.groups {
		if g == pg {
			return g
		}
	}
	return nil
}
