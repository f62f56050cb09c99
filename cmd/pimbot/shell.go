package main

import (
	"context"
	"io"
	"os"

	shellsurface "github.com/pimbot/pimbot/handlers/shell"
)

// shell runs the terminal surface on the engine (embedded Redis and local directory by default).
func shell(ctx context.Context, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	a, err := newApp(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	sh := shellsurface.New(a.engine, stdin, stdout, shellsurface.Options{Interactive: isTerminal(stdin), Local: a.local})
	a.engine.AddNotifier(sh)
	return sh.Run(ctx)
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
