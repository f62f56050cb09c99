package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	shellsurface "github.com/pimbot/pimbot/handlers/shell"
)

// shell runs the terminal surface on the engine (embedded Redis and local directory by default).
// With an Entra app registration (ENTRA_* / AZURE_*), step-up MFA works here too: the shell
// prints the sign-in link, and the sign-in comes back to GET /auth/callback, served on
// PIMBOT_ADDR (default :3000) for as long as the shell runs.
//
// Start-up logs are shown from warn level unless PIMBOT_LOG_LEVEL says otherwise, so that
// the banner is the first thing a person reads.
func shell(ctx context.Context, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	a, err := newApp(ctx, withDefault(getenv, "PIMBOT_LOG_LEVEL", "warn"), stderr)
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
	return sh.Run(ctx)
}

// withDefault is getenv with a value for key when it is not set.
func withDefault(getenv func(string) string, key, value string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" || k != key {
			return v
		}
		return value
	}
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
