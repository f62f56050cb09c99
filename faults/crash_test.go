package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
	"github.com/redis/go-redis/v9"
)

const (
	crashUsers = 60
	crashLease = time.Second
	crashKills = 40 // trials: kill -9 of the worker at random moments
	// crashLagBound is far above the expected lag (one lease plus a restart), so that a
	// busy machine cannot fail the test, yet a grant left without its end job does.
	crashLagBound = 30 * time.Second
)

func crashPolicy() string {
	var users, members []string
	for i := 0; i < crashUsers; i++ {
		users = append(users, fmt.Sprintf("    - {email: u%d@example.com}", i))
		members = append(members, fmt.Sprintf("u%d@example.com", i))
	}
	return `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - name: crash
    id: g-crash
    eligible: [group:everyone@example.com]
    approvers: [boss@example.com]
    require_justification: false
    min_duration: 1s
    reminder_before: 0s
directory:
  users:
    - {email: boss@example.com}
` + strings.Join(users, "\n") + `
  groups:
    - {mail: everyone@example.com, members: [` + strings.Join(members, ", ") + `]}
`
}

// TestMain doubles as the worker process of the crash test: with PIMBOT_CRASH_WORKER set it
// runs the job worker until it is killed.
func TestMain(m *testing.M) {
	if os.Getenv("PIMBOT_CRASH_WORKER") != "" {
		runWorker()
		return
	}
	os.Exit(m.Run())
}

func runWorker() {
	pol, err := policyfile.Parse("crash.yaml", []byte(crashPolicy()))
	if err != nil {
		panic(err)
	}
	opts, err := redis.ParseURL(os.Getenv("PIMBOT_CRASH_REDIS"))
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(opts)
	prefix := os.Getenv("PIMBOT_CRASH_PREFIX")
	dir := &redisDir{rdb: rdb, prefix: prefix, seed: local.New(pol), before: 20 * time.Millisecond, after: 60 * time.Millisecond}
	eng := bot.New(bot.Config{Policy: pol, Store: store.New(rdb, store.Options{Prefix: prefix}), Directory: dir,
		Lease: crashLease, Poll: 20 * time.Millisecond})
	eng.Run(context.Background())
}

// Kill -9 the worker 40 times at random moments while 60 grants go through submit → approve
// → active → end, restart it each time, and check that nothing is lost, every grant is
// added once and removed once after its end, and no transition is applied twice.
func TestCrash_KillNineAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes for about 20 s; run without -short")
	}
	ctx := context.Background()
	rdb := storetest.Client(t)
	if storetest.Embedded() {
		t.Skip("the worker process needs a real Redis (an embedded one lives in this process only)")
	}
	prefix := storetest.Prefix(t)
	pol, err := policyfile.Parse("crash.yaml", []byte(crashPolicy()))
	if err != nil {
		t.Fatal(err)
	}
	seed := local.New(pol)
	dir := &redisDir{rdb: rdb, prefix: prefix, seed: seed}
	st := store.New(rdb, store.Options{Prefix: prefix})
	front := bot.New(bot.Config{Policy: pol, Store: st, Directory: dir}) // takes requests; runs no jobs
	boss, _ := seed.ResolveUser(ctx, "boss@example.com")

	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "PIMBOT_CRASH_WORKER=1", "PIMBOT_CRASH_REDIS="+url, "PIMBOT_CRASH_PREFIX="+prefix)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	worker := start()
	defer func() { worker.Process.Kill(); worker.Wait() }()

	// Submit and approve 60 requests with staggered starts and 1–3 s windows over ~12 s.
	ids := map[string]string{} // request id -> user id
	t0 := time.Now()
	for i := 0; i < crashUsers; i++ {
		u, _ := seed.ResolveUser(ctx, fmt.Sprintf("u%d@example.com", i))
		r, err := front.Submit(ctx, bot.Actor{User: u, Surface: "test"}, bot.SubmitInput{Group: "crash",
			Start: t0.Add(time.Duration(i) * 150 * time.Millisecond), Duration: time.Duration(1000+rand.IntN(2000)) * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := front.Approve(ctx, bot.Actor{User: boss, Surface: "test"}, r.ID); err != nil {
			t.Fatal(err)
		}
		ids[r.ID] = u.ID
	}

	// Kill and restart the worker a fixed number of times, at random moments, then let the
	// last one finish. What is asserted does not depend on how fast the machine is: only the
	// outcome (and a generous bound on the removal lag, to catch a grant left for good).
	allEnded := func() (int, bool) {
		ended := 0
		for id := range ids {
			r, err := st.Get(ctx, id)
			if err != nil {
				t.Fatalf("acknowledged request %s lost: %v", id, err)
			}
			if r.State == bot.StateEnded {
				ended++
			}
		}
		return ended, ended == len(ids)
	}
	kills, duringWork := 0, 0
	for kills < crashKills {
		time.Sleep(time.Duration(60+rand.IntN(300)) * time.Millisecond)
		if _, done := allEnded(); !done {
			duringWork++
		}
		worker.Process.Signal(syscall.SIGKILL)
		worker.Wait()
		kills++
		worker = start()
	}
	for wait := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		ended, done := allEnded()
		if done {
			break
		}
		if time.Since(wait) > 5*time.Minute {
			t.Fatalf("only %d of %d requests ended five minutes after the last kill", ended, len(ids))
		}
	}

	// Every grant added once and removed once, in that order, and on time.
	ops, err := dir.ops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adds, removes := map[string]int{}, map[string]time.Time{}
	for _, o := range ops {
		if !o.changed {
			continue // an idempotent repeat after a crash: no effect
		}
		switch o.op {
		case "add":
			adds[o.user]++
		case "remove":
			if _, twice := removes[o.user]; twice {
				t.Errorf("%s removed twice", o.user)
			}
			removes[o.user] = o.at
		}
	}
	var worst time.Duration
	for id, user := range ids {
		r, _ := st.Get(ctx, id)
		if adds[user] != 1 {
			t.Errorf("request %s: added %d times", id, adds[user])
		}
		at, ok := removes[user]
		if !ok {
			t.Errorf("request %s: never removed", id)
			continue
		}
		lag := at.Sub(r.EndsAt)
		worst = max(worst, lag)
		// A job runs up to a second early (the worker's poll tolerance); a removal later
		// than crashLagBound means a grant was left without its end job.
		if lag < -time.Second || lag > crashLagBound {
			t.Errorf("request %s removed %s after its end (allowed: -1s to %s)", id, lag, crashLagBound)
		}
	}
	// No transition applied twice: one activation and one end in the audit trail per request.
	recs, err := st.AuditSince(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, a := range recs {
		count[a.RequestID+"/"+a.Type]++
	}
	for id := range ids {
		for _, typ := range []string{bot.EvSubmitted, bot.EvApproved, bot.EvActivated, bot.EvEnded} {
			if count[id+"/"+typ] != 1 {
				t.Errorf("request %s: %d %q records, want 1", id, count[id+"/"+typ], typ)
			}
		}
	}
	t.Logf("crash test: %d lifecycles, %d kill -9 of the worker (%d while work was in flight), worst removal lag %s (lease %s), %d idempotent repeats after crashes",
		len(ids), kills, duringWork, worst.Round(time.Millisecond), crashLease, repeats(ops))
}

func repeats(ops []dirOp) int {
	n := 0
	for _, o := range ops {
		if !o.changed {
			n++
		}
	}
	return n
}
