package shell

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyboard is a terminal for term.Terminal: each string sent on keys is what one read of the
// terminal gives (a chunk of keys); closing keys ends the input. What the line editor draws
// is kept in screen.
type keyboard struct {
	keys   chan string
	rest   string // of a chunk longer than a read
	mu     sync.Mutex
	screen strings.Builder
}

func (k *keyboard) Read(p []byte) (int, error) {
	if k.rest == "" {
		c, ok := <-k.keys
		if !ok {
			return 0, io.EOF
		}
		k.rest = c
	}
	n := copy(p, k.rest)
	k.rest = k.rest[n:]
	return n, nil
}

func (k *keyboard) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.screen.Write(p)
}

func (k *keyboard) drawn() string { k.mu.Lock(); defer k.mu.Unlock(); return k.screen.String() }

// editor reads lines from a keyboard as the shell does on a terminal.
func editor(t *testing.T, onCtrlC func() bool) (*termLines, *keyboard) {
	t.Helper()
	kb := &keyboard{keys: make(chan string, 16)}
	return newTermLines(kb, kb, -1, onCtrlC), kb
}

type read struct {
	line string
	err  error
}

// readAsync reads one line in the background, as the shell's loop does.
func readAsync(ctx context.Context, r *termLines, prompt string, intr <-chan struct{}) <-chan read {
	ch := make(chan read, 1)
	go func() {
		l, err := r.readLine(ctx, prompt, intr)
		ch <- read{l, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan read) read {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the line editor did not end the line")
		return read{}
	}
}

// Given keys typed at the terminal, when the shell reads lines with x/term's editor, then
// Ctrl-C and Ctrl-D end the line with what they mean, the editor goes on reading afterwards
// (x/term alone would answer io.EOF for ever), and no line is swallowed.
func TestLineEditor_KeysEndLinesAsTheyMean(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		keys  []string
		want  []read // one read each
		drawn string // what the screen shows, in part
	}{
		{"a line", []string{"whoami\r"}, []read{{"whoami", nil}}, "alice> whoami\r\n"},
		{"lines typed ahead in one chunk", []string{"as bob\rstatus\r"}, []read{{"as bob", nil}, {"status", nil}}, ""},
		{"Ctrl-C after some text drops it, shows ^C, and the next line is read",
			[]string{"approve X", "\x03", "status\r"}, []read{{"", errLineCanceled}, {"status", nil}}, "approve X^C\r\n"},
		{"Ctrl-C at an empty line", []string{"\x03"}, []read{{"", errInterrupt}}, "alice> ^C\r\n"},
		{"Ctrl-C typed ahead with more keys", []string{"abc\x03whoami\r"}, []read{{"", errLineCanceled}, {"whoami", nil}}, ""},
		{"Ctrl-D at an empty line is the end of input, and the editor reads on",
			[]string{"\x04", "whoami\r"}, []read{{"", io.EOF}, {"whoami", nil}}, ""},
		{"Ctrl-D with keys after it in the same chunk", []string{"\x04whoami\r"}, []read{{"", io.EOF}, {"whoami", nil}}, ""},
		{"Ctrl-D in a line deletes the character under the cursor",
			[]string{"abc\x02\x02\x04\r"}, []read{{"ac", nil}}, ""},
		{"marker keys typed as they are mean nothing", []string{"a\x1cb\x1dc\x1e\r"}, []read{{"abc", nil}}, ""},
		{"a line longer than the editor keeps is refused", []string{strings.Repeat("x", termMaxLine+10) + "\r", "ok\r"},
			[]read{{"", tooLongError{termMaxLine}}, {"ok", nil}}, ""},
		{"the end of input", []string{"whoa"}, []read{{"", io.EOF}, {"", io.EOF}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, kb := editor(t, nil)
			for _, k := range tc.keys {
				kb.keys <- k
			}
			if tc.name == "the end of input" {
				close(kb.keys)
			}
			for i, want := range tc.want {
				got := wait(t, readAsync(ctx, r, "alice> ", nil))
				if got.line != want.line || !errors.Is(got.err, want.err) && got.err != want.err {
					t.Fatalf("read %d: got %q, %v; want %q, %v", i+1, got.line, got.err, want.line, want.err)
				}
			}
			if !strings.Contains(kb.drawn(), tc.drawn) {
				t.Fatalf("the screen does not show %q:\n%q", tc.drawn, kb.drawn())
			}
		})
	}
}

// Given an interrupt (SIGINT) or the end of the shell while a line is being typed, then the
// line ends as Ctrl-C ends it, or with the context's error, the cursor on a new line.
func TestLineEditor_InterruptAndStop(t *testing.T) {
	r, kb := editor(t, nil)
	intr := make(chan struct{}, 1)
	kb.keys <- "half a li"
	ch := readAsync(context.Background(), r, "alice> ", intr)
	waitFor(t, kb, "half a li")
	intr <- struct{}{}
	if got := wait(t, ch); !errors.Is(got.err, errLineCanceled) {
		t.Fatalf("an interrupt mid-line: %q, %v", got.line, got.err)
	}
	kb.keys <- "whoami\r"
	if got := wait(t, readAsync(context.Background(), r, "alice> ", intr)); got.line != "whoami" {
		t.Fatalf("after the interrupt: %q, %v", got.line, got.err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ch = readAsync(ctx, r, "alice> ", intr)
	cancel()
	if got := wait(t, ch); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("the shell stopping: %q, %v", got.line, got.err)
	}
	if got := wait(t, readAsync(context.Background(), r, "alice> ", intr)); !errors.Is(got.err, context.Canceled) {
		t.Fatalf("after the stop the editor reads no more: %q, %v", got.line, got.err)
	}
	if !strings.HasSuffix(kb.drawn(), "\r\n") {
		t.Fatalf("the cursor is left after the prompt: %q", kb.drawn())
	}
}

// Given output while a line is half typed, then it is printed above the prompt, and the
// prompt and the line typed so far are drawn again beneath it.
func TestLineEditor_OutputRedrawsThePromptBeneath(t *testing.T) {
	r, kb := editor(t, nil)
	kb.keys <- "appr"
	ch := readAsync(context.Background(), r, "bob> ", nil)
	waitFor(t, kb, "bob> appr")
	if _, err := io.WriteString(r.t, "  → to bob: request R7KX2M9Q waits for you\n"); err != nil {
		t.Fatal(err)
	}
	kb.keys <- "ove last\r"
	if got := wait(t, ch); got.line != "approve last" {
		t.Fatalf("the line typed across the output: %q, %v", got.line, got.err)
	}
	screen := kb.drawn()
	i, j := strings.Index(screen, "→ to bob"), strings.LastIndex(screen, "bob> appr")
	if i < 0 || j < i {
		t.Fatalf("the prompt and the line are not drawn again beneath the output:\n%q", screen)
	}
}

// Given a `wait` under way (nothing reads the terminal then), when Ctrl-C is typed, then the
// shell's hook takes it, and it is not read again as a key afterwards.
func TestLineEditor_CtrlCDuringWait(t *testing.T) {
	taken := make(chan struct{}, 1)
	r, kb := editor(t, func() bool { taken <- struct{}{}; return true })
	kb.keys <- "typed\x03"
	select {
	case <-taken:
	case <-time.After(5 * time.Second):
		t.Fatal("the Ctrl-C was not handed to the hook")
	}
	kb.keys <- "status\r"
	if got := wait(t, readAsync(context.Background(), r, "alice> ", nil)); got.line != "status" || got.err != nil {
		t.Fatalf("after a Ctrl-C taken by the hook: %q, %v", got.line, got.err)
	}
}

// The history (up arrow) keeps what was typed, not lines ended by Ctrl-C nor empty ones.
func TestLineEditor_History(t *testing.T) {
	r, kb := editor(t, nil)
	for _, k := range []string{"status\r", "\r", "secret\x03", "\x1b[A\r"} {
		kb.keys <- k
	}
	var got []read
	for range 4 {
		got = append(got, wait(t, readAsync(context.Background(), r, "alice> ", nil)))
	}
	if got[3].line != "status" {
		t.Fatalf("the up arrow gave %q; want the last line entered, status", got[3].line)
	}
}

func waitFor(t *testing.T, kb *keyboard, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(kb.drawn(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed %q: %q", s, kb.drawn())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
