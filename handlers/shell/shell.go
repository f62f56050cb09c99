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
	// Ephemeral is set when the store lives only as long as this process (the embedded
	// Redis): on exit the shell counts the open requests it holds and says they are lost.
	Ephemeral OpenRequester
}

// OpenRequester lists the open requests (bot.Store has it).
type OpenRequester interface {
	OpenRequests(ctx context.Context) (map[string]string, error)
}

// maxLine is the longest input line the shell reads, in bytes; a longer one is refused.
const maxLine = 64 * 1024

// exitTimeout bounds the count of open requests said on exit.
const exitTimeout = 2 * time.Second

// Shell is the terminal surface and its notifier.
type Shell struct {
	eng  *bot.Engine
	in   *bufio.Reader
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
	if opt.Tick <= 0 {
		opt.Tick = 200 * time.Millisecond
	}
	if opt.Local == nil {
		opt.Local, _ = eng.Directory().(bot.MemberLister)
	}
	return &Shell{eng: eng, in: bufio.NewReaderSize(in, maxLine+2), out: out, opt: opt, loc: eng.Policy().Settings.Timezone}
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
	defer s.farewell(ctx)
	defer wg.Wait()
	defer cancel()
	for {
		s.prompt()
		line, err := s.next()
		if errors.Is(err, errTooLong) {
			s.printf("%s\n", tooLong)
			continue
		}
		if err != nil || ctx.Err() != nil {
			if err != nil && s.opt.Interactive {
				s.printf("\n") // Ctrl-D leaves the cursor after the prompt
			}
			s.work.Lock()
			s.drain(ctx)
			s.work.Unlock()
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read the input: %w", err)
			}
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

// errTooLong: the line read was longer than maxLine; it was read to its end and dropped.
var errTooLong = fmt.Errorf("line longer than %d characters", maxLine)

var tooLong = fmt.Sprintf("That line is longer than %d characters; nothing was done.", maxLine)

// next reads one line: errTooLong for a line over maxLine (the shell goes on), io.EOF at the
// end of input (Ctrl-D on a terminal). The end of input is not remembered: on a terminal,
// Ctrl-D inside the form leaves the form, and the prompt reads again; a pipe or file that has
// ended answers io.EOF again at once.
func (s *Shell) next() (string, error) {
	b, err := s.in.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) { // drop the rest of the line
			_, err = s.in.ReadSlice('\n')
		}
		return "", errTooLong
	}
	if err != nil && len(b) == 0 {
		return "", err // io.EOF, or the input failed
	}
	raw := strings.TrimRight(string(b), "\r\n")
	if len(raw) > maxLine {
		return "", errTooLong
	}
	line := strings.TrimSpace(raw)
	if !s.opt.Interactive && line != "" {
		s.printf("%s> %s\n", s.short(s.me), line) // echo, so a piped session reads like a typed one
	}
	return line, nil
}

// farewell says, on exit, what an in-memory store loses with the process.
func (s *Shell) farewell(ctx context.Context) {
	if s.opt.Ephemeral == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exitTimeout)
	defer cancel()
	open, err := s.opt.Ephemeral.OpenRequests(ctx)
	if err != nil {
		s.printf("Open requests, if any, are discarded: this shell keeps them in memory only; set REDIS_URL to keep them.\n")
		return
	}
	ids := map[string]bool{}
	for _, id := range open {
		ids[id] = true
	}
	switch n := len(ids); n {
	case 0:
	case 1:
		s.printf("1 open request is discarded: this shell keeps it in memory only; set REDIS_URL to keep it.\n")
	default:
		s.printf("%d open requests are discarded: this shell keeps them in memory only; set REDIS_URL to keep them.\n", n)
	}
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
		verb := "is being deactivated"
		if err == nil && r.State == bot.StateCanceled {
			verb = "canceled (it had not started)" // stopped before its start: nothing to remove
		}
		s.result(r, err, verb)
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
