package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownGrace bounds how long in-flight work may take after SIGTERM.
const shutdownGrace = 25 * time.Second

// serve runs the HTTP server, the surfaces' runners and the job worker until ctx ends.
func serve(ctx context.Context, getenv func(string) string, logw io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a, err := newApp(ctx, getenv, logw)
	if err != nil {
		return err
	}
	defer a.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.store.Ping(pctx); err != nil {
			http.Error(w, "redis: not answering", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	var runners []func(context.Context) error
	for _, setup := range []func(context.Context, *app, *http.ServeMux) ([]func(context.Context) error, error){setupSlack, setupTeams} {
		rs, err := setup(ctx, a, mux)
		if err != nil {
			return err
		}
		runners = append(runners, rs...)
	}
	addr := getenv("PIMBOT_ADDR")
	if addr == "" {
		addr = ":3000"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (PIMBOT_ADDR): %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second}
	a.log.Info("pimbot serving", "addr", ln.Addr().String(), "redis", a.conn.Kind, "groups", len(a.pol.Groups))

	var wg sync.WaitGroup
	errc := make(chan error, len(runners)+2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		errc <- a.engine.Run(ctx) // returns after handing back unfinished leases
	}()
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r(ctx); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("shutting down: no new work; finishing in-flight jobs", "grace", shutdownGrace)
	cancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer scancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	return runErr
}
