package graphclient_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/graphfake"
	"github.com/pimbot/pimbot/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// An expiry wave meets a Graph outage (503): every removal is retried, all land once Graph
// is back, and none is applied twice.
func TestExpiryWaveThrough503Window(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	const n = 40
	var members []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("33333333-0000-4000-8000-%012d", i)
		f.AddUser(graphfake.User{ID: id, Mail: fmt.Sprintf("w%d@example.com", i), UPN: fmt.Sprintf("w%d@example.com", i)})
		members = append(members, fmt.Sprintf("w%d@example.com", i))
	}
	pol, err := policyfile.Parse("wave.yaml", []byte(`
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - {name: prod, id: `+gProd+`, eligible: [group:engineering@example.com, `+strings.Join(members, ", ")+`], require_approval: false, require_justification: false, reminder_before: 0s}
`))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: d, Clock: clk, Logger: quiet})
	for _, m := range members {
		u, err := d.ResolveUser(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Submit(ctx, bot.Actor{User: u}, bot.SubmitInput{Group: "prod", Duration: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	drain := func() {
		for i := 0; i < 10; i++ {
			if k, _ := eng.RunDue(ctx); k == 0 {
				return
			}
		}
	}
	drain()
	var down atomic.Bool
	down.Store(true)
	f.Fault(func(r *http.Request) (int, string) {
		if down.Load() {
			return 503, "0"
		}
		return 0, ""
	})
	clk.Advance(time.Hour)
	for i := 0; i < 4; i++ { // the outage lasts through several retries
		drain()
		clk.Advance(bot.Backoff(i + 1))
	}
	held := 0
	for i := 0; i < n; i++ {
		if f.Holds(gProd, fmt.Sprintf("33333333-0000-4000-8000-%012d", i), false) {
			held++
		}
	}
	if held != n {
		t.Fatalf("%d of %d still held during the outage (the fake answered 503 to every call)", held, n)
	}
	down.Store(false)
	clk.Advance(bot.Backoff(5))
	drain()
	deletes := map[string]int{}
	for _, c := range f.Calls() {
		if c.Method == "DELETE" && c.Status == 204 {
			deletes[c.Path]++
		}
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("33333333-0000-4000-8000-%012d", i)
		if f.Holds(gProd, id, false) {
			t.Fatalf("%s still a member after Graph came back", id)
		}
		if k := deletes["/v1.0/groups/"+gProd+"/members/"+id+"/$ref"]; k != 1 {
			t.Fatalf("%s removed %d times", id, k)
		}
	}
}
