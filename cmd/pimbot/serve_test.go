package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// serveUsers people may activate the "fast" group (no approval) in the serve tests.
const serveUsers = bot.WorkerParallel + 8

func servePolicy(t *testing.T) string {
	t.Helper()
	var users, members []string
	for i := 0; i < serveUsers; i++ {
		users = append(users, fmt.Sprintf("    - {email: u%d@example.com}", i))
		members = append(members, fmt.Sprintf("u%d@example.com", i))
	}
	policy := `
settings: {requests_per_minute: 0, max_pending: 0}
defaults: {reminder_before: 0s, require_justification: false}
groups:
  - name: fast
    id: g-fast
    eligible: [group:everyone@example.com]
    require_approval: false
  - name: guarded
    id: g-guarded
    eligible: [group:everyone@example.com]
    approvers: [boss@example.com]
directory:
  users:
    - {email: boss@example.com}
` + strings.Join(users, "\n") + `
  groups:
    - {mail: everyone@example.com, members: [` + strings.Join(members, ", ") + `]}
`
	path := filepath.Join(t.TempDir(), "pimbot.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a log sink that the server writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// server is one running `pimbot serve` (its app and the URL it listens on).
type server struct {
	t    *testing.T
	app  *app
	url  string
	logs *syncBuffer
	done chan error
}

// newServeApp wires an app on the test Redis under a fresh prefix, not yet serving.
func newServeApp(t *testing.T, extra map[string]string) (*app, *syncBuffer) {
	t.Helper()
	env := map[string]string{"PIMBOT_CONFIG": servePolicy(t)}
	for k, v := range extra {
		env[k] = v
	}
	logs := &syncBuffer{}
	a, err := newApp(context.Background(), testEnv(t, env), logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, logs
}

// start serves a on a loopback port until ctx ends.
func start(t *testing.T, ctx context.Context, a *app, logs *syncBuffer) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, app: a, url: "http://" + ln.Addr().String(), logs: logs, done: make(chan error, 1)}
	go func() { s.done <- runServer(ctx, a, ln) }()
	return s
}

func (s *server) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *server) wait() error {
	s.t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(shutdownGrace + 5*time.Second):
		s.t.Fatal("the server did not stop")
		return nil
	}
}

func actor(t *testing.T, a *app, email string) bot.Actor {
	t.Helper()
	u, err := a.dir.ResolveUser(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return bot.Actor{User: u, Surface: "shell"}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *server) state(id string) bot.State {
	s.t.Helper()
	r, err := s.app.store.Get(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return r.State
}

// Health, readiness and every family of metrics, each moved by something that happened:
// requests by outcome, a decision, jobs and their lag, leases taken over from a worker that
// died, the queue and grant gauges read from Redis, inbound HTTP and outbound API calls.
func TestServe_HealthReadyAndMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, logs := newServeApp(t, nil)
	fast, err := a.engine.Submit(ctx, actor(t, a, "u0@example.com"), bot.SubmitInput{Group: "fast", Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.engine.Submit(ctx, actor(t, a, "u1@example.com"), bot.SubmitInput{Group: "fast", Duration: 100 * time.Hour}); err == nil {
		t.Fatal("a 100 h request was accepted")
	}
	guarded, err := a.engine.Submit(ctx, actor(t, a, "u1@example.com"), bot.SubmitInput{Group: "guarded", Reason: "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.engine.Approve(ctx, actor(t, a, "boss@example.com"), guarded.ID); err != nil {
		t.Fatal(err)
	}
	// Another replica claims both activations and dies: its lease runs out at once.
	claimed, err := a.store.Claim(ctx, time.Now(), 10, time.Millisecond)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %d jobs (%v), want the 2 activations", len(claimed), err)
	}
	s := start(t, ctx, a, logs)
	waitFor(t, "both grants active", 10*time.Second, func() bool {
		return s.state(fast.ID) == bot.StateActive && s.state(guarded.ID) == bot.StateActive
	})
	if code, body := s.get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := s.get("/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	// An outbound call through the instrumented client, as a surface would make it.
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer slack.Close()
	resp, err := a.httpClient("slack", 5*time.Second).Post(slack.URL+"/api/chat.postMessage", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	code, body := s.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`pimbot_requests_total{outcome="accepted",surface="shell"} 2`,
		`pimbot_requests_total{outcome="invalid",surface="shell"} 1`,
		`pimbot_decisions_total{decision="approve"} 1`,
		`pimbot_jobs_total{kind="activate",result="ok"} 2`,
		`pimbot_job_lag_seconds_count{kind="activate"} 2`,
		`pimbot_leases_taken_over_total 2`,
		`pimbot_redis_up 1`,
		`pimbot_active_grants 2`,
		`pimbot_open_requests 2`,
		`pimbot_jobs_scheduled 2`, // the two removals
		`pimbot_jobs_due 0`,
		`pimbot_jobs_leased 0`,
		`pimbot_http_requests_total{code="200",route="GET /healthz"} 1`,
		`pimbot_http_requests_total{code="200",route="GET /readyz"} 1`,
		`pimbot_http_request_duration_seconds_count{route="GET /healthz"} 1`,
		`pimbot_api_calls_total{operation="chat.postMessage",service="slack",status="200"} 1`,
		`pimbot_api_call_duration_seconds_count{operation="chat.postMessage",service="slack"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, "\n"+want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepLines(body, "pimbot_"))
	}
	cancel()
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// When Redis stops answering, the process is still alive (/healthz) but not ready (/readyz),
// and the metrics say so instead of failing the scrape.
func TestServe_ReadyzFailsWhenRedisStopsAnswering(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, logs := newServeApp(t, nil)
	s := start(t, ctx, a, logs)
	if code, _ := s.get("/readyz"); code != 200 {
		t.Fatalf("/readyz before: %d", code)
	}
	a.conn.Client.Close()
	if code, body := s.get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Fatalf("/readyz with Redis gone: %d %q", code, body)
	}
	if code, _ := s.get("/healthz"); code != 200 {
		t.Fatalf("/healthz with Redis gone: %d", code)
	}
	if code, body := s.get("/metrics"); code != 200 || !strings.Contains(body, "\npimbot_redis_up 0") {
		t.Fatalf("/metrics with Redis gone: %d\n%s", code, grepLines(body, "pimbot_redis"))
	}
	cancel()
	s.wait()
}

// SIGTERM while a batch of activations is in flight: no new claims, the jobs already
// running finish (their grants become active), and the claimed jobs not yet started are
// handed back at once (due now, no lease left), so another replica runs them without
// waiting for a lease to run out.
func TestServe_SIGTERMFinishesInFlightAndHandsBackTheRest(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	a, logs := newServeApp(t, nil)
	var ids []string
	for i := 0; i < serveUsers; i++ {
		r, err := a.engine.Submit(ctx, actor(t, a, fmt.Sprintf("u%d@example.com", i)), bot.SubmitInput{Group: "fast", Duration: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	a.local.SetDelay(time.Second) // each directory call takes a second, like a slow Graph
	rdb := a.conn.Client
	lease := "{" + a.prefix + "}:lease"
	s := start(t, ctx, a, logs)
	// One claim leases every activation; WorkerParallel of them start, the rest wait.
	waitFor(t, "the batch to be claimed", 10*time.Second, func() bool { return rdb.ZCard(context.Background(), lease).Val() > 0 })
	began := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped %s after SIGTERM", time.Since(began).Round(time.Millisecond))
	bg := context.Background()
	if n := rdb.ZCard(bg, lease).Val(); n != 0 {
		t.Fatalf("%d leases still held after shutdown", n)
	}
	var active, handedBack []string
	for _, id := range ids {
		switch st := s.state(id); st {
		case bot.StateActive:
			active = append(active, id)
		case bot.StateScheduled:
			handedBack = append(handedBack, id)
			due, err := rdb.ZScore(bg, "{"+a.prefix+"}:due", bot.JobID(bot.JobActivate, id)).Result()
			if err != nil || time.UnixMilli(int64(due)).After(time.Now()) {
				t.Errorf("request %s: activation not due again at once (%v, %v)", id, due, err)
			}
		default:
			t.Errorf("request %s: state %s", id, st)
		}
	}
	if len(active) != bot.WorkerParallel || len(handedBack) != serveUsers-bot.WorkerParallel {
		t.Fatalf("%d finished and %d handed back, want %d and %d", len(active), len(handedBack), bot.WorkerParallel, serveUsers-bot.WorkerParallel)
	}
	if !strings.Contains(logs.String(), "shut down cleanly") {
		t.Errorf("no clean shutdown in the log:\n%s", logs.String())
	}
	// Another replica runs the handed-back jobs at once: no lease had to run out.
	a.local.SetDelay(0)
	var takenOver int
	other := bot.New(bot.Config{Policy: a.pol, Store: a.store, Directory: a.local,
		Hooks: bot.Hooks{TakenOver: func() { takenOver++ }}})
	if n, err := other.RunDue(bg); err != nil || n != len(handedBack) {
		t.Fatalf("the other replica ran %d jobs (%v), want %d", n, err, len(handedBack))
	}
	for _, id := range handedBack {
		if st := s.state(id); st != bot.StateActive {
			t.Errorf("request %s: %s after the other replica ran", id, st)
		}
	}
	if takenOver != 0 {
		t.Errorf("%d jobs were taken over after their lease ran out; they should have been handed back", takenOver)
	}
}

// PIMBOT_LOG_FORMAT=json gives one JSON object per line; a job's lines name its request;
// PIMBOT_LOG_LEVEL=debug adds the HTTP access log (method, path, status; no headers).
func TestLogs_JSONLinesCarryTheRequestID(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, logs := newServeApp(t, map[string]string{"PIMBOT_LOG_FORMAT": "json", "PIMBOT_LOG_LEVEL": "debug"})
	a.local.SetFault(func(op, group, user string) error {
		return fmt.Errorf("directory answered 503: %w", bot.ErrUnavailable)
	})
	r, err := a.engine.Submit(ctx, actor(t, a, "u0@example.com"), bot.SubmitInput{Group: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, ctx, a, logs)
	waitFor(t, "a failed job in the log", 10*time.Second, func() bool { return strings.Contains(logs.String(), "job failed") })
	s.get("/healthz")
	cancel()
	s.wait()
	var jobLines, accessLines int
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		if m["time"] == nil || m["level"] == nil || m["msg"] == nil {
			t.Errorf("line without time, level or msg: %q", line)
		}
		if _, ok := m["job"]; ok {
			jobLines++
			if m["request_id"] != r.ID {
				t.Errorf("job line without its request id %s: %q", r.ID, line)
			}
		}
		if m["msg"] == "http" && m["path"] == "/healthz" {
			accessLines++
		}
	}
	if jobLines == 0 || accessLines != 1 {
		t.Fatalf("%d job lines, %d access lines:\n%s", jobLines, accessLines, logs.String())
	}
}

func TestNewLogger_FormatAndLevel(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		json, info    bool
	}{
		{"", "", false, true},
		{"json", "", true, true},
		{"JSON", "warn", true, false},
		{"text", "debug", false, true},
		{"text", "nonsense", false, true}, // an unknown level falls back to info
	} {
		var b bytes.Buffer
		env := map[string]string{"PIMBOT_LOG_FORMAT": tc.format, "PIMBOT_LOG_LEVEL": tc.level}
		log := newLogger(func(k string) string { return env[k] }, &b)
		log.Info("hello", "request_id", "R7KX2M9Q")
		out := b.String()
		if got := out != ""; got != tc.info {
			t.Errorf("%+v: info logged = %v", tc, got)
			continue
		}
		if out != "" && strings.HasPrefix(out, "{") != tc.json {
			t.Errorf("%+v: %q", tc, out)
		}
	}
}
