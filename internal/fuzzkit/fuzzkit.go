// Package fuzzkit holds what the surfaces' fuzz targets share: a log handler that keeps the
// lines a target must fail on, and a bound on how long go test -fuzz shrinks new inputs.
package fuzzkit

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Tap is a slog.Handler that keeps every line (message and attributes) containing one of
// its words; the rest is dropped.
type Tap struct {
	words []string
	mu    sync.Mutex
	seen  []string
}

// NewTap keeps the lines that contain any of words.
func NewTap(words ...string) *Tap { return &Tap{words: words} }

func (t *Tap) Enabled(context.Context, slog.Level) bool { return true }

func (t *Tap) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	line := b.String()
	for _, w := range t.words {
		if strings.Contains(line, w) {
			t.mu.Lock()
			t.seen = append(t.seen, line)
			t.mu.Unlock()
			return nil
		}
	}
	return nil
}

func (t *Tap) WithAttrs([]slog.Attr) slog.Handler { return t }
func (t *Tap) WithGroup(string) slog.Handler      { return t }

// Take returns the lines kept since the last Take.
func (t *Tap) Take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.seen
	t.seen = nil
	return out
}

// BoundMinimization caps how long go test -fuzz spends shrinking each new input to about a
// second (its default is a minute), unless -fuzzminimizetime was given: an execution of the
// surfaces' targets takes about a millisecond, and the default would spend CI's few seconds
// of fuzzing on shrinking one input.
func BoundMinimization() {
	given := false
	flag.Visit(func(fl *flag.Flag) { given = given || fl.Name == "test.fuzzminimizetime" })
	if !given {
		_ = flag.Set("test.fuzzminimizetime", "1s")
	}
}
