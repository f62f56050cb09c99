package bench

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
	"github.com/redis/go-redis/v9"
)

const (
	scaleActive   = 100_000
	scaleDue      = 10_000
	scaleReplicas = 3
	// scaleLead is how long after seeding the first removal falls due, so that the
	// replicas are idle and waiting when it does.
	scaleLead = 2 * time.Second
)

// tapDir is the local directory with a tap on removals: when each user's grant was
// removed (the first time), and how often a removal was repeated.
type tapDir struct {
	*local.Directory
	mu      sync.Mutex
	removed map[string]time.Time
	repeats int
	done    chan struct{} // closed when want removals have been seen
	want    int
}

func (d *tapDir) Remove(ctx context.Context, g, u string, a bot.Access) error {
	if err := d.Directory.Remove(ctx, g, u, a); err != nil {
		return err
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.removed[u]; ok {
		d.repeats++
		return nil
	}
	d.removed[u] = now
	if len(d.removed) == d.want {
		close(d.done)
	}
	return nil
}

// BenchmarkExpiryAtScale: 100,000 active grants in Redis, 10,000 of them due in the same
// minute, three replicas (engines with their own Redis clients and the default lease and
// poll interval) sharing the work. It reports the lag from each grant's due time to its
// removal from the directory (p50, p99, max) and the number of removals, which must be
// exactly 10,000: none of the 90,000 others, none twice.
//
// due=same-second puts all 10,000 at one instant (grants that all end at 10:00:00);
// due=spread-minute spreads them evenly over 60 s.
func BenchmarkExpiryAtScale(b *testing.B) {
	for _, tc := range []struct {
		name   string
		window time.Duration
	}{{"due=same-second", 0}, {"due=spread-minute", time.Minute}} {
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				expiryAtScale(b, tc.window)
			}
		})
	}
}

func expiryAtScale(b *testing.B, window time.Duration) {
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb, _ := client(b, 0)
	prefix := storetest.Prefix(b)
	defer dropPrefix(rdb, prefix)
	pol := benchPolicy(b, false)
	dir := &tapDir{Directory: local.New(pol), removed: map[string]time.Time{}, done: make(chan struct{}), want: scaleDue}
	for i := 0; i < scaleActive; i++ {
		if err := dir.Directory.Add(ctx, benchGroupID, user(i).ID, bot.Member); err != nil {
			b.Fatal(err)
		}
	}
	s := store.New(rdb, store.Options{Prefix: prefix})
	// 90,000 grants that end later today, then the replicas, then 10,000 that end now.
	far := time.Now().Add(2 * time.Hour)
	seedActive(b, s, scaleDue, scaleActive, func(i int) time.Time { return far.Add(time.Duration(i) * 500 * time.Millisecond) })
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for r := 0; r < scaleReplicas; r++ {
		opts, _ := redis.ParseURL(redisURL())
		rc := redis.NewClient(opts)
		defer rc.Close()
		eng := bot.New(bot.Config{Policy: pol, Store: store.New(rc, store.Options{Prefix: prefix}), Directory: dir,
			Notifiers: []bot.Notifier{&nopSurface{}}, Logger: quiet})
		wg.Add(1)
		go func() { defer wg.Done(); eng.Run(ctx) }()
	}
	t0 := time.Now().Add(scaleLead)
	step := window / scaleDue
	ids, dues := seedActive(b, s, 0, scaleDue, func(i int) time.Time { return t0.Add(time.Duration(i) * step) })
	if late := time.Since(t0); late > 0 {
		b.Fatalf("seeding the due grants ended %s after the first was due; raise scaleLead", late)
	}
	time.Sleep(time.Until(t0)) // the replicas are idle until the first grant is due
	cpu := &cpuMeter{rdb: rdb}
	cpu.start()
	b.StartTimer()
	select {
	case <-dir.done:
	case <-time.After(window + scaleLead + 2*bot.JobLease):
		dir.mu.Lock()
		n := len(dir.removed)
		dir.mu.Unlock()
		b.Fatalf("only %d of %d grants removed", n, scaleDue)
	}
	b.StopTimer()
	self, server := cpu.stop()
	// Let stragglers (a repeated removal, a removal of a grant not due) show up.
	time.Sleep(200 * time.Millisecond)
	cancel()
	wg.Wait()

	dir.mu.Lock()
	defer dir.mu.Unlock()
	due := map[string]time.Time{}
	for i := range ids {
		due[user(i).ID] = dues[i]
	}
	lags := make([]time.Duration, 0, scaleDue)
	var last time.Time
	for u, at := range dir.removed {
		d, ok := due[u]
		if !ok {
			b.Fatalf("user %s removed, but their grant is not due", u)
		}
		lags = append(lags, at.Sub(d))
		if at.After(last) {
			last = at
		}
	}
	if len(dir.removed) != scaleDue || dir.repeats != 0 {
		b.Fatalf("%d removals and %d repeats, want exactly %d and 0", len(dir.removed), dir.repeats, scaleDue)
	}
	sortDurations(lags)
	b.ReportMetric(ms(percentile(lags, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lags, 99)), "p99-ms")
	b.ReportMetric(ms(lags[len(lags)-1]), "max-ms")
	b.ReportMetric(float64(len(dir.removed)), "removals")
	b.ReportMetric(last.Sub(t0).Seconds(), "last-removal-s")
	// CPU used from the first due time to the last removal, in cores (the machine has 2).
	b.ReportMetric(self.Seconds()/max(last.Sub(t0), time.Millisecond).Seconds(), "go-cores")
	b.ReportMetric(server.Seconds()/max(last.Sub(t0), time.Millisecond).Seconds(), "redis-cores")
	b.ReportMetric(float64(server.Microseconds())/scaleDue, "redis-cpu-us/removal")
	// Nothing else changed: the 90,000 others are still active and scheduled.
	if n, err := rdb.ZCard(context.Background(), "{"+prefix+"}:due").Result(); err != nil || n < scaleActive-scaleDue {
		b.Fatalf("%d jobs left in the due set (%v), want at least %d", n, err, scaleActive-scaleDue)
	}
}
