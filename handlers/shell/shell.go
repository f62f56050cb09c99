// Package shell is the terminal surface: one person plays every role (`as bob`), types the
// same commands as in Slack or Teams, and sees what each person would be told.
package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Options tune the shell.
type Options struct {
	Interactive bool             // print prompts (a terminal); piped scripts get none
	Local       bot.MemberLister // answers `members <group>`; nil: the engine's directory if it can list
	Tick        time.Duration    // how often due jobs run between commands; default 200ms
}

// Shell is the terminal surface and its notifier.
type Shell struct {
	eng  *bot.Engine
	in   *bufio.Scanner
	out  io.Writer
	opt  Options
	mu   sync.Mutex // serializes output
	work sync.Mutex // serializes commands and job runs
	me   bot.User
	loc  *time.Location
	last string // the newest request id seen; `last` stands for it in commands
}

var _ bot.Notifier = (*Shell)(nil)

// New builds a shell reading commands from in and printing to out.
func New(eng *bot.Engine, in io.Reader, out io.Writer, opt Options) *Shell {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	if opt.Tick <= 0 {
		opt.Tick = 200 * time.Millisecond
	}
	if opt.Local == nil {
		opt.Local, _ = eng.Directory().(bot.MemberLister)
	}
	return &Shell{eng: eng, in: sc, out: out, opt: opt, loc: eng.Policy().Settings.Timezone}
}

// Name is the notifier's name.
func (s *Shell) Name() string { return "shell" }

func (s *Shell) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format, args...)
}

func (s *Shell) prompt() {
	if s.opt.Interactive {
		s.printf("%s> ", s.short(s.me))
	}
}

func (s *Shell) short(u bot.User) string {
	if local, _, ok := strings.Cut(u.Email, "@"); ok {
		return local
	}
	return u.Handle()
}

// Run reads commands until quit or the end of input, running due jobs in between.
func (s *Shell) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.pickFirstUser(ctx); err != nil {
		return err
	}
	s.printf("pimbot shell: policy %s, groups: %s.\nYou are %s (%s). Type `help` for commands, `as <user>` to become someone else.\n",
		s.eng.Policy().Source, strings.Join(s.eng.Policy().GroupNames(), ", "), s.me.Handle(), s.me.Display())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // expiries and reminders happen while you type
		defer wg.Done()
		t := time.NewTicker(s.opt.Tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.work.Lock()
				s.drain(ctx)
				s.work.Unlock()
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	for {
		s.prompt()
		line, ok := s.next()
		if !ok || ctx.Err() != nil {
			s.work.Lock()
			s.drain(ctx)
			s.work.Unlock()
			return nil
		}
		s.work.Lock()
		quit := s.handle(ctx, line)
		s.drain(ctx)
		s.work.Unlock()
		if quit {
			return nil
		}
	}
}

func (s *Shell) next() (string, bool) {
	if !s.in.Scan() {
		return "", false
	}
	line := strings.TrimSpace(s.in.Text())
	if !s.opt.Interactive && line != "" {
		s.printf("%s> %s\n", s.short(s.me), line) // echo, so a piped session reads like a typed one
	}
	return line, true
}

// drain runs every job that is due now, so that what people are told prints at once.
func (s *Shell) drain(ctx context.Context) {
	for i := 0; i < 50; i++ {
		n, err := s.eng.RunDue(ctx)
		if err != nil || n == 0 {
			return
		}
	}
}

func (s *Shell) pickFirstUser(ctx context.Context) error {
	if s.me.ID != "" {
		return nil
	}
	for _, name := range []string{"alice"} {
		if u, err := s.eng.Directory().ResolveUser(ctx, name); err == nil {
			s.me = u
			return nil
		}
	}
	if lister, ok := s.eng.Directory().(interface{ Users() []bot.User }); ok && len(lister.Users()) > 0 {
		s.me = lister.Users()[0]
		return nil
	}
	return errors.New("the directory has no users; add some under directory: users: in the policy file")
}

func (s *Shell) actor() bot.Actor { return bot.Actor{User: s.me, Surface: "shell"} }

const help = `Commands (the same words as in Slack and Teams):
  /activate                       walk through the form, one question at a time
  /activate <group> [member|owner] [for <duration>] [at <time>] [ticket <id>] [<reason...>]
                                  e.g. /activate prod-db-admins for 2h fixing the outage
  status [<id>]                   your requests and grants (or one request)
  groups                          the groups you may activate
  pending                         the requests waiting for your approval (approvers; also: inbox)
  approve <id>                    approve a request (approvers)
  deny <id> [<reason>]            deny a request (approvers)
  cancel <id>                     withdraw your pending or scheduled request
  verify <id>                     a fresh MFA sign-in link (or code) for your request waiting for MFA
  deactivate <id>                 end an active grant now
  extend <id> [for <duration>] [<reason>]   ask for more time on an active grant
  members <group>                 who holds the group now, as the directory says
  as <user>                       become someone else (e-mail, or the part before the @)
  whoami, wait <duration>, help, quit
  (in any command, "last" stands for the newest request id shown)
`

// handle runs one command line; it returns true to quit.
func (s *Shell) handle(ctx context.Context, line string) bool {
	if line == "" || strings.HasPrefix(line, "#") {
		return false
	}
	cmd, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	if id, tail, _ := strings.Cut(rest, " "); strings.EqualFold(id, "last") && s.last != "" {
		rest = strings.TrimSpace(s.last + " " + tail)
	}
	switch strings.ToLower(strings.TrimPrefix(cmd, "/")) {
	case "quit", "exit":
		return true
	case "help", "?":
		s.printf("%s", help)
	case "whoami":
		s.printf("You are %s (%s), directory id %s.\n", s.me.Handle(), s.me.Display(), s.me.ID)
	case "as":
		u, err := s.eng.Directory().ResolveUser(ctx, rest)
		if err != nil || rest == "" {
			s.printf("No directory user %q. Try an e-mail such as alice@example.com, or alice.\n", rest)
			return false
		}
		s.me = u
		s.printf("You are now %s (%s).\n", u.Handle(), u.Display())
	case "activate", "jit":
		s.activate(ctx, rest)
	case "status", "my", "requests":
		s.status(ctx, strings.TrimPrefix(rest, "requests"))
	case "groups":
		s.groups(ctx)
	case "pending", "inbox":
		s.inbox(ctx)
	case "approve":
		s.decide(ctx, rest, "approve")
	case "deny":
		id, reason, _ := strings.Cut(rest, " ")
		if id == "" {
			s.printf("Usage: deny <id> [<reason>]\n")
			return false
		}
		r, err := s.eng.Deny(ctx, s.actor(), id, reason)
		s.result(r, err, "denied")
	case "cancel":
		if rest == "" {
			s.printf("Usage: cancel <id>\n")
			return false
		}
		r, err := s.eng.Cancel(ctx, s.actor(), rest)
		s.result(r, err, "canceled")
	case "verify":
		s.verify(ctx, rest)
	case "deactivate":
		if rest == "" {
			s.printf("Usage: deactivate <id>\n")
			return false
		}
		r, err := s.eng.Deactivate(ctx, s.actor(), rest)
		s.result(r, err, "is being deactivated")
	case "extend":
		s.extend(ctx, rest)
	case "members":
		s.members(ctx, rest)
	case "wait", "sleep":
		s.wait(ctx, rest)
	default:
		s.printf("Unknown command %q. Type help for the list, or /activate <group> to ask for access.\n", truncate(cmd, 20))
	}
	return false
}

func (s *Shell) decide(ctx context.Context, id, action string) {
	if id == "" {
		s.printf("Usage: %s <id>\n", action)
		return
	}
	r, err := s.eng.Approve(ctx, s.actor(), id)
	if err == nil && r.State == bot.StatePending {
		s.printf("Your approval of request %s is recorded (%d of %d).\n", r.ID, len(r.Approvals), r.ApprovalsRequired)
		return
	}
	s.result(r, err, "approved")
}

func (s *Shell) result(r *bot.Request, err error, verb string) {
	if err != nil {
		s.printf("%s\n", bot.Describe(err))
		return
	}
	s.printf("Request %s %s.\n", r.ID, verb)
}

func (s *Shell) wait(ctx context.Context, arg string) {
	d, err := bot.ParseDuration(arg)
	if err != nil || d <= 0 || d > 10*time.Minute {
		s.printf("Usage: wait <duration>, up to 10m (e.g. wait 65s)\n")
		return
	}
	deadline := time.Now().Add(d)
	s.work.Unlock() // let the ticker run jobs while we wait
	defer s.work.Lock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
