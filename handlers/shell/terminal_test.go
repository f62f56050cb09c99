package shell_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/handlers/shell"
	"github.com/pimbot/pimbot/store/storetest"
)

// session runs a shell on the example policy over the whole of in, to its exit, and returns
// what it printed. ephemeral: the engine's store is given as Options.Ephemeral, as the
// embedded Redis is.
func session(t *testing.T, in io.Reader, interactive, ephemeral bool) string {
	t.Helper()
	pol, err := policyfile.Parse("policy.yaml", pimbot.ExamplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: local.New(pol)})
	opt := shell.Options{Interactive: interactive, Tick: 50 * time.Millisecond}
	if ephemeral {
		opt.Ephemeral = st
	}
	out := &syncBuf{}
	sh := shell.New(eng, in, out, opt)
	eng.AddNotifier(sh)
	done := make(chan error, 1)
	go func() { done <- sh.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the shell ended with %v; output:\n%s", err, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the shell did not exit at the end of its input; output:\n%s", out)
	}
	return out.String()
}

// tty is input as a terminal gives it: each "" chunk is one Ctrl-D (a read of 0 bytes and
// io.EOF), after which a person may type on; when the chunks run out, the input has ended.
type tty struct{ chunks []string }

func (r *tty) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	c := r.chunks[0]
	if c == "" {
		r.chunks = r.chunks[1:]
		return 0, io.EOF
	}
	n := copy(p, c)
	if n == len(c) {
		r.chunks = r.chunks[1:]
	} else {
		r.chunks[0] = c[n:]
	}
	return n, nil
}

func inOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("missing %q (in this order: %q); output:\n%s", w, want, out)
		}
		rest = rest[i+len(w):]
	}
}

// Given a line longer than the reader's buffer, then it is refused with a word and the shell
// reads on, at the prompt and at a question of the form (it used to exit silently, status 0).
func TestTerminal_LongLineRefusedAndTheShellGoesOn(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	refused := "That line is longer than 65536 characters; nothing was done."
	t.Run("at the prompt", func(t *testing.T) {
		out := session(t, strings.NewReader("whoami\n/activate "+long+"\nwhoami\n"), false, false)
		inOrder(t, out, "You are alice@example.com (Alice), directory id", refused, "You are alice@example.com (Alice), directory id")
		if strings.Contains(out, "xxxx") {
			t.Fatalf("the long line was echoed or acted on:\n%.2000s", out)
		}
	})
	t.Run("at a question of the form", func(t *testing.T) {
		out := session(t, strings.NewReader("/activate\n"+long+"\ncancel\nwhoami\n"), false, false)
		inOrder(t, out, "Group (", refused, "Group (", "Nothing was requested.", "You are alice@example.com")
	})
	t.Run("a line just at the limit is read", func(t *testing.T) {
		out := session(t, strings.NewReader("#"+strings.Repeat("y", 65535)+"\r\nwhoami"), false, false)
		if strings.Contains(out, refused) {
			t.Fatalf("a line of 65536 characters was refused")
		}
		inOrder(t, out, "You are alice@example.com")
	})
}

// Given the end of input inside the guided form, then it leaves the form only: on a terminal
// (Ctrl-D) the prompt reads on, and a second Ctrl-D exits; when the input has truly ended,
// the shell exits cleanly, without hanging.
func TestTerminal_EndOfInputLeavesTheFormThenTheShell(t *testing.T) {
	t.Run("Ctrl-D in the form, then at the prompt", func(t *testing.T) {
		in := &tty{chunks: []string{"/activate\nsandbox-admins\n", "", "whoami\n", ""}}
		out := session(t, in, true, false)
		inOrder(t, out, "Duration (1m to 8h) [2m]: \nNothing was requested.\n", "alice> ", "You are alice@example.com", "alice> \n")
		if !strings.HasSuffix(out, "alice> \n") {
			t.Fatalf("Ctrl-D at the prompt should end the line and exit; output:\n%s", out)
		}
	})
	t.Run("piped input ends in the middle of the form", func(t *testing.T) {
		out := session(t, strings.NewReader("/activate\nprod-db-admins\nowner"), false, false)
		inOrder(t, out, "Duration (5m to 4h) [1h]", "Nothing was requested.")
		if strings.Count(out, "Nothing was requested.") != 1 || strings.Contains(out, "submitted") {
			t.Fatalf("the form should be left once, with nothing submitted:\n%s", out)
		}
	})
	t.Run("Ctrl-D at the first prompt", func(t *testing.T) {
		out := session(t, &tty{chunks: []string{""}}, true, false)
		if !strings.HasSuffix(out, "alice> \n") {
			t.Fatalf("Ctrl-D at the prompt should end the line and exit; output:\n%s", out)
		}
	})
}

// Given the embedded Redis (the store lives in the process), when the shell exits with
// requests open, then it says they are discarded and how to keep them; with a store that
// outlives the shell, or nothing open, it says nothing of the kind.
func TestTerminal_ExitSaysOpenRequestsAreDiscarded(t *testing.T) {
	two := "/activate prod-db-admins for 2h fixing the outage\n/activate prod-db-admins owner for 1h rotating keys\n"
	for _, tc := range []struct {
		name      string
		script    string
		ephemeral bool
		want      string
	}{
		{"embedded, two open, end of input", two, true, "2 open requests are discarded: this shell keeps them in memory only; set REDIS_URL to keep them.\n"},
		{"embedded, two open, quit", two + "quit\n", true, "2 open requests are discarded: this shell keeps them in memory only; set REDIS_URL to keep them.\n"},
		{"embedded, one open", "/activate prod-db-admins for 2h fixing the outage\n", true, "1 open request is discarded: this shell keeps it in memory only; set REDIS_URL to keep it.\n"},
		{"embedded, none open", "whoami\n", true, ""},
		{"a Redis of its own", two, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := session(t, strings.NewReader(tc.script), false, tc.ephemeral)
			if tc.want == "" {
				if strings.Contains(out, "discarded") {
					t.Fatalf("nothing is lost, yet the shell says so:\n%s", out)
				}
				return
			}
			inOrder(t, out, "submitted", tc.want)
			if !strings.HasSuffix(out, tc.want) {
				t.Fatalf("the exit message should be the last thing said:\n%s", out)
			}
		})
	}
}
