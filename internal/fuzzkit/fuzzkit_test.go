package fuzzkit

import (
	"log/slog"
	"slices"
	"testing"
)

func TestTap_KeepsOnlyMatchingLines(t *testing.T) {
	tap := NewTap("panicked", "BadSyntax")
	log := slog.New(tap)
	log.Info("queued task panicked", "err", "index out of range")
	log.Info("all fine", "n", 1)
	log.With("x", 1).Warn("connector answered", "code", "BadSyntax")
	want := []string{"queued task panicked err=index out of range", "connector answered code=BadSyntax"}
	if got := tap.Take(); !slices.Equal(got, want) {
		t.Fatalf("kept %q, want %q", got, want)
	}
	if got := tap.Take(); len(got) != 0 {
		t.Fatalf("Take did not clear: %q", got)
	}
}
