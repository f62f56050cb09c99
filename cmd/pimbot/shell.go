package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	shellsurface "github.com/pimbot/pimbot/handlers/shell"
	"golang.org/x/term"
)

// shell runs the terminal surface on the engine (embedded Redis and local directory by default).
// With an Entra app registration (ENTRA_* / AZURE_*), step-up MFA works here too: the shell
// prints the sign-in link, and the sign-in comes back to GET /auth/callback, served on
// PIMBOT_ADDR (default :3000) for as long as the shell runs.
//
// Start-up logs are shown from warn level unless PIMBOT_LOG_LEVEL says otherwise, so that
// the banner is the first thing a person reads.
func shell(ctx context.Context, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	logs := &switchWriter{w: stderr}
	a, err := newApp(ctx, withDefault(getenv, "PIMBOT_LOG_LEVEL", "warn"), logs)
	if err != nil {
		return err
	}
	defer a.Close()
	mux := http.NewServeMux()
	v, err := setupEntra(ctx, a, mux)
	if err != nil {
		return err
	}
	if v != nil && getenv("PIMBOT_PUBLIC_URL") != "" {
		addr := getenv("PIMBOT_ADDR")
		if addr == "" {
			addr = ":3000"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s (PIMBOT_ADDR) for the sign-in callback: %w", addr, err)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		a.log.Info("sign-in callback served for step-up MFA", "addr", ln.Addr().String())
	}
	opt := shellsurface.Options{Interactive: isTerminal(stdin), Local: a.local}
	if a.conn.Embedded { // no REDIS_URL: what is open ends with the process, and the shell says so
		opt.Ephemeral = a.store
	}
	sh := shellsurface.New(a.engine, stdin, stdout, opt)
	a.engine.AddNotifier(sh)
	if isTerminal(stderr) { // logs on the terminal go above the prompt while the shell edits lines
		logs.set(sh.Writer(stderr))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer shellSignals(cancel, sh.Interrupt)()
	return sh.Run(ctx)
}

// shellSignals makes SIGINT the shell's Ctrl-C for as long as the shell runs: it cancels the
// form or the line being read, or stops a `wait`, and does not end the shell (a terminal in
// raw mode sends no SIGINT for Ctrl-C, it reads the key; SIGINT comes from `kill -INT`, or
// from Ctrl-C when the input is not a terminal). main's signal.NotifyContext would end the
// shell on it, so that is reset. SIGHUP, unless ignored (nohup), ends the shell as SIGTERM
// does, which gives the terminal back. The returned func undoes it all.
func shellSignals(stop func(), interrupt func()) (undo func()) {
	signal.Reset(os.Interrupt)
	ints, hups := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(ints, os.Interrupt)
	if !signal.Ignored(syscall.SIGHUP) {
		signal.Notify(hups, syscall.SIGHUP)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ints:
				interrupt()
			case <-hups:
				stop()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ints)
		signal.Stop(hups)
		close(done)
	}
}

// switchWriter writes to w, which may be changed while it is in use.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	return w.Write(p)
}

func (s *switchWriter) set(w io.Writer) { s.mu.Lock(); s.w = w; s.mu.Unlock() }

// withDefault is getenv with a value for key when it is not set.
func withDefault(getenv func(string) string, key, value string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" || k != key {
			return v
		}
		return value
	}
}

// isTerminal: f is a terminal (not merely a character device such as /dev/null).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}
