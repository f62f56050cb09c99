package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The shell reads its input through a lineSource: on a terminal, x/term's line editor
// (terminal.go); otherwise (pipes, files, tests, a terminal it could not put in raw mode)
// plain lines. Both end a read in the same few ways, so the shell handles each once:
//
//	io.EOF           the input ended, or Ctrl-D at an empty line
//	errInterrupt     Ctrl-C at an empty line, or SIGINT (Shell.Interrupt)
//	errLineCanceled  Ctrl-C after something was typed: that text is dropped
//	tooLongError     the line was longer than the source reads; it was read to its end and dropped
//	ctx.Err()        the shell is stopping
type lineSource interface {
	// readLine reads one line. prompt is shown by a source that draws its own prompt (the
	// terminal's line editor); the shell prints it for the others. An interrupt on intr
	// ends the read with errInterrupt.
	readLine(ctx context.Context, prompt string, intr <-chan struct{}) (string, error)
	// close lets go of the input; a read under way may finish later, unseen.
	close()
}

var (
	errInterrupt    = errors.New("interrupted")
	errLineCanceled = errors.New("line canceled")
)

// tooLongError: a line longer than limit characters was read and dropped.
type tooLongError struct{ limit int }

func (e tooLongError) Error() string { return fmt.Sprintf("line longer than %d characters", e.limit) }

// refusal is what the shell says of the line.
func (e tooLongError) refusal() string {
	return fmt.Sprintf("That line is longer than %d characters; nothing was done.", e.limit)
}

// maxLine is the longest input line plain input reads, in bytes; a longer one is refused.
const maxLine = 64 * 1024

// plainLines reads lines from a reader in a goroutine of its own, one line per readLine, so
// that a read can be left for an interrupt or the end of the shell. A read left that way is
// not lost: the next readLine takes its line (an interrupt never swallows the next line).
type plainLines struct {
	req     chan struct{}
	res     chan lineResult
	stop    chan struct{}
	pending bool // a read was asked for and its line not yet taken
}

type lineResult struct {
	line string
	err  error
}

func newPlainLines(r io.Reader) *plainLines {
	p := &plainLines{req: make(chan struct{}, 1), res: make(chan lineResult, 1), stop: make(chan struct{})}
	in := bufio.NewReaderSize(r, maxLine+2)
	go func() {
		for {
			select {
			case <-p.stop:
				return
			case <-p.req:
			}
			line, err := readPlain(in)
			p.res <- lineResult{line, err} // never blocks: one read at a time, res holds one
		}
	}()
	return p
}

func (p *plainLines) readLine(ctx context.Context, _ string, intr <-chan struct{}) (string, error) {
	select { // an interrupt that came while a command ran is for the line it ran instead of
	case <-intr:
		return "", errInterrupt
	default:
	}
	if !p.pending {
		p.req <- struct{}{}
		p.pending = true
	}
	select {
	case r := <-p.res:
		p.pending = false
		return r.line, r.err
	case <-intr:
		return "", errInterrupt
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (p *plainLines) close() { close(p.stop) }

// readPlain reads one line, without its line end: tooLongError for a line over maxLine (the
// rest of it is read and dropped), io.EOF at the end of input. The end of input is not
// remembered: a terminal's Ctrl-D (in a mode the shell does not edit lines in) ends one
// read only, and the next reads on; a pipe or file that has ended answers io.EOF again.
func readPlain(in *bufio.Reader) (string, error) {
	b, err := in.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) { // drop the rest of the line
			_, err = in.ReadSlice('\n')
		}
		return "", tooLongError{maxLine}
	}
	if err != nil && len(b) == 0 {
		return "", err // io.EOF, or the input failed
	}
	raw := strings.TrimRight(string(b), "\r\n")
	if len(raw) > maxLine {
		return "", tooLongError{maxLine}
	}
	return raw, nil
}
