package slack

import (
	"context"
	"math"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// reportPercentiles reports the median and the 99th percentile of per-operation timings.
func reportPercentiles(b *testing.B, ds []time.Duration) {
	b.Helper()
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) time.Duration { return ds[max(0, int(math.Ceil(q*float64(len(ds))))-1)] }
	b.ReportMetric(float64(at(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(at(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkActivateToViewsOpen: from sending a signed /activate to the views.open call
// arriving at the fake Slack. Run with -benchtime=1000x for 1,000 requests.
func BenchmarkActivateToViewsOpen(b *testing.B) {
	for _, mode := range []string{"warm-cache", "cold-cache"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b)
			opened := make(chan slackfake.Call, 16)
			e.fake.OnCall(func(c slackfake.Call) {
				if c.Method == "views.open" {
					opened <- c
				}
			})
			warm := func() { // one request to fill the caches
				body, _ := e.commandBody("UALICE", "")
				e.post("/slack/commands", form, body)
				<-opened
			}
			warm()
			ds := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if mode == "cold-cache" {
					_ = e.store.DeleteValue(e.ctx, keyUser("UALICE"))
				}
				body, _ := e.commandBody("UALICE", "")
				b.StartTimer()
				start := time.Now()
				a := e.post("/slack/commands", form, body)
				c := <-opened
				b.StopTimer()
				if a.Status != http.StatusOK || c.Error != "" {
					b.Fatalf("HTTP %d, views.open %q", a.Status, c.Error)
				}
				ds = append(ds, c.At.Sub(start))
				b.StartTimer()
			}
			b.StopTimer()
			reportPercentiles(b, ds)
		})
	}
}

// BenchmarkApproveToDirectoryAdd: from sending a signed Approve click to the directory
// add of the grant, with the engine's worker running as in production. Run with
// -benchtime=1000x for 1,000 approvals.
func BenchmarkApproveToDirectoryAdd(b *testing.B) {
	e := newEnv(b)
	type op struct {
		kind string
		at   time.Time
	}
	ops := make(chan op, 16)
	e.dir.SetFault(func(kind, groupID, userID string) error {
		select {
		case ops <- op{kind, time.Now()}:
		default:
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.eng.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	alice := bot.Actor{User: e.user("alice@example.com"), Surface: Name}
	waitOp := func(kind string) time.Time {
		for {
			select {
			case o := <-ops:
				if o.kind == kind {
					return o.at
				}
			case <-time.After(10 * time.Second):
				b.Fatalf("no directory %s", kind)
			}
		}
	}
	waitState := func(id string, want bot.State) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if got, err := e.store.Get(e.ctx, id); err == nil && got.State == want {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("request %s never became %s", id, want)
			}
			time.Sleep(time.Millisecond) // polling; the deadline bounds it
		}
	}
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r, err := e.eng.Submit(e.ctx, alice, bot.SubmitInput{Group: "prod-db-admins", Reason: "bench", Duration: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		p, _ := e.clickPayload("UBOB", actApprove, r.ID, approvals, "1.000001")
		b.StartTimer()
		start := time.Now()
		a := e.interact(p)
		added := waitOp("add")
		b.StopTimer()
		if a.Status != http.StatusOK {
			b.Fatalf("HTTP %d", a.Status)
		}
		ds = append(ds, added.Sub(start))
		// Give the grant back so that the next request is not a duplicate.
		waitState(r.ID, bot.StateActive)
		if _, err := e.eng.Deactivate(e.ctx, alice, r.ID); err != nil {
			b.Fatal(err)
		}
		waitOp("remove")
		waitState(r.ID, bot.StateEnded)
		b.StartTimer()
	}
	b.StopTimer()
	reportPercentiles(b, ds)
}
