package shell

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"
)

// On a terminal the shell reads lines with golang.org/x/term's line editor (term.Terminal:
// cursor keys, Home/End, Ctrl-A/E/K/U/W/L, history with the up and down arrows), with the
// terminal in raw mode. Everything the shell prints goes through the same term.Terminal, so
// a notification that arrives while someone types is printed above the prompt and the line
// typed so far, which are drawn again beneath it.
//
// term.Terminal answers Ctrl-C, and Ctrl-D at an empty line, with io.EOF and leaves the key
// unread, so that every later read answers io.EOF again, with the prompt still counted as
// on the screen (golang.org/x/term v0.47.0, terminal.go, readLine). The shell therefore never
// hands it those keys: keys turns each into a marker key that the line editor passes to its
// AutoCompleteCallback (onKey), followed where needed by Enter, so that the line ends cleanly
// (the cursor at the start of a new line) and onKey says why it ended.
const (
	keyCtrlC = 0x03
	keyCtrlD = 0x04

	// Marker keys: control characters the line editor does not act on itself. Typed as they
	// are, they mean nothing, and are dropped.
	markInterrupt = 0x1c // Ctrl-C
	markEOF       = 0x1d // Ctrl-D: the end of input at an empty line, else "delete the next character"
	markEnd       = 0x1e // the input ended, or the shell stops: end the line as it is

	// termMaxLine is the longest line term.Terminal keeps (it drops keys past it), in characters.
	termMaxLine = 4096
)

// lineEnd is why the line being read ended, when it did not end with Enter.
type lineEnd int

const (
	endEnter     lineEnd = iota
	endInterrupt         // Ctrl-C
	endEOF               // Ctrl-D at an empty line
	endInput             // the input ended or failed, or the shell stops
)

// termLines reads lines with term.Terminal from keys.
type termLines struct {
	t    *term.Terminal
	keys *keys
	fd   int // the terminal, for its size

	// Set by onKey while ReadLine reads (in the goroutine that called readLine):
	end   lineEnd
	typed bool // Ctrl-C came after some text
	long  bool // keys were dropped: the line is longer than termMaxLine

	err error // the input ended: every read answers it
}

func newTermLines(in io.Reader, out io.Writer, fd int, onCtrlC func() bool) *termLines {
	k := newKeys(in, onCtrlC)
	r := &termLines{keys: k, fd: fd}
	r.t = term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{k, out}, "")
	r.t.AutoCompleteCallback = r.onKey
	r.t.History = &history{r: r}
	return r
}

func (r *termLines) readLine(ctx context.Context, prompt string, intr <-chan struct{}) (string, error) {
	if r.err != nil {
		return "", r.err
	}
	r.end, r.typed, r.long = endEnter, false, false
	if w, h, err := term.GetSize(r.fd); err == nil && w > 0 {
		_ = r.t.SetSize(w, h)
	}
	r.t.SetPrompt(prompt)
	r.keys.ctx, r.keys.intr = ctx, intr
	line, err := r.t.ReadLine()
	switch r.end {
	case endInterrupt:
		if r.typed {
			return "", errLineCanceled
		}
		return "", errInterrupt
	case endEOF:
		return "", io.EOF
	case endInput:
		r.err = r.keys.err
		return "", r.err
	}
	if err != nil && !errors.Is(err, term.ErrPasteIndicator) { // bracketed paste is never turned on
		r.err = err
		return "", err
	}
	if r.long {
		return "", tooLongError{termMaxLine}
	}
	return line, nil
}

func (r *termLines) close() {}

// onKey is the line editor's AutoCompleteCallback: it sees every key the editor does not
// act on itself, among them the marker keys.
func (r *termLines) onKey(line string, pos int, key rune) (string, int, bool) {
	switch key {
	case markInterrupt: // Enter follows: the line ends, showing ^C where it was left
		r.end, r.typed = endInterrupt, strings.TrimSpace(line) != ""
		return line + "^C", len(line) + 2, true
	case markEOF:
		if line == "" {
			r.end = endEOF
			r.keys.enter() // end the (empty) line, so that the cursor is on a new line
			return "", 0, true
		}
		if pos < len(line) { // what Ctrl-D does in a line: delete the character under the cursor
			_, n := utf8.DecodeRuneInString(line[pos:])
			return line[:pos] + line[pos+n:], pos, true
		}
		return line, pos, true
	case markEnd: // Enter follows
		r.end = endInput
		return line, len(line), true
	}
	if printable := key >= ' ' && (key < 0xd800 || key > 0xdfff); printable && utf8.RuneCountInString(line) >= termMaxLine {
		r.long = true // the line editor drops the key
	}
	return "", 0, false
}

// history keeps the last 100 lines typed for the up and down arrows, but no empty line, no
// line ended by Ctrl-C, and no line too long to act on.
type history struct {
	r     *termLines
	lines []string
}

func (h *history) Add(line string) {
	if h.r.end != endEnter || h.r.long || strings.TrimSpace(line) == "" {
		return
	}
	if n := len(h.lines); n > 0 && h.lines[n-1] == line {
		return
	}
	if len(h.lines) == 100 {
		h.lines = h.lines[1:]
	}
	h.lines = append(h.lines, line)
}

func (h *history) Len() int { return len(h.lines) }

func (h *history) At(i int) string { return h.lines[len(h.lines)-1-i] }

// keys is the terminal's input as term.Terminal reads it: the bytes read from the terminal
// (by a goroutine of its own, so that a read can end when the shell stops), with Ctrl-C and
// Ctrl-D turned into marker keys, and an interrupt (Shell.Interrupt) or the end of the shell
// turned into keys too. Read is called only from the goroutine that reads lines.
type keys struct {
	chunks  chan []byte // from the reading goroutine; closed when the input ends
	readErr error       // why it ended, set before chunks is closed

	ctx  context.Context // of the read under way
	intr <-chan struct{}
	buf  []byte // translated keys not yet handed to the line editor
	err  error  // why the input ended (after markEnd)
}

// newKeys starts reading in. onCtrlC is asked about each chunk of input that holds a Ctrl-C
// when it is read; if it takes the Ctrl-C (to stop a `wait`), the chunk up to it is dropped.
func newKeys(in io.Reader, onCtrlC func() bool) *keys {
	k := &keys{chunks: make(chan []byte)}
	go func() {
		defer close(k.chunks)
		for {
			b := make([]byte, 256)
			n, err := in.Read(b)
			c := b[:n]
			if i := bytes.LastIndexByte(c, keyCtrlC); i >= 0 && onCtrlC != nil && onCtrlC() {
				c = c[i+1:]
			}
			if len(c) > 0 {
				k.chunks <- c
			}
			if err != nil {
				k.readErr = err
				return
			}
		}
	}()
	return k
}

// enter has an Enter read next, before any other key.
func (k *keys) enter() { k.buf = append([]byte{'\r'}, k.buf...) }

func (k *keys) Read(p []byte) (int, error) {
	if len(k.buf) == 0 {
		select {
		case c, ok := <-k.chunks:
			if !ok {
				k.err = k.readErr
				if k.err == nil {
					k.err = io.EOF
				}
				k.buf = []byte{markEnd, '\r'}
				break
			}
			k.buf = translateKeys(c)
		case <-k.intr:
			k.buf = []byte{markInterrupt, '\r'}
		case <-k.ctx.Done():
			k.err = k.ctx.Err()
			k.buf = []byte{markEnd, '\r'}
		}
	}
	// Hand over up to a Ctrl-D, and no further: what follows it depends on the line so far
	// (onKey may have an Enter read first).
	n := len(k.buf)
	if i := bytes.IndexByte(k.buf, markEOF); i >= 0 {
		n = i + 1
	}
	n = copy(p, k.buf[:n])
	k.buf = k.buf[n:]
	return n, nil
}

// translateKeys turns Ctrl-C into the interrupt marker and Enter, Ctrl-D into its marker,
// and drops marker keys typed as they are.
func translateKeys(c []byte) []byte {
	out := make([]byte, 0, len(c)+2)
	for _, b := range c {
		switch b {
		case keyCtrlC:
			out = append(out, markInterrupt, '\r')
		case keyCtrlD:
			out = append(out, markEOF)
		case markInterrupt, markEOF, markEnd:
		default:
			out = append(out, b)
		}
	}
	return out
}

// openTerminal puts the terminal in raw mode and reads lines from it with term.Terminal, if
// both in and out are that terminal's files; ok false otherwise. restore puts the terminal
// back as it was; it may be called more than once, from any goroutine.
func openTerminal(in io.Reader, out io.Writer, onCtrlC func() bool) (r *termLines, restore func(), ok bool) {
	fin, isFile := in.(*os.File)
	fout, outFile := out.(*os.File)
	if !isFile || !outFile || !term.IsTerminal(int(fin.Fd())) || !term.IsTerminal(int(fout.Fd())) {
		return nil, nil, false
	}
	fd := int(fin.Fd())
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, nil, false
	}
	return newTermLines(fin, fout, int(fout.Fd()), onCtrlC), func() { _ = term.Restore(fd, state) }, true
}

// terminalWidth is the width of out if it is a terminal; 0 if it is not one, 80 if it is
// one that does not say.
func terminalWidth(out io.Writer) int {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
		return w
	}
	return 80
}
