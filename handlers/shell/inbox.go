package shell

import (
	"context"
	"fmt"

	"github.com/pimbot/pimbot/bot"
)

// inbox lists the requests waiting for the person's decision (bot.Engine.Inbox), oldest
// first, each with the commands of what the engine offers them, as the status lines do.
func (s *Shell) inbox(ctx context.Context) {
	a := s.actor()
	rs, err := s.eng.Inbox(ctx, a)
	if err != nil {
		s.printf("%s\n", bot.Describe(err))
		return
	}
	if len(rs) == 0 {
		s.printf("Nothing is waiting for your approval.\n")
		return
	}
	s.printf("Waiting for your approval (%d), oldest first:\n", len(rs))
	for _, r := range rs {
		s.printf("%s\n", s.inboxLine(r, s.eng.Actions(ctx, a, r)))
	}
	s.last = rs[len(rs)-1].ID
}

// inboxLine is one waiting request for an approver: who asks for what and when, why, and
// the commands of the actions the engine offers (acts).
func (s *Shell) inboxLine(r *bot.Request, acts []bot.Action) string {
	now := s.eng.Now()
	who := printable(r.Requester.Display())
	if h := printable(r.Requester.Handle()); h != who {
		who += " (" + h + ")"
	}
	l := fmt.Sprintf("  request %s  %s asks for %s", r.ID, who, r.What())
	if w := r.When(now, s.loc); w != "" {
		l += " " + w
	}
	if r.Unreviewed() {
		l = fmt.Sprintf("  request %s  %s got %s, approved automatically by %s (%s); review it", r.ID, who, r.What(), r.AutoApproval.Words(), r.State.Label())
	}
	l += ", asked " + bot.FormatTime(r.CreatedAt, now, s.loc) + "."
	if r.Reason != "" {
		l += fmt.Sprintf(" Reason: %q.", r.Reason)
	}
	if r.Ticket != "" {
		l += fmt.Sprintf(" Ticket: %q.", r.Ticket)
	}
	if !r.MFAVerifiedAt.IsZero() {
		l += " Passed MFA at " + bot.FormatTime(r.MFAVerifiedAt, now, s.loc) + "."
	}
	if r.ApprovalsRequired > 1 {
		l += fmt.Sprintf(" %d of %d approvals.", len(r.Approvals), r.ApprovalsRequired)
	}
	if h := hints(r.ID, acts); h != "" {
		l += "  " + h
	}
	return l
}
