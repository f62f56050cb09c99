package bot_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

// fakeClock is the injected clock: tests move time instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder is a surface that remembers what it was asked to tell people.
type recorder struct {
	mu     sync.Mutex
	events []bot.Event
}

func (r *recorder) Name() string { return "test" }
func (r *recorder) Notify(_ context.Context, ev bot.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) types(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if ev.Request.ID == id {
			out = append(out, ev.Type)
		}
	}
	return out
}

type env struct {
	t     *testing.T
	ctx   context.Context
	pol   *bot.Policy
	store *store.Redis
	dir   *local.Directory
	clock *fakeClock
	eng   *bot.Engine
	rec   *recorder
}

const testPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
defaults:
  default_duration: 1h
  max_duration: 8h
  min_duration: 5m
groups:
  - name: prod-db-admins
    id: g-prod
    access: [member, owner]
    eligible: [alice@example.com, group:sre@example.com]
    approvers: [bob@example.com, carol@example.com]
    max_duration: 4h
  - name: quorum
    id: g-quorum
    eligible: [alice@example.com, bob@example.com]
    approvers: [bob@example.com, carol@example.com, dave@example.com]
    approvals_required: 2
  - name: self
    id: g-self
    eligible: [bob@example.com]
    approvers: [bob@example.com, carol@example.com]
    allow_self_approval: false
  - name: selfok
    id: g-selfok
    eligible: [bob@example.com]
    approvers: [bob@example.com]
    allow_self_approval: true
  - name: sandbox
    id: g-sandbox
    eligible: [group:engineering@example.com]
    require_approval: false
    require_justification: false
    min_duration: 1s
    default_duration: 2m
    reminder_before: 30s
  - name: ticketed
    id: g-ticket
    eligible: [alice@example.com]
    require_approval: false
    require_ticket: true
directory:
  users:
    - {email: alice@example.com, name: Alice}
    - {email: bob@example.com, name: Bob}
    - {email: carol@example.com, name: Carol}
    - {email: dave@example.com, name: Dave}
    - {email: mallory@example.com, name: Mallory}
    - {email: erin@example.com, name: Erin}
  groups:
    - {mail: sre@example.com, members: [erin@example.com]}
    - {mail: engineering@example.com, members: [alice@example.com, group:sre@example.com]}
`

func newEnv(t *testing.T) *env { return newEnvPolicy(t, testPolicy) }

func newEnvPolicy(t *testing.T, policy string) *env {
	t.Helper()
	pol, err := policyfile.Parse("test.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), pol: pol, store: storetest.New(t), dir: local.New(pol),
		clock: &fakeClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}, rec: &recorder{}}
	e.eng = bot.New(bot.Config{Policy: pol, Store: e.store, Directory: e.dir, Clock: e.clock, Notifiers: []bot.Notifier{e.rec}})
	return e
}

func (e *env) actor(name string) bot.Actor {
	e.t.Helper()
	u, err := e.dir.ResolveUser(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return bot.Actor{User: u, Surface: "test"}
}

// drain runs every job due at the current fake time.
func (e *env) drain() {
	e.t.Helper()
	for i := 0; i < 20; i++ {
		n, err := e.eng.RunDue(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("jobs keep coming")
}

func (e *env) get(id string) *bot.Request {
	e.t.Helper()
	r, err := e.store.Get(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) holds(user, group string, access bot.Access) bool {
	e.t.Helper()
	hs, err := e.dir.Holders(e.ctx, group, access)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range hs {
		if h.Email == user {
			return true
		}
	}
	return false
}
