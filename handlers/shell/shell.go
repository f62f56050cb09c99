// Package shell is the terminal surface: one person plays every role (`as bob`), types the
// same commands as in Slack or Teams, and sees what each person would be told.
package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Options tune the shell.
type Options struct {
	// Interactive: a person types at a terminal. The shell prints prompts, and when both its
	// input and its output are that terminal's files it puts the terminal in raw mode and
	// edits lines with golang.org/x/term (restoring the terminal on every way out). Piped
	// scripts are not interactive: each line read is echoed after a prompt instead.
	Interactive bool
	Local       bot.MemberLister // answers `members <group>`; nil: the engine's directory if it can list
	Tick        time.Duration    // how often due jobs run between commands; default 200ms
	// Width is the column at which output lines wrap (at spaces). 0: the terminal's width
	// when the output is a terminal (80 when it does not say), else no wrapping.
	Width int
	// Ephemeral is set when the store lives only as long as this process (the embedded
	// Redis): on exit the shell counts the open requests it holds and says they are lost.
	Ephemeral OpenRequester
}

// OpenRequester lists the open requests (bot.Store has it).
type OpenRequester interface {
	OpenRequests(ctx context.Context) (map[string]string, error)
}

// exitTimeout bounds the count of open requests said on exit.
const exitTimeout = 2 * time.Second

// Shell is the terminal surface and its notifier.
type Shell struct {
	eng     *bot.Engine
	in      io.Reader
	orig    io.Writer  // the output given to New
	src     lineSource // set by Run
	opt     Options
	mu      sync.Mutex // serializes output, and guards out and editing
	out     io.Writer  // orig, or while lines are edited on the terminal, the line editor
	editing bool
	restore func()        // puts the terminal back (nil: it was not put in raw mode)
	work    sync.Mutex    // serializes commands and job runs
	intr    chan struct{} // Ctrl-C or SIGINT, not yet acted on
	waiting atomic.Bool   // a `wait` is under way (Ctrl-C stops it)
	roundMu sync.Mutex
	round   *[]tale // what the round of jobs under way tells (round.go)
	me      bot.User
	loc     *time.Location
	last    string // the newest request id seen; `last` stands for it in commands
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
	return &Shell{eng: eng, in: in, orig: out, out: out, opt: opt, intr: make(chan struct{}, 1), loc: eng.Policy().Settings.Timezone}
}

// Name is the notifier's name.
func (s *Shell) Name() string { return "shell" }

// Interrupt is Ctrl-C for a shell that does not read the key itself (cmd/pimbot sends SIGINT
// here): it cancels the form or the line being read, or stops a `wait`; at the prompt the
// shell says how to leave. An interrupt while a command runs is acted on at the next read.
func (s *Shell) Interrupt() {
	select {
	case s.intr <- struct{}{}:
	default: // one is pending already
	}
}

// interruptWait takes a Ctrl-C typed while a `wait` is under way (nothing reads the terminal
// then): false when no `wait` is.
func (s *Shell) interruptWait() bool {
	if !s.waiting.Load() {
		return false
	}
	s.Interrupt()
	return true
}

// Writer is w, except while the shell edits lines on the terminal in raw mode: then what is
// written goes through the shell's output, above the prompt and the line being typed (the
// start-up logs on the same terminal, which raw mode would leave without carriage returns).
func (s *Shell) Writer(w io.Writer) io.Writer { return throughShell{s, w} }

type throughShell struct {
	s *Shell
	w io.Writer
}

func (t throughShell) Write(p []byte) (int, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.s.editing {
		return t.s.out.Write(p)
	}
	return t.w.Write(p)
}

// printf prints output, its lines wrapped at the width (see Options.Width).
func (s *Shell) printf(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.out, wrapText(text, s.width()))
}

// write prints text as it is (a prompt, the echo of a line).
func (s *Shell) write(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = io.WriteString(s.out, text)
}

func (s *Shell) width() int {
	if s.opt.Width > 0 {
		return s.opt.Width
	}
	return terminalWidth(s.orig)
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
	restore := s.open()
	defer restore() // also when a panic unwinds this goroutine
	s.printf("pimbot shell: policy %s, groups: %s.\nYou are %s (%s). Type `help` for commands, `as <user>` to become someone else.\n",
		s.eng.Policy().Source, strings.Join(s.eng.Policy().GroupNames(), ", "), s.me.Handle(), s.me.Display())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // expiries and reminders happen while you type
		defer wg.Done()
		defer s.restoreOnPanic()
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
		line, err := s.next(ctx, s.short(s.me)+"> ", false)
		var long tooLongError
		switch {
		case errors.As(err, &long):
			s.printf("%s\n", long.refusal())
			continue
		case errors.Is(err, errInterrupt):
			s.printf("To leave the shell, type exit or press Ctrl-D.\n")
			continue
		case errors.Is(err, errLineCanceled):
			continue // the line shows ^C where it was left
		}
		if err != nil || ctx.Err() != nil {
			s.work.Lock()
			s.drain(ctx)
			s.work.Unlock()
			if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
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

// open picks where lines come from: the terminal in raw mode with x/term's line editor, or
// plain lines. restore undoes it; it may be called more than once, from any goroutine.
func (s *Shell) open() (restore func()) {
	var once sync.Once
	if s.opt.Interactive {
		if t, undo, ok := openTerminal(s.in, s.orig, s.interruptWait); ok {
			s.src = t
			restore = func() {
				once.Do(func() {
					s.mu.Lock()
					s.out, s.editing = s.orig, false
					s.mu.Unlock()
					undo()
				})
			}
			s.mu.Lock()
			s.out, s.editing, s.restore = t.t, true, restore
			s.mu.Unlock()
			return restore
		}
	}
	p := newPlainLines(s.in)
	s.src = p
	return func() { once.Do(p.close) }
}

// restoreOnPanic, deferred in a goroutine that runs the shell's code (the ticker, and the
// engine's job runners through Notify), puts the terminal back as it was before a panic
// ends the process: raw mode would outlive it. Run's own goroutine restores by its defer.
func (s *Shell) restoreOnPanic() {
	if p := recover(); p != nil {
		s.mu.Lock()
		restore := s.restore
		s.mu.Unlock()
		if restore != nil {
			restore()
		}
		panic(p)
	}
}

// next reads one line after prompt, trimmed (see lineSource for its errors). question: the
// prompt is a question of the form, printed even when prompts are not (a piped script).
func (s *Shell) next(ctx context.Context, prompt string, question bool) (string, error) {
	_, editing := s.src.(*termLines)
	switch {
	case editing: // the line editor draws the prompt, on one line: the head of a wide one is output
		if cols := s.width(); cols > 0 && displayWidth(prompt) > cols {
			if lines := wrap(strings.TrimRight(prompt, " "), cols); len(lines) > 1 {
				s.write(strings.Join(lines[:len(lines)-1], "\n") + "\n")
				prompt = lines[len(lines)-1] + " "
			}
		}
	case s.opt.Interactive:
		s.write(prompt)
	case question:
		s.printf("%s\n", prompt)
	}
	line, err := s.src.readLine(ctx, prompt, s.intr)
	if err != nil {
		var long tooLongError
		if !editing && s.opt.Interactive && !errors.As(err, &long) {
			s.write("\n") // Ctrl-D or ^C leaves the cursor after the prompt
		}
		return "", err
	}
	line = strings.TrimSpace(line)
	if !s.opt.Interactive && line != "" {
		s.write(s.short(s.me) + "> " + line + "\n") // echo, so a piped session reads like a typed one
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
	for key, id := range open {
		if !bot.IsReviewKey(key) {
			ids[id] = true
		}
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
		n, err := s.runRound(func() (int, error) { return s.eng.RunDue(ctx) })
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
  /activate <group> [member|owner] [for <duration>] [at <time>] [ticket <id>]
            [<reason...>]         the quick form, e.g.
                                  /activate prod-db-admins for 2h db migration
  status [<id>]                   your requests and grants (or one request)
  groups                          the groups you may activate
  pending                         the requests waiting for your approval (approvers; also: inbox)
  approve <id>                    approve a request (approvers)
  deny <id> [<reason>]            deny a request (approvers)
  cancel <id>                     withdraw your pending or scheduled request
  verify <id>                     a fresh MFA sign-in link (or code) for your request waiting for MFA
  deactivate <id>                 end an active grant now
  revoke <id>, looks-good <id>    end, or approve of, an automatic (on-call)
                                  approval (approvers)
  extend <id> [for <duration>] [<reason>]   ask for more time on an active grant
  members <group>                 who holds the group now, as the directory says
  as <user>                       become someone else (e-mail, or the part before the @)
  whoami, wait <duration>, help, exit (or quit, or Ctrl-D)
  Ctrl-C cancels the line being typed, or the form.
  In any command, "last" stands for the newest request id shown.
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
	case "revoke":
		if rest == "" {
			s.printf("Usage: revoke <id>\n")
			return false
		}
		r, err := s.eng.Revoke(ctx, s.actor(), rest)
		verb := "revoked: the access is being removed"
		if err == nil && r.State == bot.StateCanceled {
			verb = "revoked: it had not started, and never will"
		}
		s.result(r, err, verb)
	case "looks-good", "looksgood", "looks_good", "review":
		if rest == "" {
			s.printf("Usage: looks-good <id>\n")
			return false
		}
		r, err := s.eng.LooksGood(ctx, s.actor(), rest)
		s.result(r, err, "reviewed: looks good")
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

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
