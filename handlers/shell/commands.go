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
	case bot.StateScheduled:
		if r.AutoApproval != nil {
			s.printf("Request %s submitted: %s %s; approved automatically by %s.\n", r.ID, r.What(), r.When(s.eng.Now(), s.loc), r.AutoApproval.Words())
			break
		}
		s.printf("Request %s submitted: %s %s; no approval needed.\n", r.ID, r.What(), r.When(s.eng.Now(), s.loc))
	default:
		s.printf("Request %s submitted: %s %s; no approval needed.\n", r.ID, r.What(), r.When(s.eng.Now(), s.loc))
	}
	return nil
}

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
	l := fmt.Sprintf("  request %s  %-22s %s", r.ID, r.StatusLabel(now), r.Status(now, s.loc))
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
		if g.AutoApprove != nil {
			approval += ", or at once when you are on call (up to " + bot.FormatDuration(g.AutoApprove.MaxDuration) + ")"
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

func (s *Shell) wait(ctx context.Context, arg string) {
	d, err := bot.ParseDuration(arg)
	if err != nil || d <= 0 || d > 10*time.Minute {
		s.printf("Usage: wait <duration>, up to 10m (e.g. wait 65s)\n")
		return
	}
	deadline := time.Now().Add(d)
	s.waiting.Store(true)
	defer s.waiting.Store(false)
	s.work.Unlock() // let the ticker run jobs while we wait
	defer s.work.Lock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-s.intr:
		s.printf("Stopped waiting.\n")
	}
}
