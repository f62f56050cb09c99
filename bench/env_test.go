package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/store/storetest"
	"github.com/redis/go-redis/v9"
)

// redisURL is the Redis the benchmarks measure against.
func redisURL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// client opens a new client to the benchmark Redis with a pool of the given size and a
// round-trip counter (a pipeline counts as one).
func client(b *testing.B, pool int) (*redis.Client, *counter) {
	b.Helper()
	storetest.Client(b)
	if storetest.Embedded() {
		b.Skip("benchmarks need a real Redis (REDIS_URL or 127.0.0.1:6379); the embedded one would measure nothing useful")
	}
	opts, err := redis.ParseURL(redisURL())
	if err != nil {
		b.Fatal(err)
	}
	if pool > 0 {
		opts.PoolSize = pool
	}
	c := redis.NewClient(opts)
	b.Cleanup(func() { c.Close() })
	n := &counter{}
	c.AddHook(n)
	return c, n
}

// dropPrefix deletes every key under a store prefix (SCAN + UNLINK, in batches).
func dropPrefix(rdb redis.UniversalClient, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, "{"+prefix+"}:*", 5000).Iterator()
	var keys []string
	flush := func() {
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			flush()
		}
	}
	flush()
}

// counter counts Redis round trips.
type counter struct{ n atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(1); return next(ctx, cmds) }
}

// fakeClock is moved by the benchmark, so that start and end times come without waiting.
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

// nopSurface is a surface whose platform answers at once: it makes the engine schedule,
// claim and acknowledge one notification per event, as a deployment with one chat has.
type nopSurface struct{ n atomic.Int64 }

func (s *nopSurface) Name() string                            { return "bench" }
func (s *nopSurface) Notify(context.Context, bot.Event) error { s.n.Add(1); return nil }

const benchGroupID = "g-bench"

// benchPolicy: one group that everyone in everyone@example.com may activate, approved by
// boss@example.com (or without approval), no reminders, no per-user limits.
func benchPolicy(b *testing.B, approval bool) *bot.Policy {
	b.Helper()
	pol, err := policyfile.Parse("bench.yaml", []byte(benchPolicyYAML(approval)))
	if err != nil {
		b.Fatal(err)
	}
	return pol
}

func benchPolicyYAML(approval bool) string {
	return fmt.Sprintf(`
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - name: bench
    id: %s
    eligible: [group:everyone@example.com]
    approvers: [boss@example.com]
    require_approval: %v
    require_justification: false
    min_duration: 1s
    max_duration: 48h
    default_duration: 1h
    reminder_before: 0s
directory:
  users:
    - {email: boss@example.com, name: Boss}
  groups:
    - {mail: everyone@example.com}
`, benchGroupID, approval)
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func sortDurations(xs []time.Duration) {
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// user makes the bench user number i (not in the policy: it is added to everyone@ by id).
func user(i int) bot.User {
	return bot.User{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Email: fmt.Sprintf("u%d@example.com", i)}
}

// cpuMeter measures the CPU time spent by this process and by the Redis server between
// start and stop: on a shared 2-core machine it tells which of them a goal ran out of.
type cpuMeter struct {
	rdb          redis.UniversalClient
	self, server time.Duration
}

func (m *cpuMeter) start() { m.self, m.server = processCPU(), redisCPU(m.rdb) }

// stop returns the CPU time of this process and of Redis since start.
func (m *cpuMeter) stop() (self, server time.Duration) {
	return processCPU() - m.self, redisCPU(m.rdb) - m.server
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the server's used_cpu_user + used_cpu_sys (INFO cpu).
func redisCPU(rdb redis.UniversalClient) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
