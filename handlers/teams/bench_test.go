package teams_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// BenchmarkActivityToReply: from POSTing a valid activity to the bot until the fake connector
// has the bot's reply (token check, Redis, engine, card rendering, connector call), with a
// warm key and token cache. Reports p50/p99 per activity.
func BenchmarkActivityToReply(b *testing.B) {
	for _, text := range []string{"help", "status"} {
		b.Run(text, func(b *testing.B) {
			e := newEnv(b)
			chat := e.fake.Personal(alice)
			token := "Bearer " + e.fake.Token(e.fake.Claims(e.fake.ServiceURL()))
			act := e.fake.Message(alice, chat, text)
			client := &http.Client{Timeout: 10 * time.Second}
			n := 0
			post := func() time.Duration {
				n++
				act["id"] = fmt.Sprintf("bench-%d", n) // a new activity each time (redeliveries are dropped)
				body, _ := json.Marshal(act)
				from := len(e.fake.Sent())
				req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(body))
				req.Header.Set("Authorization", token)
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if _, _, ok := e.fake.Wait(from, 5*time.Second, func(a teamsfake.Activity) bool { return a.ConversationID == chat.ID }); !ok || resp.StatusCode != 200 {
					b.Fatalf("no reply (status %d)", resp.StatusCode)
				}
				return time.Since(start)
			}
			post() // warm the key and token caches
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				lat = append(lat, post())
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// BenchmarkValidatorWarm: the token check alone with a warm key cache, to compare with the
// whole path above.
func BenchmarkValidatorWarm(b *testing.B) {
	f := teamsfake.New(b, appID, appSecret, tenantID)
	v, err := teams.NewValidator(teams.ValidatorConfig{AppID: appID, MetadataURL: f.MetadataURL()})
	if err != nil {
		b.Fatal(err)
	}
	token := "Bearer " + f.Token(f.Claims(f.ServiceURL()))
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}
