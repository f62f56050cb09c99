// Package conformance_test runs one table of lifecycle stories, with one set of
// expectations, against every surface (Slack, Teams, the shell) through its fake at the wire:
// the real SDK clients pointed at the fakes and the surfaces' real HTTP handlers, or the
// shell's own input and output. It is modelled on Teleport's integrations/access/common
// test suite (testlib/suite.go).
package conformance_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	oncalllocal "github.com/pimbot/pimbot/oncall/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

// Group ids: Teams and Entra name objects by GUID.
const (
	prodID   = "7c1e0f8a-0000-4000-8000-000000000001"
	quorumID = "7c1e0f8a-0000-4000-8000-000000000002"
	oncallID = "7c1e0f8a-0000-4000-8000-000000000003"

	teamsApprovals = "19:approvals@thread.tacv2"
)

// policy is the one policy every story runs on. The groups name a Teams approval channel
// (Teams asks approvers only there) and no Slack one (Slack then asks each approver in a
// direct message, a message of their own). dave approves quorum but his account is
// disabled; mallory is in the directory and nowhere in the policy.
const policy = `
settings: {requests_per_minute: 0, max_pending: 0}
defaults:
  default_duration: 1h
  max_duration: 8h
  min_duration: 5m
groups:
  - name: prod-db
    id: ` + prodID + `
    access: [member, owner]
    eligible: [alice@example.com]
    approvers: [bob@example.com, carol@example.com]
    max_duration: 4h
    approval_channel: {teams: "` + teamsApprovals + `"}
  - name: quorum
    id: ` + quorumID + `
    eligible: [alice@example.com]
    approvers: [bob@example.com, carol@example.com, erin@example.com, dave@example.com]
    approvals_required: 2
    max_duration: 4h
    approval_channel: {teams: "` + teamsApprovals + `"}
  - name: oncall-db
    id: ` + oncallID + `
    eligible: [alice@example.com]
    approvers: [bob@example.com, carol@example.com]
    max_duration: 4h
    approval_channel: {teams: "` + teamsApprovals + `"}
    auto_approve:
      on_call:
        local: {schedules: [db-primary]}
      max_duration: 2h
directory:
  users:
    - {id: 11111111-1111-4111-8111-111111111111, email: alice@example.com, name: Alice}
    - {id: 22222222-2222-4222-8222-222222222222, email: bob@example.com, name: Bob}
    - {id: 33333333-3333-4333-8333-333333333333, email: carol@example.com, name: Carol}
    - {id: 44444444-4444-4444-8444-444444444444, email: dave@example.com, name: Dave, disabled: true}
    - {id: 55555555-5555-4555-8555-555555555555, email: erin@example.com, name: Erin}
    - {id: 66666666-6666-4666-8666-666666666666, email: mallory@example.com, name: Mallory}
  on_call:
    - {name: db-primary, people: [alice@example.com]}
`

// Person is someone in the stories, known to every surface by the same directory account.
type Person struct {
	Key   string // short name: the shell's `as`, Slack's user id suffix
	Email string
	ID    string // directory object id (Teams' aadObjectId)
}

var (
	alice   = Person{"alice", "alice@example.com", "11111111-1111-4111-8111-111111111111"}
	bob     = Person{"bob", "bob@example.com", "22222222-2222-4222-8222-222222222222"}
	carol   = Person{"carol", "carol@example.com", "33333333-3333-4333-8333-333333333333"}
	dave    = Person{"dave", "dave@example.com", "44444444-4444-4444-8444-444444444444"}
	erin    = Person{"erin", "erin@example.com", "55555555-5555-4555-8555-555555555555"}
	mallory = Person{"mallory", "mallory@example.com", "66666666-6666-4666-8666-666666666666"}

	everyone = []Person{alice, bob, carol, dave, erin, mallory}
)

// fakeClock is the engine's injected clock: stories move time instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// world is the core every surface runs on: a real Redis (a fresh prefix), the local
// directory, the engine with a fake clock and the local on-call rota.
type world struct {
	t     testing.TB
	ctx   context.Context
	pol   *bot.Policy
	store *store.Redis
	dir   *local.Directory
	clock *fakeClock
	eng   *bot.Engine
}

func newWorld(t testing.TB) *world {
	t.Helper()
	pol, err := policyfile.Parse("conformance.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, ctx: context.Background(), pol: pol, store: storetest.New(t), dir: local.New(pol),
		clock: &fakeClock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}}
	w.eng = bot.New(bot.Config{Policy: pol, Store: w.store, Directory: w.dir, Clock: w.clock,
		OnCall: []bot.OnCallProvider{oncalllocal.New(pol.Rotas, w.clock.Now)},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return w
}

// get reads a request from the store (what the stories check besides what people see).
func (w *world) get(id string) *bot.Request {
	w.t.Helper()
	r, err := w.store.Get(w.ctx, id)
	if err != nil {
		w.t.Fatalf("request %s: %v", id, err)
	}
	return r
}

// version is the stored version of a request, 0 when it cannot be read (for polling).
func (w *world) version(id string) int64 {
	r, err := w.store.Get(w.ctx, id)
	if err != nil {
		return 0
	}
	return r.Version
}

// holds reports whether the directory holds the access for the person.
func (w *world) holds(p Person, groupID string, access bot.Access) bool {
	w.t.Helper()
	hs, err := w.dir.Holders(w.ctx, groupID, access)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, h := range hs {
		if h.ID == p.ID {
			return true
		}
	}
	return false
}

// user is the person's directory account.
func (w *world) user(p Person) bot.User {
	w.t.Helper()
	u, err := w.dir.ResolveUser(w.ctx, p.Email)
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

// actions is what the engine offers the person on the request now.
func (w *world) actions(p Person, id string) []bot.Action {
	w.t.Helper()
	return w.eng.Actions(w.ctx, bot.Actor{User: w.user(p)}, w.get(id))
}

// runDue runs every job due at the current fake time.
func (w *world) runDue() {
	w.t.Helper()
	for range 50 {
		n, err := w.eng.RunDue(w.ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	w.t.Fatal("jobs keep coming")
}

// waitFor polls cond until it holds (10 s at most): for work a surface does after its ack.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // bounded by the deadline
	}
}

// state is what an action may change: the request's version, and how many requests its
// requester has (an extension is a new request).
type state struct {
	version  int64
	requests int
}

func snapshot(w *world, id string) state {
	r, err := w.store.Get(w.ctx, id)
	if err != nil {
		return state{}
	}
	rs, err := w.store.ListByUser(w.ctx, r.Requester.ID, 100)
	if err != nil {
		w.t.Fatal(err)
	}
	return state{version: r.Version, requests: len(rs)}
}
