package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
	"github.com/redis/go-redis/v9"
)

// needRedisServer skips a test that starts its own redis-server processes where the
// binary is absent, except under PIMBOT_TEST_REDIS=required (CI), where that is a failure.
func needRedisServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("PIMBOT_TEST_REDIS") == "required" {
			t.Fatalf("redis-server is not installed and PIMBOT_TEST_REDIS=required: %v", err)
		}
		t.Skip("redis-server is not installed (apt-get install redis-server); this test starts its own servers")
	}
	return bin
}

// freePort finds a loopback port that is free, and (for Cluster) whose bus port
// (port+10000) is free too.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		p := 20000 + rand.IntN(25000)
		a, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no free loopback port")
	return 0
}

// startRedis runs redis-server on a free loopback port with the given extra arguments
// (config file first if any) until the test ends, and waits until it answers.
func startRedis(t *testing.T, bin string, args ...string) int {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	all := append(args, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"))
	cmd := exec.Command(bin, all...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	var once sync.Once
	stop := func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	t.Cleanup(stop)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			stop()
			t.Fatalf("redis-server on %d did not answer:\n%s", port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return port
}

// startCluster starts three masters on loopback ports and joins them into a cluster with
// redis-cli --cluster create. It returns their addresses once every slot is served.
func startCluster(t *testing.T) []string {
	t.Helper()
	bin := needRedisServer(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-server is installed but redis-cli is not: %v", err)
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		p := startRedis(t, bin, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "5000")
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		for {
			info, err := c.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_slots_ok:16384") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("cluster not ready at %s: %v\n%s", a, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	return addrs
}

type clusterClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clusterClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clusterClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const clusterPolicy = `
settings: {requests_per_minute: 5, max_pending: 2}
groups:
  - name: prod-db-admins
    id: g-prod
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    reminder_before: 10m
directory:
  users:
    - {email: alice@example.com, name: Alice}
    - {email: bob@example.com, name: Bob}
`

// A real three-master Redis Cluster: the whole lifecycle (submit, approve, activation,
// reminder, expiry, audit, lists, limits, KV) runs under key prefixes whose hash slots
// live on each of the three masters, through the REDIS_URL cluster form. Every script
// keeps its keys in one slot, or Redis would answer CROSSSLOT.
func TestCluster_LifecycleOnEachMaster(t *testing.T) {
	addrs := startCluster(t)
	ctx := context.Background()
	url := "redis+cluster://" + addrs[0] + "?addr=" + addrs[1] + "&addr=" + addrs[2]
	conn, err := store.Connect(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.Kind != "cluster" {
		t.Fatalf("kind %q, want cluster", conn.Kind)
	}
	if _, ok := conn.Client.(*redis.ClusterClient); !ok {
		t.Fatalf("client %T, want *redis.ClusterClient", conn.Client)
	}
	// One prefix per master: redis-cli gives 0-5460, 5461-10922 and 10923-16383.
	prefixes := map[int]string{}
	for i := 0; len(prefixes) < 3 && i < 1000; i++ {
		p := fmt.Sprintf("c%d", i)
		slot, err := conn.Client.ClusterKeySlot(ctx, "{"+p+"}:due").Result()
		if err != nil {
			t.Fatal(err)
		}
		m := int(slot) * 3 / 16384
		if _, ok := prefixes[m]; !ok {
			prefixes[m] = p
		}
	}
	if len(prefixes) != 3 {
		t.Fatalf("prefixes per master: %v", prefixes)
	}
	for m := 0; m < 3; m++ {
		t.Run(fmt.Sprintf("master%d_prefix_%s", m, prefixes[m]), func(t *testing.T) {
			runClusterLifecycle(t, conn.Client, prefixes[m])
		})
	}
}

func runClusterLifecycle(t *testing.T, rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	pol, err := policyfile.Parse("cluster.yaml", []byte(clusterPolicy))
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(rdb, store.Options{Prefix: prefix})
	dir := local.New(pol)
	clock := &clusterClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	eng := bot.New(bot.Config{Policy: pol, Store: s, Directory: dir, Clock: clock})
	alice, _ := dir.ResolveUser(ctx, "alice")
	bob, _ := dir.ResolveUser(ctx, "bob")
	drain := func() {
		for i := 0; i < 10; i++ {
			n, err := eng.RunDue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
	}
	r, err := eng.Submit(ctx, bot.Actor{User: alice, Surface: "test"}, bot.SubmitInput{Group: "prod-db-admins", Reason: "cluster", Duration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var dup *bot.DuplicateError
	if _, err := eng.Submit(ctx, bot.Actor{User: alice, Surface: "test"}, bot.SubmitInput{Group: "prod-db-admins", Reason: "again"}); !errors.As(err, &dup) || dup.ExistingID != r.ID {
		t.Fatalf("second open request: %v", err)
	}
	if _, err := eng.Approve(ctx, bot.Actor{User: bob, Surface: "test"}, r.ID); err != nil {
		t.Fatal(err)
	}
	drain()
	if got, _ := s.Get(ctx, r.ID); got.State != bot.StateActive {
		t.Fatalf("state %s after approval", got.State)
	}
	if next, err := s.NextDue(ctx); err != nil || next.IsZero() {
		t.Fatalf("next due: %v %v", next, err)
	}
	clock.Advance(50 * time.Minute)
	drain() // the reminder
	clock.Advance(10 * time.Minute)
	drain() // the end
	got, err := s.Get(ctx, r.ID)
	if err != nil || got.State != bot.StateEnded {
		t.Fatalf("state %v %v after the end", got, err)
	}
	ops := dir.Ops()
	if len(ops) != 2 || ops[0].Op != "add" || ops[1].Op != "remove" || !ops[0].Changed || !ops[1].Changed {
		t.Fatalf("directory ops %+v", ops)
	}
	list, err := s.ListByUser(ctx, alice.ID, 10)
	if err != nil || len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("list %v %v", list, err)
	}
	audit, err := s.AuditSince(ctx, time.Time{}, 0)
	if err != nil || len(audit) != 5 {
		t.Fatalf("audit %d records (%v), want submitted, approved, activated, reminder, ended", len(audit), err)
	}
	if open, err := s.OpenRequests(ctx); err != nil || len(open) != 0 {
		t.Fatalf("open %v %v", open, err)
	}
	// Retry and Release on a leased job.
	if err := s.Commit(ctx, &bot.Tx{Schedule: []bot.Job{{ID: "remind:" + r.ID, Kind: bot.JobRemind, RequestID: r.ID, Due: clock.Now()}}}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx, clock.Now(), 10, time.Minute)
	if err != nil || len(c) != 1 {
		t.Fatalf("claim %v %v", c, err)
	}
	if err := s.Release(ctx, []bot.Lease{c[0].Lease()}); err != nil {
		t.Fatal(err)
	}
	if c, err = s.Claim(ctx, time.Now(), 10, time.Minute); err != nil || len(c) != 1 {
		t.Fatalf("claim after release %v %v", c, err)
	}
	if err := s.Retry(ctx, c[0].Lease(), c[0].Job, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, &bot.Tx{Unschedule: []string{c[0].Job.ID}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.PutIfAbsent(ctx, "k", "v", time.Minute); err != nil || !ok {
		t.Fatalf("kv: %v %v", ok, err)
	}
	if v, ok, err := s.GetValue(ctx, "k"); err != nil || !ok || v != "v" {
		t.Fatalf("kv get: %q %v %v", v, ok, err)
	}
}
