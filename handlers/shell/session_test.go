package shell_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/handlers/shell"
	oncalllocal "github.com/pimbot/pimbot/oncall/local"
	"github.com/pimbot/pimbot/store/storetest"
)

var update = flag.Bool("update", false, "write testdata/session.golden from what the shell prints")

// clock is the engine's clock in a scripted session: it moves only when the script says.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// scripted is a shell on a pipe, its clock fixed at 18:02 UTC.
type scripted struct {
	t      *testing.T
	sh     *shell.Shell
	clock  *clock
	in     *io.PipeWriter
	out    *syncBuf
	mark   int
	banner int // where the output after the banner starts
	done   chan error
}

// startScripted starts the shell and waits for its banner. ephemeral: the store is given as
// Options.Ephemeral, as the embedded Redis is.
func startScripted(t *testing.T, policy []byte, opt shell.Options, ephemeral bool) *scripted {
	t.Helper()
	pol, err := policyfile.Parse("policy.yaml", policy)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	clk := &clock{t: time.Date(2026, 3, 2, 18, 2, 0, 0, time.UTC)}
	var rotas []bot.OnCallProvider
	if len(pol.Rotas) > 0 {
		rotas = append(rotas, oncalllocal.New(pol.Rotas, clk.Now))
	}
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: local.New(pol), Clock: clk, OnCall: rotas})
	if ephemeral {
		opt.Ephemeral = st
	}
	opt.Tick = 20 * time.Millisecond
	pr, pw := io.Pipe()
	s := &scripted{t: t, clock: clk, in: pw, out: &syncBuf{}, done: make(chan error, 1)}
	s.sh = shell.New(eng, pr, s.out, opt)
	eng.AddNotifier(s.sh)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { s.done <- s.sh.Run(ctx) }()
	t.Cleanup(func() { pw.Close(); cancel(); <-s.done })
	s.expect("someone else.\n")
	s.banner = len(s.out.String())
	return s
}

// say types a line a second after the last one, and waits until the shell has said want since.
func (s *scripted) say(line, want string) {
	s.t.Helper()
	s.clock.add(time.Second) // requests made one after the other are listed in that order
	s.mark = len(s.out.String())
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
	s.expect(want)
}

func (s *scripted) expect(want string) {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s.out.String()[s.mark:], want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("waited 5s for %q; output since:\n%s", want, s.out.String()[s.mark:])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// interrupt is Ctrl-C (SIGINT) while the shell waits for input, and waits until it has said want.
func (s *scripted) interrupt(want string) {
	s.t.Helper()
	s.mark = len(s.out.String())
	s.sh.Interrupt()
	s.expect(want)
}

// end closes the input and waits for the shell to exit; it returns all it printed.
func (s *scripted) end() string {
	s.t.Helper()
	s.in.Close()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		if err != nil {
			s.t.Fatalf("the shell ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		s.t.Fatalf("the shell did not exit at the end of its input; output:\n%s", s.out.String())
	}
	return s.out.String()
}

var requestID = regexp.MustCompile(`(?:Request|Extension) ([23456789A-HJ-NP-Z]{8}) (?:submitted|applied)`)

// stableIDs replaces the random request ids in out by REQUEST1, REQUEST2, … (as long as an
// id, so lines wrap the same) in the order they were submitted.
func stableIDs(out string) string {
	n := 0
	for _, m := range requestID.FindAllStringSubmatch(out, -1) {
		if strings.Contains(m[1], "REQUEST") {
			continue
		}
		n++
		out = strings.ReplaceAll(out, m[1], fmt.Sprintf("REQUEST%d", n))
	}
	return out
}

// A scripted session through everything the shell does for people, at 80 columns, compared
// with testdata/session.golden (go test ./handlers/shell -run TestSession -update writes it).
func TestSession_Golden(t *testing.T) {
	policy, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := startScripted(t, policy, shell.Options{Width: 80}, true)
	s.say("help", "newest request id shown.")

	// The quick form keeps a reason that begins with a keyword; a typo is refused with a near miss.
	s.say("/activate prod-db-admins for 2h for the db migration", "→ to alice: request")
	s.say("/activate stauts", "did you mean")

	// The guided form: each answer is checked where it is given.
	s.say("/activate", "Group (")
	s.say("prod-db-admns", "Group (")
	s.say("sandbox-admins", "Duration (")
	s.say("0m", "Duration (")
	s.say("-1h", "Duration (")
	s.say("cancel", "Nothing was requested.")
	s.say("/activate", "Group (")
	s.say("sandbox-admins", "Duration (")
	s.say("30m", "Start (")
	s.say("at noon", "Start (")
	s.say("+1h", "Reason (optional)")
	s.say("", "submitted")

	// The approvers' inbox, an approval, an extension and its approval, a denial with a reason.
	s.say("as bob", "You are now bob@example.com")
	s.say("pending", "Waiting for your approval")
	s.say("approve last", "is active")
	s.say("as alice", "You are now alice@example.com")
	s.say("extend last for 1h still migrating", "waiting for approval")
	s.say("as bob", "You are now bob@example.com")
	s.say("approve last", "now ends at")
	s.say("as alice", "You are now alice@example.com")
	s.say("/activate prod-db-admins owner for 1h rotating keys", "→ to alice: request")
	s.say("as bob", "You are now bob@example.com")
	s.say("deny last not during the freeze", "was denied by Bob")
	s.say("as alice", "You are now alice@example.com")

	// Ctrl-C cancels the form and swallows nothing: the next line is the next command.
	s.say("/activate", "Group (")
	s.say("prod-db-admins", "Member or owner")
	s.interrupt("Canceled: nothing was requested.")
	s.say("status", "denied by Bob")
	s.interrupt("To leave the shell, type exit or press Ctrl-D.")

	s.say("/activate "+strings.Repeat("x", 70_000), "nothing was done")

	// The end of input leaves the form, then the shell, which says what the embedded Redis loses.
	s.say("/activate", "Group (")
	s.say("sandbox-admins", "Duration (")
	got := stableIDs(s.end())

	if strings.Contains(got, "xxxxxxxx") {
		t.Fatalf("the long line was echoed or acted on")
	}
	if *update {
		if err := os.WriteFile("testdata/session.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile("testdata/session.golden")
	if err != nil {
		t.Fatalf("%v (go test ./handlers/shell -run TestSession -update writes it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			g, w := "(none)", "(none)"
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("the session differs from testdata/session.golden at line %d:\n got %q\nwant %q\n(-update rewrites the file; the whole session:)\n%s", i+1, g, w, got)
			}
		}
	}
}

// The README's session is what the shell prints: its commands, typed into the shell on the
// example policy at 18:02 UTC, give its text line for line (ids aside), the reminder and the
// expiry that follow within the minute included. Piped output is not wrapped, as the README shows it.
func TestSession_READMEIsWhatTheShellPrints(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```text\nalice> ")
	if !ok {
		t.Fatal("README.md has no session (a text block beginning with alice> )")
	}
	block, _, _ = strings.Cut("alice> "+block, "```")
	s := startScripted(t, pimbot.ExamplePolicy, shell.Options{}, false)
	for _, l := range strings.Split(block, "\n") {
		if _, cmd, ok := strings.Cut(l, "> "); ok && !strings.HasPrefix(l, " ") {
			s.say(cmd, "") // the shell reads and answers one line at a time
		}
	}
	s.expect("sandbox-admins until 18:03 UTC") // the last command is done
	s.clock.add(30 * time.Second)              // its reminder is due
	s.expect("ends at 18:03 UTC.")
	s.clock.add(30 * time.Second)
	s.expect("ended (expired)")
	got := stableIDs(s.out.String()[s.banner:])
	if want := stableIDs(block); got != want {
		t.Fatalf("README.md's session is not what the shell prints.\nREADME:\n%s\nshell:\n%s", want, got)
	}
}
