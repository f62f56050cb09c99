package graphclient_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient"
	"github.com/pimbot/pimbot/graphclient/graphfake"
	"github.com/pimbot/pimbot/store/storetest"
)

// BenchmarkExpiryWave: 1,000 grants due in the same second, removed through the real Graph
// client against the fake, with and without 20% of calls answered 429 (Retry-After: 1).
// Reports the lag from due time to the DELETE answered (p50, p99), the Graph calls of the
// removals per grant (throttled attempts included), and the Graph calls of a whole grant:
// eligibility (checkMemberGroups), add, remove.
func BenchmarkExpiryWave(b *testing.B) {
	for _, throttled := range []float64{0, 0.2} {
		b.Run(fmt.Sprintf("429=%.0f%%", throttled*100), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p50, p99, removal, total := expiryWave(b, 1000, throttled)
				b.ReportMetric(float64(p50.Milliseconds()), "p50-lag-ms")
				b.ReportMetric(float64(p99.Milliseconds()), "p99-lag-ms")
				b.ReportMetric(removal, "removal-calls/grant")
				b.ReportMetric(total, "graph-calls/grant")
			}
		})
	}
}

func expiryWave(b *testing.B, n int, throttled float64) (p50, p99 time.Duration, removalCalls, totalCalls float64) {
	b.Helper()
	b.StopTimer()
	ctx := context.Background()
	f := graphfake.New()
	defer f.Close()
	f.AddGroup(gProd, "prod@example.com")
	var ids []string
	d, err := graphclient.New(graphclient.Config{BaseURL: f.BaseURL(), AccessToken: "t"})
	if err != nil {
		b.Fatal(err)
	}
	var eligible []string
	for i := 0; i < n; i++ {
		eligible = append(eligible, fmt.Sprintf("x%d@example.com", i))
		ids = append(ids, fmt.Sprintf("44444444-0000-4000-8000-%012d", i))
		f.AddUser(graphfake.User{ID: ids[i], Mail: eligible[i], UPN: eligible[i]})
	}
	f.AddGroup("7c1e0f8a-0000-4000-8000-0000000000b1", "shift@example.com", ids...) // eligibility through a group
	pol, err := policyfile.Parse("wave.yaml", []byte(`
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - {name: prod, id: `+gProd+`, eligible: [group:shift@example.com], require_approval: false, require_justification: false, min_duration: 1s, reminder_before: 0s}
`))
	if err != nil {
		b.Fatal(err)
	}
	st := storetest.New(b)
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: d, Poll: 20 * time.Millisecond, Logger: quiet})
	// Activate everyone now for a few seconds, so all removals fall due within the same second.
	due := time.Now().Add(4 * time.Second)
	for i := 0; i < n; i++ {
		u := bot.User{ID: fmt.Sprintf("44444444-0000-4000-8000-%012d", i), Email: eligible[i]}
		if _, err := eng.Submit(ctx, bot.Actor{User: u}, bot.SubmitInput{Group: "prod", Duration: time.Until(due).Round(time.Second)}); err != nil {
			b.Fatal(err)
		}
	}
	for {
		if k, err := eng.RunDue(ctx); err != nil || k == 0 {
			break
		}
	}
	if throttled > 0 {
		f.Fault(func(r *http.Request) (int, string) {
			if r.Method == "DELETE" && rand.Float64() < throttled {
				return 429, "1"
			}
			return 0, ""
		})
	}
	before := len(f.Calls())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	b.StartTimer()
	go func() { eng.Run(runCtx); close(done) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		held := 0
		for i := 0; i < n; i++ {
			if f.Holds(gProd, fmt.Sprintf("44444444-0000-4000-8000-%012d", i), false) {
				held++
			}
		}
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d grants still held two minutes after their end", held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()
	stop()
	<-done
	var lags []time.Duration
	calls := f.Calls()[before:]
	for _, c := range calls {
		if c.Method == "DELETE" && c.Status == 204 {
			uid := strings.TrimSuffix(c.Path[strings.LastIndex(strings.TrimSuffix(c.Path, "/$ref"), "/")+1:], "/$ref")
			rs, err := st.ListByUser(ctx, uid, 1)
			if err != nil || len(rs) != 1 {
				b.Fatalf("request of %s: %v", uid, err)
			}
			lags = append(lags, c.At.Sub(rs[0].EndsAt))
		}
	}
	if len(lags) != n {
		b.Fatalf("%d removals answered, want %d", len(lags), n)
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	return lags[n/2], lags[n*99/100], float64(len(calls)) / float64(n), float64(len(f.Calls())) / float64(n)
}
