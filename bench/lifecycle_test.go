package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
	"github.com/redis/go-redis/v9"
)

const (
	// lifecycleConcurrency is the number of goroutines that submit and approve, the same as
	// the worker's parallelism and as the goroutines of the raw SET measurement.
	lifecycleConcurrency = bot.WorkerParallel
	lifecycleWave        = 1000 // requests open at once; then they start, then they end
	rawSETTime           = time.Second
)

// BenchmarkLifecycle runs b.N complete lifecycles — submit, approve, start (the worker
// adds the member), end (the worker removes it) — through one engine with the local
// directory and a real Redis. Time is a fake clock moved by the benchmark, so what is
// measured is work, not waiting. In the same run it measures the raw go-redis SET rate at
// the same concurrency and reports the ratio and the Redis round trips per lifecycle.
func BenchmarkLifecycle(b *testing.B) {
	for _, surfaces := range []int{0, 1} {
		b.Run(fmt.Sprintf("surfaces=%d", surfaces), func(b *testing.B) { benchLifecycle(b, surfaces) })
	}
}

func benchLifecycle(b *testing.B, surfaces int) {
	ctx := context.Background()
	rdb, rt := client(b, 2*lifecycleConcurrency)
	prefix := storetest.Prefix(b)
	b.Cleanup(func() { dropPrefix(rdb, prefix) })
	pol := benchPolicy(b, true)
	dir := local.New(pol)
	everyone := local.DerivedID("group:everyone@example.com")
	users := make([]bot.User, lifecycleWave)
	for i := range users {
		users[i] = user(i)
		dir.AddUser(users[i])
		if err := dir.Add(ctx, everyone, users[i].ID, bot.Member); err != nil {
			b.Fatal(err)
		}
	}
	clock := &fakeClock{t: time.Now()}
	cfg := bot.Config{Policy: pol, Store: store.New(rdb, store.Options{Prefix: prefix}), Directory: dir, Clock: clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	surface := &nopSurface{}
	if surfaces > 0 {
		cfg.Notifiers = []bot.Notifier{surface}
	}
	eng := bot.New(cfg)
	boss := bot.Actor{User: bot.User{ID: "boss", Email: "boss@example.com"}, Surface: "bench"}
	// Warm up: scripts loaded, connections open.
	lifecycles(b, eng, clock, users[:lifecycleConcurrency], boss)

	rt.n.Store(0)
	cpu := &cpuMeter{rdb: rdb}
	b.ResetTimer()
	cpu.start()
	start := time.Now()
	for done := 0; done < b.N; {
		n := min(lifecycleWave, b.N-done)
		lifecycles(b, eng, clock, users[:n], boss)
		done += n
	}
	elapsed := time.Since(start)
	b.StopTimer()
	self, server := cpu.stop()
	trips := rt.n.Load() - 2 // the two INFO calls of the CPU meter

	set := rawSET(b, rdb, prefix)
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "lifecycles/s")
	b.ReportMetric(set, "SET/s")
	b.ReportMetric(rate/set, "ratio")
	b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/op")
	b.ReportMetric(float64(self.Microseconds())/float64(b.N), "go-cpu-us/op")
	b.ReportMetric(float64(server.Microseconds())/float64(b.N), "redis-cpu-us/op")
	if surfaces > 0 {
		if got, want := surface.n.Load(), int64(4*(b.N+lifecycleConcurrency)); got != want {
			b.Fatalf("%d notifications, want %d (submitted, approved, activated, ended per lifecycle)", got, want)
		}
	}
}

// lifecycles runs one wave: every user submits and is approved (lifecycleConcurrency at
// a time), the worker starts every grant, the clock moves to their end, the worker
// removes every grant.
func lifecycles(b *testing.B, eng *bot.Engine, clock *fakeClock, users []bot.User, boss bot.Actor) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for g := 0; g < lifecycleConcurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(users) {
					return
				}
				r, err := eng.Submit(ctx, bot.Actor{User: users[i], Surface: "bench"}, bot.SubmitInput{Group: "bench", Duration: time.Hour})
				if err == nil {
					_, err = eng.Approve(ctx, boss, r.ID)
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	drain(b, eng)
	clock.Advance(time.Hour)
	drain(b, eng)
}

// drain runs the worker until nothing is due.
func drain(b *testing.B, eng *bot.Engine) {
	for {
		n, err := eng.RunDue(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// rawSET is the rate of plain SETs with lifecycleConcurrency goroutines on the same client.
func rawSET(b *testing.B, rdb *redis.Client, prefix string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), rawSETTime)
	defer cancel()
	var ops atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < lifecycleConcurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "{" + prefix + "}:set:" + strconv.Itoa(g)
			for ctx.Err() == nil {
				if err := rdb.Set(context.Background(), key, "0123456789abcdef", 0).Err(); err != nil {
					b.Error(err)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(ops.Load()) / time.Since(start).Seconds()
}
