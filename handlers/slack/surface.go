// Package slack is the Slack surface: /activate with a modal, Approve and Deny buttons for
// approvers, DMs that follow a request, DM queries, the App Home, over HTTP (signed
// requests) or Socket Mode. It translates Slack input into engine calls and renders engine
// events as Block Kit; every decision is the engine's.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// Name is the surface's name in requests, events and approval_channel.
const Name = "slack"

// Tuning, named so that operators and tests can reason about them.
const (
	DefaultWorkers        = 64        // slow work: directory, engine, replies
	DefaultTriggerWorkers = 16        // trigger-bound work: views.open within Slack's 3 s
	DefaultSocketHandlers = 256       // Socket Mode envelopes handled at once
	DefaultMaxBody        = 512 << 10 // bytes of one signed request
	DefaultIdentityTTL    = time.Hour // Slack user -> directory user
	DefaultEligibleTTL    = 5 * time.Minute
	DefaultShutdownGrace  = 5 * time.Second
	taskTimeout           = 20 * time.Second // one queued piece of work
	admitWait             = 2 * time.Second  // how long an ack waits for room in a full queue
	fastPathBudget        = 500 * time.Millisecond
	precheckBudget        = 1500 * time.Millisecond // before views.open, within the 3 s trigger
	submitBudget          = 2500 * time.Millisecond // view_submission must answer within 3 s
	apiTimeout            = 10 * time.Second
	eventDedupeTTL        = time.Hour
	listLimit             = 20
	bindingSignin         = "entra_signin"
)

// Options wire a Surface.
type Options struct {
	Client        *slack.Client // the Web API client (see NewClient)
	Engine        *bot.Engine
	KV            bot.KV // identity caches, message timestamps, event dedupe
	SigningSecret string // HTTP transport only
	Logger        *slog.Logger

	Workers        int // default DefaultWorkers
	TriggerWorkers int // default DefaultTriggerWorkers
	SocketHandlers int // default DefaultSocketHandlers
	// QueueBytes bounds the memory held by work waiting for a worker, per lane (slow work,
	// trigger-bound work); default an eighth of GOMEMLIMIT if set, else DefaultQueueBytes.
	QueueBytes    int64
	TaskTimeout   time.Duration // one piece of slow work; default 20 s
	MaxBody       int64         // default DefaultMaxBody
	IdentityTTL   time.Duration // default DefaultIdentityTTL
	EligibleTTL   time.Duration // default DefaultEligibleTTL
	RefTTL        time.Duration // message timestamps and Slack ids; default the policy's retention
	ShutdownGrace time.Duration // default DefaultShutdownGrace
	// Binder binds Slack accounts to directory users by a one-time sign-in; required when
	// the policy says settings.identity_binding: entra_signin (else the profile e-mail is used).
	Binder Binder
	// ResponseURLPrefixes are the response_url prefixes the surface posts to, besides
	// Slack's own hooks hosts (tests point them at a fake).
	ResponseURLPrefixes []string
	// ChannelInterval and ChannelBurst pace the surface's posts and updates per channel
	// (pace.go); defaults DefaultChannelInterval and DefaultChannelBurst, Slack's limit.
	ChannelInterval time.Duration
	ChannelBurst    int
}

// Binder binds a chat account to a directory user by a sign-in with Entra (package entra
// implements it).
type Binder interface {
	// Bound is the directory user id the account was bound to, if it was.
	Bound(ctx context.Context, surface, chatUser string) (string, bool, error)
	// StartBinding gives the sign-in link that binds the account, to the directory user whose
	// mail or UPN is chat.Email (the profile e-mail Slack vouches for) and nobody else.
	StartBinding(ctx context.Context, chat bot.ChatAccount) (bot.Challenge, error)
	// Unbind undoes the account's link (false when it had none).
	Unbind(ctx context.Context, chat bot.ChatAccount) (bool, error)
}

// Surface is the Slack surface and its bot.Notifier.
type Surface struct {
	api    *slack.Client
	eng    *bot.Engine
	kv     bot.KV
	secret string
	log    *slog.Logger
	opt    Options
	pool   *pool    // slow work
	trig   *pool    // trigger-bound work (trigger.go): never behind the slow work
	homes  homeRuns // App Home redraws queued or running
	pace   *pacer   // posts and updates per channel
}

var _ bot.Notifier = (*Surface)(nil)

// NewClient builds the Web API client: apiURL may be empty (https://slack.com/api/).
// Every call has a deadline. extra options come last (e.g. slack.OptionAppLevelToken).
func NewClient(token, apiURL string, extra ...slack.Option) *slack.Client {
	// Connections are kept for the workers that call Slack at once: with Go's default of 2
	// idle connections per host, a burst opened (and handshook) a connection per call.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = DefaultWorkers + DefaultTriggerWorkers + 32
	opts := []slack.Option{slack.OptionHTTPClient(&http.Client{Timeout: apiTimeout, Transport: tr})}
	if apiURL != "" {
		if apiURL[len(apiURL)-1] != '/' {
			apiURL += "/"
		}
		opts = append(opts, slack.OptionAPIURL(apiURL))
	}
	return slack.New(token, append(opts, extra...)...)
}

// New builds the surface. Call Run to start its workers.
func New(o Options) (*Surface, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("slack: a Web API client is required")
	case o.Engine == nil:
		return nil, errors.New("slack: an engine is required")
	case o.KV == nil:
		return nil, errors.New("slack: a KV store is required")
	case o.Engine.Policy().Settings.IdentityBinding == bindingSignin && o.Binder == nil:
		return nil, errors.New("slack: settings.identity_binding is entra_signin, but no Entra sign-in is configured")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.TriggerWorkers <= 0 {
		o.TriggerWorkers = DefaultTriggerWorkers
	}
	if o.SocketHandlers <= 0 {
		o.SocketHandlers = DefaultSocketHandlers
	}
	o.QueueBytes = queueBudget(o.QueueBytes)
	if o.TaskTimeout <= 0 {
		o.TaskTimeout = taskTimeout
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.IdentityTTL <= 0 {
		o.IdentityTTL = DefaultIdentityTTL
	}
	if o.EligibleTTL <= 0 {
		o.EligibleTTL = DefaultEligibleTTL
	}
	if o.RefTTL <= 0 {
		o.RefTTL = o.Engine.Policy().Settings.Retention
		if o.RefTTL <= 0 {
			o.RefTTL = 30 * 24 * time.Hour
		}
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	return &Surface{
		api: o.Client, eng: o.Engine, kv: o.KV, secret: o.SigningSecret,
		log: o.Logger.With("surface", Name), opt: o,
		pool: newPool(o.QueueBytes, o.TaskTimeout), trig: newPool(o.QueueBytes, triggerTimeout), homes: homeRuns{m: map[string]*homeWant{}},
		pace: newPacer(o.ChannelInterval, o.ChannelBurst),
	}, nil
}

// Name is the notifier's name.
func (s *Surface) Name() string { return Name }

// Run runs the workers that do the slow part of Slack requests until ctx ends.
func (s *Surface) Run(ctx context.Context) error {
	onPanic := func(name string, v any) {
		s.log.Error("slack task panicked", "task", name, "panic", fmt.Sprint(v))
	}
	done := make(chan struct{})
	go func() { s.trig.run(ctx, s.opt.TriggerWorkers, s.opt.ShutdownGrace, onPanic); close(done) }()
	s.pool.run(ctx, s.opt.Workers, s.opt.ShutdownGrace, onPanic)
	<-done
	return nil
}

// later queues slow work that carries little data; see laterSized.
func (s *Surface) later(name string, f func(ctx context.Context)) bool {
	return s.laterSized(name, 0, f)
}

// laterSized queues slow work that holds about size bytes of data while it waits. A full
// queue (its memory budget spent) makes it wait up to admitWait for room; false (and a
// log line) when none came or the surface is stopping.
func (s *Surface) laterSized(name string, size int64, f func(ctx context.Context)) bool {
	ctx, cancel := context.WithTimeout(context.Background(), admitWait)
	defer cancel()
	if s.pool.submit(ctx, name, size, f) {
		return true
	}
	n, bytes := s.pool.queued()
	s.log.Warn("slack work queue out of memory budget or stopped; refusing", "task", name, "queued", n, "queued_bytes", bytes)
	return false
}

func (s *Surface) now() time.Time      { return s.eng.Now() }
func (s *Surface) loc() *time.Location { return s.eng.Policy().Settings.Timezone }

func (s *Surface) actor(u bot.User) bot.Actor { return bot.Actor{User: u, Surface: Name} }
