package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownGrace bounds how long in-flight work may take after SIGTERM: HTTP requests
// being answered and jobs being run. Jobs still running after it keep their leases, which
// run out (bot.JobLease) so that another replica takes them over; jobs claimed but not
// started are handed back at once. Keep it below the orchestrator's kill deadline
// (Kubernetes: terminationGracePeriodSeconds, 30 s by default).
const shutdownGrace = 25 * time.Second

// surfacesHelp says which variables enable each surface of `pimbot serve`.
const surfacesHelp = `  Slack  SLACK_BOT_TOKEN (xoxb-...) with SLACK_SIGNING_SECRET (HTTP, POST /slack/*)
         or with SLACK_APP_TOKEN (xapp-..., Socket Mode)
  Teams  MICROSOFT_APP_ID with MICROSOFT_APP_PASSWORD (POST /api/messages)`

// serve runs the HTTP server, the surfaces' runners and the job worker until ctx ends.
// It refuses to start without a surface: nobody could ask for anything, and the jobs it
// would run could tell nobody. (Tests of the server itself call runServer.)
func serve(ctx context.Context, getenv func(string) string, logw io.Writer) error {
	if !platformConfigured(getenv) {
		return errors.New("no surface is configured, so pimbot serve would serve nobody; set the variables of one or both:\n" +
			surfacesHelp + "\n(or run `pimbot shell` to try pimbot in a terminal)")
	}
	a, err := newApp(ctx, getenv, logw)
	if err != nil {
		return err
	}
	defer a.Close()
	addr := getenv("PIMBOT_ADDR")
	if addr == "" {
		addr = ":3000"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (PIMBOT_ADDR): %w", addr, err)
	}
	return runServer(ctx, a, ln)
}

// routes registers the operator endpoints: /healthz, /readyz and /metrics.
func routes(a *app, mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if a.dir == nil {
			http.Error(w, "directory: not configured", http.StatusServiceUnavailable)
			return
		}
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.store.Ping(pctx); err != nil {
			http.Error(w, "redis: not answering", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", a.metrics.handler())
}

// runServer serves on ln until ctx ends, then shuts down: no new connections or claims,
// in-flight requests and jobs finish within shutdownGrace, claimed jobs that were not
// started are handed back to the queue.
func runServer(ctx context.Context, a *app, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mux := http.NewServeMux()
	routes(a, mux)
	var runners []func(context.Context) error
	for _, setup := range []func(context.Context, *app, *http.ServeMux) ([]func(context.Context) error, error){setupAuth, setupSlack, setupTeams, setupDrift} {
		rs, err := setup(ctx, a, mux)
		if err != nil {
			ln.Close()
			return err
		}
		runners = append(runners, rs...)
	}
	srv := &http.Server{Handler: accessLog(a.log, a.metrics.instrumentHTTP(mux)),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second}
	a.log.Info("pimbot serving", "addr", ln.Addr().String(), "redis", a.conn.Kind, "groups", len(a.pol.Groups))

	var wg sync.WaitGroup
	errc := make(chan error, len(runners)+2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.engine.Run(ctx) // returns after in-flight jobs finish and unstarted claims are handed back
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
	a.log.Info("shutting down: no new work; finishing in-flight requests and jobs", "grace", shutdownGrace)
	cancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Warn("HTTP requests still running at the end of the grace period", "err", err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		a.log.Info("shut down cleanly")
	case <-sctx.Done():
		// Jobs still running keep their leases; another replica takes them over when the
		// lease runs out.
		a.log.Warn("jobs still running at the end of the grace period; their leases will be taken over", "grace", shutdownGrace)
	}
	return runErr
}

// accessLog logs each HTTP request at debug level (method, path, status, duration; never
// headers or bodies, which carry tokens and signatures).
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(sw, r)
		log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", sw.code, "duration", time.Since(start).Round(time.Microsecond))
	})
}
