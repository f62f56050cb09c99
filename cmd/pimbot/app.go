package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/obs"
	"github.com/pimbot/pimbot/store"
)

// app is the wired process: policy, Redis, directory and engine.
type app struct {
	getenv  func(string) string
	log     *slog.Logger
	pol     *bot.Policy
	conn    *store.Connection
	store   *store.Redis
	dir     bot.Directory
	local   *local.Directory // set when the local directory is used
	oncall  []bot.OnCallProvider
	engine  *bot.Engine
	hooks   bot.Hooks
	metrics *metrics
	prefix  string // the store's key prefix (PIMBOT_REDIS_PREFIX, default "pimbot")
}

// instrument wraps an HTTP transport so that each call to service ("slack", "teams",
// "graph", "entra") is counted and timed in the metrics: pimbot_api_calls_total and
// pimbot_api_call_duration_seconds. A nil base means http.DefaultTransport.
func (a *app) instrument(service string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if a.metrics == nil {
		return base
	}
	return obs.Wrap(base, service, a.metrics)
}

// httpClient is an instrumented client with a timeout, for a platform SDK.
func (a *app) httpClient(service string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: a.instrument(service, nil)}
}

func (a *app) Close() {
	if a.conn != nil {
		a.conn.Close()
	}
}

// newLogger builds the process logger from PIMBOT_LOG_FORMAT (text|json) and PIMBOT_LOG_LEVEL.
func newLogger(getenv func(string) string, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(getenv("PIMBOT_LOG_LEVEL")))); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(getenv("PIMBOT_LOG_FORMAT"), "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// loadPolicy reads PIMBOT_CONFIG, else ./pimbot.yaml, else the built-in example.
func loadPolicy(getenv func(string) string, log *slog.Logger) (*bot.Policy, error) {
	path := getenv("PIMBOT_CONFIG")
	if path == "" {
		if _, err := os.Stat("pimbot.yaml"); err == nil {
			path = "pimbot.yaml"
		}
	}
	if path == "" {
		log.Info("no PIMBOT_CONFIG and no ./pimbot.yaml: using the built-in example policy (pimbot.example.yaml)")
		return policyfile.Parse("pimbot.example.yaml (built in)", pimbot.ExamplePolicy)
	}
	pol, err := policyfile.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("PIMBOT_CONFIG=%s: no such file", path)
	}
	return pol, err
}

// newApp wires everything a command needs. The caller must Close it.
func newApp(ctx context.Context, getenv func(string) string, logw io.Writer) (*app, error) {
	a := &app{getenv: getenv, log: newLogger(getenv, logw), metrics: newMetrics()}
	a.hooks = a.metrics.hooks()
	var err error
	if a.pol, err = loadPolicy(getenv, a.log); err != nil {
		return nil, err
	}
	if a.conn, err = store.Connect(ctx, getenv("REDIS_URL"), a.log); err != nil {
		return nil, err
	}
	if a.prefix = getenv("PIMBOT_REDIS_PREFIX"); a.prefix == "" {
		a.prefix = store.DefaultPrefix
	}
	a.store = store.New(a.conn.Client, store.Options{Prefix: a.prefix, Retention: a.pol.Settings.Retention})
	a.metrics.reg.MustRegister(newQueueCollector(a.conn.Client, a.prefix, time.Now))
	if a.dir, err = newDirectory(ctx, a); err != nil {
		a.Close()
		return nil, err
	}
	if err := bot.CheckModes(a.pol, a.dir); err != nil { // a pim group needs a directory that can assign through PIM
		a.Close()
		return nil, err
	}
	client := func(service string) *http.Client { return a.httpClient(service, 10*time.Second) }
	if a.oncall, err = onCallProviders(getenv, a.pol, client, a.log); err != nil {
		a.Close()
		return nil, err
	}
	a.engine = bot.New(bot.Config{Policy: a.pol, Store: a.store, Directory: a.dir, Logger: a.log, Hooks: a.hooks, OnCall: a.oncall})
	return a, nil
}

// newDirectory picks Microsoft Graph when credentials are set, else the local directory.
func newDirectory(ctx context.Context, a *app) (bot.Directory, error) {
	d, ok, err := graphDirectory(ctx, a)
	if err != nil {
		return nil, err
	}
	if ok {
		return d, nil
	}
	a.log.Info("no Graph credentials (AZURE_* or GRAPH_ACCESS_TOKEN): using the local directory from the policy file's directory: section")
	a.local = local.New(a.pol)
	return a.local, nil
}
