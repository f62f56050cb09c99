package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

func job(id string, due time.Time) bot.Job {
	return bot.Job{ID: "remind:" + id, Kind: bot.JobRemind, RequestID: id, Due: due}
}

func TestQueue_ClaimLeaseAckAndRedelivery(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	if err := s.Commit(ctx, &bot.Tx{Schedule: []bot.Job{job("A2345678", t0), job("B2345678", t0.Add(time.Minute))}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claim(ctx, t0, 10, 30*time.Second)
	if err != nil || len(got) != 1 || got[0].Job.RequestID != "A2345678" {
		t.Fatalf("claim at t0: %v %v", got, err)
	}
	// A second worker at the same moment gets nothing: the job is leased.
	if again, _ := s.Claim(ctx, t0.Add(time.Second), 10, 30*time.Second); len(again) != 0 {
		t.Fatalf("leased job claimed twice: %v", again)
	}
	// The first worker dies; after the lease the job is re-delivered, marked as taken over.
	re, _ := s.Claim(ctx, t0.Add(31*time.Second), 10, 30*time.Second)
	if len(re) != 1 || re[0].Job.ID != "remind:A2345678" || !re[0].TakenOver {
		t.Fatalf("re-delivery: %+v", re)
	}
	// The first claim's lease was taken over: its ack is refused, the new holder's counts.
	if err := s.Commit(ctx, &bot.Tx{Ack: []bot.Lease{got[0].Lease()}}); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Claim(ctx, t0.Add(45*time.Second), 10, 30*time.Second); len(after) != 0 {
		t.Fatalf("the new holder's lease was cut short by a stale ack: %+v", after)
	}
	re, _ = s.Claim(ctx, t0.Add(55*time.Second), 10, 30*time.Second)
	if len(re) != 0 {
		t.Fatalf("claimed during the new holder's lease: %+v", re)
	}
	// The stale ack did not remove the job: it comes back when the new holder's lease ends.
	re, _ = s.Claim(ctx, t0.Add(62*time.Second), 1, 30*time.Second)
	if len(re) != 1 || re[0].Job.ID != "remind:A2345678" {
		t.Fatalf("a stale claim's ack removed the job: %+v", re)
	}
	if err := s.Commit(ctx, &bot.Tx{Ack: []bot.Lease{re[0].Lease()}}); err != nil {
		t.Fatal(err)
	}
	if later, _ := s.Claim(ctx, t0.Add(5*time.Minute), 10, 30*time.Second); len(later) != 1 || later[0].Job.RequestID != "B2345678" {
		t.Fatalf("after ack only B remains: %+v", later)
	}
	if next, _ := s.NextDue(ctx); next.IsZero() {
		t.Fatal("B's lease must still be pending")
	}
}

func TestQueue_RetryMovesTheJobLaterWithAttempt(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	s.Commit(ctx, &bot.Tx{Schedule: []bot.Job{job("A2345678", t0)}})
	c, _ := s.Claim(ctx, t0, 10, time.Minute)
	if err := s.Retry(ctx, c[0].Lease(), c[0].Job, t0.Add(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, t0.Add(3*time.Second), 10, time.Minute); len(c) != 0 {
		t.Fatal("retried job ran early")
	}
	c, _ = s.Claim(ctx, t0.Add(4*time.Second), 10, time.Minute)
	if len(c) != 1 || c[0].Job.Attempt != 1 {
		t.Fatalf("retry: %+v", c)
	}
	if err := s.Release(ctx, []bot.Lease{c[0].Lease()}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, time.Now().Add(time.Second), 10, time.Minute); len(c) != 1 {
		t.Fatalf("released job not claimable: %+v", c)
	}
}

// Many workers claim at once: every job goes to exactly one of them.
func TestQueue_ConcurrentWorkersNeverShareAJob(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	const n = 500
	var jobs []bot.Job
	for i := 0; i < n; i++ {
		jobs = append(jobs, job(fmt.Sprintf("J%07d", i), t0))
	}
	if err := s.Commit(ctx, &bot.Tx{Schedule: jobs}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := s.Claim(ctx, t0, 37, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if len(c) == 0 {
					return
				}
				mu.Lock()
				for _, x := range c {
					seen[x.Job.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct jobs claimed, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Fatalf("%s claimed %d times", id, k)
		}
	}
}

func TestCommit_VersionCheckIsAtomic(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	r := &bot.Request{ID: "V2345678", Kind: bot.KindActivate, State: bot.StatePending, Requester: bot.User{ID: "u1"}, GroupID: "g", Access: bot.Member, CreatedAt: time.Now()}
	if err := s.Commit(ctx, &bot.Tx{Puts: []bot.Put{{Request: r}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &bot.Tx{Puts: []bot.Put{{Request: r}}}); !errors.Is(err, bot.ErrConflict) {
		t.Fatalf("create twice: %v", err)
	}
	// A stale write also carrying a job and an audit record writes none of them.
	stale := r.Clone()
	stale.State = bot.StateDenied
	err := s.Commit(ctx, &bot.Tx{Puts: []bot.Put{{Request: stale, Expect: 7}}, Schedule: []bot.Job{job("V2345678", time.Now())},
		Audit: []bot.AuditRecord{{At: time.Now(), Type: "x"}}})
	if !errors.Is(err, bot.ErrConflict) {
		t.Fatalf("stale write: %v", err)
	}
	got, _ := s.Get(ctx, "V2345678")
	if got.State != bot.StatePending || got.Version != 1 {
		t.Fatalf("stale write applied: %+v", got)
	}
	if next, _ := s.NextDue(ctx); !next.IsZero() {
		t.Fatal("stale write scheduled a job")
	}
	if recs, _ := s.AuditSince(ctx, time.Time{}, 0); len(recs) != 0 {
		t.Fatal("stale write appended audit")
	}
	if _, err := s.Get(ctx, "NOTTHERE"); !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestKV(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	if _, ok, _ := s.GetValue(ctx, "k"); ok {
		t.Fatal("empty store has a value")
	}
	s.SetValue(ctx, "k", "v", time.Minute)
	if v, ok, err := s.GetValue(ctx, "k"); !ok || v != "v" || err != nil {
		t.Fatalf("%q %v %v", v, ok, err)
	}
	if ok, _ := s.PutIfAbsent(ctx, "k", "w", time.Minute); ok {
		t.Fatal("PutIfAbsent overwrote")
	}
	if ok, _ := s.PutIfAbsent(ctx, "k2", "w", time.Minute); !ok {
		t.Fatal("PutIfAbsent refused a new key")
	}
	s.DeleteValue(ctx, "k")
	if _, ok, _ := s.GetValue(ctx, "k"); ok {
		t.Fatal("delete failed")
	}
}

// The scripts' guards: a claim that was taken over can neither commit under its fence, nor
// retry, release or acknowledge the job; an open lock is released only by its holder.
func TestQueue_GuardsAgainstAStaleClaim(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	r := &bot.Request{ID: "A2345678", State: bot.StateScheduled, Requester: bot.User{ID: "u1"}, GroupID: "g", Access: bot.Member}
	lock := bot.Lock{Key: "u1|g|member", RequestID: r.ID, UserID: "u1"}
	if err := s.Commit(ctx, &bot.Tx{Puts: []bot.Put{{Request: r}}, Schedule: []bot.Job{job(r.ID, t0)}, OpenLock: []bot.Lock{lock}}); err != nil {
		t.Fatal(err)
	}
	stale, _ := s.Claim(ctx, t0, 10, 30*time.Second)
	fresh, _ := s.Claim(ctx, t0.Add(31*time.Second), 10, 30*time.Second)
	if len(stale) != 1 || len(fresh) != 1 || stale[0].Token == fresh[0].Token {
		t.Fatalf("claims: %+v %+v", stale, fresh)
	}
	l := stale[0].Lease()
	next := r.Clone()
	next.Grant = bot.GrantAdding
	err := s.Commit(ctx, &bot.Tx{Puts: []bot.Put{{Request: next, Expect: 1}}, Fence: &l})
	if !errors.Is(err, bot.ErrFenced) {
		t.Fatalf("commit under a stale fence: %v", err)
	}
	if got, _ := s.Get(ctx, r.ID); got.Version != 1 || got.Grant != bot.GrantNone {
		t.Fatalf("a fenced commit wrote: v%d %q", got.Version, got.Grant)
	}
	if err := s.Retry(ctx, l, stale[0].Job, t0.Add(time.Hour)); !errors.Is(err, bot.ErrFenced) {
		t.Fatalf("retry by a stale claim: %v", err)
	}
	if err := s.Release(ctx, []bot.Lease{l}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, t0.Add(40*time.Second), 10, 30*time.Second); len(c) != 0 {
		t.Fatalf("a stale release handed the job back while its new holder runs it: %+v", c)
	}
	// Another request cannot release the lock it does not hold.
	if err := s.Commit(ctx, &bot.Tx{OpenUnlock: []bot.Lock{{Key: lock.Key, RequestID: "B2345678", UserID: "u1"}}}); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenRequests(ctx); open[lock.Key] != r.ID {
		t.Fatalf("the lock was released by a non-holder: %v", open)
	}
	// The new holder's fenced commit and ack go through.
	fl := fresh[0].Lease()
	if err := s.Commit(ctx, &bot.Tx{Puts: []bot.Put{{Request: next, Expect: 1}}, Fence: &fl, Ack: []bot.Lease{fl}, OpenUnlock: []bot.Lock{lock}}); err != nil {
		t.Fatal(err)
	}
	if open, _ := s.OpenRequests(ctx); len(open) != 0 {
		t.Fatalf("the holder's unlock: %v", open)
	}
	if c, _ := s.Claim(ctx, t0.Add(2*time.Minute), 10, 30*time.Second); len(c) != 0 {
		t.Fatalf("acknowledged job came back: %+v", c)
	}
}

// A row that cannot be decoded is moved to the dead-letter set; the rest of the batch is
// claimed as usual.
func TestQueue_PoisonRowIsDeadLettered(t *testing.T) {
	ctx := context.Background()
	prefix := storetest.Prefix(t)
	rdb := storetest.Client(t)
	s := store.New(rdb, store.Options{Prefix: prefix})
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	if err := s.Commit(ctx, &bot.Tx{Schedule: []bot.Job{job("A2345678", t0), job("B2345678", t0)}}); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, "{"+prefix+"}:job", "remind:A2345678", "{not json")
	c, err := s.Claim(ctx, t0, 10, time.Minute)
	if err != nil || len(c) != 2 {
		t.Fatalf("claim: %+v %v", c, err)
	}
	var bad, good int
	for _, x := range c {
		if x.Err != nil && x.Job.ID == "remind:A2345678" && x.Job.RequestID == "A2345678" {
			bad++
		} else if x.Err == nil {
			good++
		}
	}
	if bad != 1 || good != 1 {
		t.Fatalf("claimed %+v", c)
	}
	dl, err := s.DeadLetters(ctx)
	if err != nil || len(dl) != 1 || dl[0].Job != "{not json" || dl[0].Error == "" {
		t.Fatalf("dead letters: %+v %v", dl, err)
	}
	if again, _ := s.Claim(ctx, t0.Add(time.Hour), 10, time.Minute); len(again) != 1 || again[0].Job.ID != "remind:B2345678" {
		t.Fatalf("after the lease: %+v (the poison row must not come back)", again)
	}
}

// A group commit applies each transaction on its own: one refused (a version conflict, a
// stale fence) does not stop the others, and each answer is in its place.
func TestCommitAll_EachTransactionOnItsOwn(t *testing.T) {
	ctx := context.Background()
	s := storetest.New(t)
	a := &bot.Request{ID: "A2345678", State: bot.StatePending, Requester: bot.User{ID: "u1"}}
	b := &bot.Request{ID: "B2345678", State: bot.StatePending, Requester: bot.User{ID: "u2"}}
	if err := s.Commit(ctx, &bot.Tx{Puts: []bot.Put{{Request: a}, {Request: b}}}); err != nil {
		t.Fatal(err)
	}
	a2, b2 := a.Clone(), b.Clone()
	a2.State, b2.State = bot.StateScheduled, bot.StateScheduled
	stale := bot.Lease{JobID: "activate:B2345678", Token: "not-the-holder"}
	errs := s.CommitAll(ctx, []*bot.Tx{
		{Puts: []bot.Put{{Request: a2, Expect: 7}}}, // wrong version
		{Puts: []bot.Put{{Request: b2, Expect: 1}}}, // fine
		{Puts: []bot.Put{{Request: a2, Expect: 1}}, Fence: &stale},
		{Puts: []bot.Put{{Request: a2, Expect: 1}}}, // fine: sees the writes before it
		{Puts: []bot.Put{{Request: b2, Expect: 1}}}, // b is at version 2 now
	})
	want := []error{bot.ErrConflict, nil, bot.ErrFenced, nil, bot.ErrConflict}
	for i := range want {
		if (want[i] == nil) != (errs[i] == nil) || (want[i] != nil && !errors.Is(errs[i], want[i])) {
			t.Fatalf("answer %d: %v, want %v (all: %v)", i, errs[i], want[i], errs)
		}
	}
	for _, id := range []string{a.ID, b.ID} {
		if got, _ := s.Get(ctx, id); got.State != bot.StateScheduled || got.Version != 2 {
			t.Fatalf("%s: %s v%d", id, got.State, got.Version)
		}
	}
}
