package bot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

const (
	waveSize     = 150
	replicaLease = time.Second
)

var errDead = errors.New("replica is dead")

// mortal is one replica's view of the world that dies at a moment the test picks: after
// that, nothing it does reaches Redis or the directory (a kill -9 of a process: it holds
// leases it will never acknowledge or hand back).
type mortal struct {
	dead     atomic.Bool
	claimed  chan struct{} // closed at the first claim that got jobs
	once     sync.Once
	addsLeft atomic.Int64 // dies right after this many adds
}

type mortalStore struct {
	*store.Redis
	m *mortal
}

func (s mortalStore) Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]bot.Claimed, error) {
	if s.m.dead.Load() {
		return nil, errDead
	}
	c, err := s.Redis.Claim(ctx, now, limit, lease)
	if len(c) > 0 {
		s.m.once.Do(func() { close(s.m.claimed) })
	}
	return c, err
}

func (s mortalStore) Commit(ctx context.Context, tx *bot.Tx) error {
	if s.m.dead.Load() {
		return errDead
	}
	return s.Redis.Commit(ctx, tx)
}

func (s mortalStore) CommitAll(ctx context.Context, txs []*bot.Tx) []error {
	errs := make([]error, len(txs))
	if s.m.dead.Load() {
		for i := range errs {
			errs[i] = errDead
		}
		return errs
	}
	return s.Redis.CommitAll(ctx, txs)
}

func (s mortalStore) Retry(ctx context.Context, l bot.Lease, j bot.Job, at time.Time) error {
	if s.m.dead.Load() {
		return errDead
	}
	return s.Redis.Retry(ctx, l, j, at)
}

func (s mortalStore) Release(ctx context.Context, ls []bot.Lease) error {
	if s.m.dead.Load() {
		return errDead
	}
	return s.Redis.Release(ctx, ls)
}

func (s mortalStore) NextDue(ctx context.Context) (time.Time, error) {
	if s.m.dead.Load() {
		return time.Time{}, errDead
	}
	return s.Redis.NextDue(ctx)
}

type mortalDir struct {
	*local.Directory
	m *mortal
}

func (d mortalDir) Add(ctx context.Context, g, u string, a bot.Access) error {
	if d.m.dead.Load() {
		return errDead
	}
	err := d.Directory.Add(ctx, g, u, a)
	if d.m.addsLeft.Add(-1) <= 0 {
		d.m.dead.Store(true) // the grant is in the directory; the commit that records it never happens
	}
	return err
}

func (d mortalDir) Remove(ctx context.Context, g, u string, a bot.Access) error {
	if d.m.dead.Load() {
		return errDead
	}
	return d.Directory.Remove(ctx, g, u, a)
}

func wavePolicy() string {
	var users, members []string
	for i := 0; i < waveSize; i++ {
		users = append(users, fmt.Sprintf("    - {email: w%d@example.com}", i))
		members = append(members, fmt.Sprintf("w%d@example.com", i))
	}
	return `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - name: wave
    id: g-wave
    eligible: [group:everyone@example.com]
    require_approval: false
    require_justification: false
    min_duration: 1s
    reminder_before: 0s
directory:
  users:
` + strings.Join(users, "\n") + `
  groups:
    - {mail: everyone@example.com, members: [` + strings.Join(members, ", ") + `]}
`
}

// Three replicas share one Redis and one directory. A wave of grants starts at once; the
// replica that claimed first dies after ten adds, holding the leases of the rest of its
// batch. The two others take those jobs over when the lease runs out. In the end every
// grant was added once and removed once (repeats are idempotent no-ops), in that order,
// each removal within a lease of its due time, and no transition is recorded twice.
func TestReplicas_OneDiesMidWave_EveryGrantAddedOnceRemovedOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pol, err := policyfile.Parse("wave.yaml", []byte(wavePolicy()))
	if err != nil {
		t.Fatal(err)
	}
	prefix := storetest.Prefix(t)
	dir := local.New(pol)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var takenOver atomic.Int64
	replica := func(s bot.Store, d bot.Directory) *bot.Engine {
		return bot.New(bot.Config{Policy: pol, Store: s, Directory: d, Logger: quiet, Lease: replicaLease, Poll: 20 * time.Millisecond,
			Hooks: bot.Hooks{TakenOver: func() { takenOver.Add(1) }}})
	}
	front := store.New(storetest.Dedicated(t), store.Options{Prefix: prefix})
	var wg sync.WaitGroup
	run := func(ctx context.Context, e *bot.Engine) {
		wg.Add(1)
		go func() { defer wg.Done(); e.Run(ctx) }()
	}
	defer wg.Wait()
	defer cancel()

	// Submit the wave, all due now, each for 2 s.
	takers := replica(front, dir)
	ids := map[string]string{} // request id -> user id
	for i := 0; i < waveSize; i++ {
		u, _ := dir.ResolveUser(ctx, fmt.Sprintf("w%d@example.com", i))
		r, err := takers.Submit(ctx, bot.Actor{User: u, Surface: "test"}, bot.SubmitInput{Group: "wave", Duration: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ids[r.ID] = u.ID
	}
	// The victim starts first so that it claims the first batch, then dies after ten adds.
	m := &mortal{claimed: make(chan struct{})}
	m.addsLeft.Store(10)
	victimCtx, kill := context.WithCancel(ctx)
	defer kill()
	run(victimCtx, replica(mortalStore{store.New(storetest.Dedicated(t), store.Options{Prefix: prefix}), m}, mortalDir{dir, m}))
	select {
	case <-m.claimed:
	case <-time.After(10 * time.Second):
		t.Fatal("the first replica claimed nothing")
	}
	for i := 0; i < 2; i++ {
		run(ctx, replica(store.New(storetest.Dedicated(t), store.Options{Prefix: prefix}), dir))
	}
	waitUntil(t, 10*time.Second, "the first replica to die", m.dead.Load)
	kill()

	waitUntil(t, 30*time.Second, "every request to end", func() bool {
		for id := range ids {
			if r, err := front.Get(ctx, id); err != nil || r.State != bot.StateEnded {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
	ctx = context.Background()

	type life struct {
		adds, removes int
		added         time.Time
		removed       time.Time
	}
	lives := map[string]*life{}
	repeats := 0
	for _, o := range dir.Ops() {
		l := lives[o.UserID]
		if l == nil {
			l = &life{}
			lives[o.UserID] = l
		}
		if !o.Changed {
			repeats++
			continue
		}
		switch o.Op {
		case "add":
			l.adds++
			l.added = o.At
		case "remove":
			l.removes++
			l.removed = o.At
		}
	}
	var worst time.Duration
	for id, user := range ids {
		l := lives[user]
		if l == nil || l.adds != 1 || l.removes != 1 || l.removed.Before(l.added) {
			t.Errorf("request %s: %+v, want one add then one remove", id, l)
			continue
		}
		r, _ := front.Get(ctx, id)
		worst = max(worst, l.removed.Sub(r.EndsAt))
	}
	if hs, _ := dir.Holders(ctx, "g-wave", bot.Member); len(hs) != 0 {
		t.Errorf("%d grants left in the directory", len(hs))
	}
	if worst > replicaLease+2*time.Second {
		t.Errorf("worst removal %s after its due time (lease %s)", worst, replicaLease)
	}
	recs, err := front.AuditSince(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, a := range recs {
		count[a.RequestID+"/"+a.Type]++
	}
	for id := range ids {
		for _, typ := range []string{bot.EvSubmitted, bot.EvActivated, bot.EvEnded} {
			if count[id+"/"+typ] != 1 {
				t.Errorf("request %s: %d %q records, want 1", id, count[id+"/"+typ], typ)
			}
		}
	}
	if takenOver.Load() == 0 {
		t.Error("no lease was taken over: the dead replica held nothing")
	}
	t.Logf("%d grants, 3 replicas, one killed after 10 adds: %d jobs taken over, %d idempotent repeats, worst removal lag %s",
		len(ids), takenOver.Load(), repeats, worst.Round(time.Millisecond))
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
