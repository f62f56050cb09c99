package shell

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
)

func (s *Shell) activate(ctx context.Context, rest string) {
	switch strings.ToLower(rest) {
	case "":
		s.wizard(ctx)
		return
	case "help":
		s.printf("%s", help)
		return
	case "status":
		s.status(ctx, "")
		return
	}
	q, err := bot.ParseQuick(rest, s.eng.Now(), s.loc)
	if err != nil {
		s.printf("%s\nUsage: /activate %s\n", bot.Describe(err), bot.QuickUsage)
		return
	}
	s.submit(ctx, q.Input())
}

func (s *Shell) submit(ctx context.Context, in bot.SubmitInput) error {
	r, err := s.eng.Submit(ctx, s.actor(), in)
	if err != nil {
		s.printf("%s\n", bot.Describe(err))
		return err
	}
	s.last = r.ID
	switch r.State {
	case bot.StateVerifying:
		s.printf("Request %s submitted: %s %s; first, verify with Microsoft (MFA).\n", r.ID, r.What(), r.When(s.eng.Now(), s.loc))
	case bot.StatePending:
		s.printf("Request %s submitted: %s %s, waiting for approval.\n", r.ID, r.What(), r.When(s.eng.Now(), s.loc))
	default:
		s.printf("Request %s submitted: %s %s; no approval needed.\n", r.ID, r.What(), r.When(s.eng.Now(), s.loc))
	}
	return nil
}

// wizard asks for the form's fields one at a time, like the Slack modal.
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
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.Name
	}
	ask := func(question, def string) (string, bool) {
		if def != "" {
			s.printf("%s [%s]: ", question, def)
		} else {
			s.printf("%s: ", question)
		}
		if !s.opt.Interactive {
			s.printf("\n")
		}
		line, ok := s.next()
		if !ok || strings.EqualFold(line, "cancel") {
			s.printf("Nothing was requested.\n")
			return "", false
		}
		if line == "" {
			line = def
		}
		return line, true
	}
	var in bot.SubmitInput
	var g *bot.Group
	var askField func(string) bool
	askField = func(field string) bool {
		switch field {
		case bot.FieldGroup:
			def := ""
			if len(names) == 1 {
				def = names[0]
			}
			v, ok := ask("Group ("+strings.Join(names, ", ")+")", def)
			if !ok {
				return false
			}
			in.Group = v
			g, _ = s.eng.Policy().Group(v)
		case bot.FieldAccess:
			if g == nil || len(g.Access) < 2 {
				return true
			}
			v, ok := ask("Member or owner", string(g.Access[0]))
			if !ok {
				return false
			}
			in.Access, _ = bot.ParseAccess(v)
			if in.Access == "" {
				in.Access = bot.Access(v) // the engine names the allowed kinds
			}
		case bot.FieldDuration:
			def, hint := "", ""
			if g != nil {
				def = bot.FormatDuration(g.DefaultDuration)
				hint = fmt.Sprintf(" (%s to %s)", bot.FormatDuration(g.MinDuration), bot.FormatDuration(g.MaxDuration))
			}
			v, ok := ask("Duration"+hint, def)
			if !ok {
				return false
			}
			d, err := bot.ParseDuration(v)
			if err != nil {
				s.printf("%s\n", bot.Describe(&bot.FieldError{Field: field, Message: err.Error()}))
				return s.retry(field, askField)
			}
			in.Duration = d
		case bot.FieldStart:
			v, ok := ask("Start (now, 14:30, +30m or 2026-12-01 09:00)", "now")
			if !ok {
				return false
			}
			t, err := bot.ParseTime(v, s.eng.Now(), s.loc)
			if err != nil {
				s.printf("%s\n", bot.Describe(&bot.FieldError{Field: field, Message: err.Error()}))
				return s.retry(field, askField)
			}
			in.Start = t
		case bot.FieldReason:
			q := "Reason (optional)"
			if g == nil || g.RequireJustification {
				q = "Reason"
			}
			v, ok := ask(q, "")
			if !ok {
				return false
			}
			in.Reason = v
		case bot.FieldTicket:
			if g == nil || !g.RequireTicket {
				return true
			}
			v, ok := ask("Ticket", "")
			if !ok {
				return false
			}
			in.Ticket = v
		}
		return true
	}
	for _, f := range []string{bot.FieldGroup, bot.FieldAccess, bot.FieldDuration, bot.FieldStart, bot.FieldReason, bot.FieldTicket} {
		if !askField(f) {
			return
		}
	}
	for tries := 0; tries < 5; tries++ {
		err := s.submit(ctx, in)
		var fe *bot.FieldError
		if !errors.As(err, &fe) {
			return
		}
		if !askField(fe.Field) {
			return
		}
	}
}

func (s *Shell) retry(field string, askField func(string) bool) bool { return askField(field) }

func (s *Shell) status(ctx context.Context, id string) {
	id = strings.TrimSpace(id)
	if id != "" {
		r, err := s.eng.Get(ctx, s.actor(), id)
		if err != nil {
			s.printf("%s\n", bot.Describe(err))
			return
		}
		s.printf("%s\n", s.line(r, s.eng.Actions(ctx, s.actor(), r)))
		return
	}
	rs, err := s.eng.List(ctx, s.actor(), 20)
	if err != nil {
		s.printf("%s\n", bot.Describe(err))
		return
	}
	if len(rs) == 0 {
		s.printf("You have no requests. /activate <group> to ask for access; groups lists yours.\n")
		return
	}
	for _, r := range rs {
		s.printf("%s\n", s.line(r, s.eng.Actions(ctx, s.actor(), r)))
	}
}

// line is one request in words, with the commands of what the engine offers the person (acts).
func (s *Shell) line(r *bot.Request, acts []bot.Action) string {
	now := s.eng.Now()
	l := fmt.Sprintf("  request %s  %-22s %s", r.ID, r.State.Label(), r.What())
	if w := r.When(now, s.loc); w != "" && r.State != bot.StateActive && r.State != bot.StateEnded {
		l += " " + w
	}
	switch r.State {
	case bot.StatePending:
		l += fmt.Sprintf(" (%d of %d approvals)", len(r.Approvals), r.ApprovalsRequired)
	case bot.StateActive:
		l += ", until " + bot.FormatTime(r.EndsAt, now, s.loc)
	case bot.StateDenied:
		if r.DenyReason != "" {
			l += ": " + r.DenyReason
		}
	case bot.StateEnded, bot.StateCanceled, bot.StateTimedOut, bot.StateFailed:
		if r.EndReason != "" {
			l += " (" + r.EndReason + ")"
		}
	}
	if h := hints(r.ID, acts); h != "" {
		l += "  " + h
	}
	return l
}

// verify asks the engine for a fresh sign-in for the person's own request waiting for MFA
// (after a refused sign-in, or a device code that failed or ran out), and prints it as the
// requester is told it when the request is made.
func (s *Shell) verify(ctx context.Context, rest string) {
	if rest == "" {
		s.printf("Usage: verify <id>\n")
		return
	}
	r, ch, err := s.eng.VerifyAgain(ctx, s.actor(), firstWord(rest))
	if err != nil {
		s.printf("%s\n", bot.Describe(err))
		return
	}
	s.last = r.ID
	s.tell(s.short(r.Requester), "%s%s", challengeText(r, ch, s.eng.Now()), offer(r, s.eng.Actions(ctx, s.actor(), r)))
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(strings.TrimSpace(s), " ")
	return w
}

func (s *Shell) groups(ctx context.Context) {
	gs, err := s.eng.EligibleGroups(ctx, s.me)
	if err != nil {
		s.printf("%s\n", bot.Describe(errors.Join(bot.ErrUnavailable, err)))
		return
	}
	if len(gs) == 0 {
		s.printf("You are not eligible for any group.\n")
		return
	}
	for _, g := range gs {
		approval := "no approval needed"
		if g.RequireApproval {
			approval = "approval by " + strings.Join(g.Approvers, ", ")
		}
		s.printf("  %-20s %s, %s to %s, %s\n", g.Name, joinAccess(g.Access), bot.FormatDuration(g.MinDuration), bot.FormatDuration(g.MaxDuration), approval)
	}
}

func joinAccess(xs []bot.Access) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, "/")
}

func (s *Shell) extend(ctx context.Context, rest string) {
	id, rest, _ := strings.Cut(rest, " ")
	if id == "" {
		s.printf("Usage: extend <id> [for <duration>] [<reason>]\n")
		return
	}
	rest = strings.TrimSpace(rest)
	var d time.Duration
	if after, ok := strings.CutPrefix(rest, "for "); ok {
		q, err := bot.ParseQuick("x for "+after, s.eng.Now(), s.loc)
		if err != nil {
			s.printf("%s\n", bot.Describe(err))
			return
		}
		d, rest = q.Duration, q.Reason
	}
	r, err := s.eng.Extend(ctx, s.actor(), id, d, rest)
	if err != nil {
		s.printf("%s\n", bot.Describe(err))
		return
	}
	s.last = r.ID
	if r.State == bot.StatePending {
		s.printf("Extension %s submitted: %s, waiting for approval.\n", r.ID, r.What())
	} else {
		s.printf("Extension %s applied: %s.\n", r.ID, r.What())
	}
}

func (s *Shell) members(ctx context.Context, name string) {
	g, ok := s.eng.Policy().Group(name)
	if !ok {
		s.printf("There is no group %q; groups: %s.\n", name, strings.Join(s.eng.Policy().GroupNames(), ", "))
		return
	}
	if s.opt.Local == nil {
		s.printf("This directory cannot list members.\n")
		return
	}
	for _, a := range g.Access {
		hs, err := s.opt.Local.Holders(ctx, g.ID, a)
		if err != nil {
			s.printf("%s\n", bot.Describe(errors.Join(bot.ErrUnavailable, err)))
			return
		}
		names := make([]string, len(hs))
		for i, h := range hs {
			names[i] = h.Handle()
		}
		if len(names) == 0 {
			names = []string{"(nobody)"}
		}
		s.printf("%s %ss: %s\n", g.Name, a, strings.Join(names, ", "))
	}
}
