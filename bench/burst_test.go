package bench

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient/local"
	slacksurface "github.com/pimbot/pimbot/handlers/slack"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

const (
	burstPeople = 2000                   // people, one quick-form /activate each
	burstSpread = 500 * time.Millisecond // all of them sent within this
)

// BenchmarkSlackBurst sends 2,000 quick-form "/activate bench for 1h …" from 2,000
// people within half a second, signed, over HTTP, through the real handler, with the
// engine's worker running as in production (a real clock, a real Redis, the local
// directory, a fake Slack Web API on loopback). The group needs no approval, so each
// command ends in a directory add. It reports the commands refused (answered "busy", or
// not HTTP 200), grants added per second from the first command to the last add, the raw
// go-redis SET rate measured in the same run and the ratio of the two, and the latency
// from each command to its add (p50, p99). One burst per b.N; run with -benchtime=1x.
func BenchmarkSlackBurst(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchSlackBurst(b)
	}
}

func benchSlackBurst(b *testing.B) {
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb, _ := client(b, 0)
	prefix := storetest.Prefix(b)
	defer dropPrefix(rdb, prefix)
	pol := benchPolicy(b, false)
	dir := local.New(pol)
	everyone := local.DerivedID("group:everyone@example.com")
	fake := slackfake.New(b, ackToken)
	fake.AddChannel(ackChannel)
	for i := 0; i < burstPeople; i++ {
		u := user(i)
		dir.AddUser(u)
		if err := dir.Add(ctx, everyone, u.ID, bot.Member); err != nil {
			b.Fatal(err)
		}
		fake.AddUser(slackfake.User{ID: fmt.Sprintf("U%05d", i), Email: u.Email, Name: fmt.Sprintf("u%d", i)})
	}
	// The time of each person's add, by directory id; the adds of setting up are done.
	var addMu sync.Mutex
	added := make(map[string]time.Time, burstPeople)
	var adds atomic.Int64
	dir.SetFault(func(op, groupID, userID string) error {
		if op == "add" && groupID == benchGroupID {
			addMu.Lock()
			if _, seen := added[userID]; !seen {
				added[userID] = time.Now()
				adds.Add(1)
			}
			addMu.Unlock()
		}
		return nil
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.New(rdb, store.Options{Prefix: prefix})
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: dir, Logger: quiet})
	s, err := slacksurface.New(slacksurface.Options{Client: slacksurface.NewClient(ackToken, fake.URL()), Engine: eng, KV: st,
		SigningSecret: ackSecret, Logger: quiet, ResponseURLPrefixes: []string{fake.ResponseURLPrefix()}})
	if err != nil {
		b.Fatal(err)
	}
	eng.AddNotifier(s)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(2)
	go func() { defer wg.Done(); _ = s.Run(ctx) }()
	go func() { defer wg.Done(); eng.Run(ctx) }()
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: burstPeople}}

	bodies := make([]string, burstPeople)
	for i := range bodies {
		bodies[i] = commandBody(fake, fmt.Sprintf("U%05d", i), i)
	}
	// Warm up: a help command (answered at once, no work queued) opens connections.
	warm := strings.Replace(commandBody(fake, "U00000", -1), "text=bench+for+1h+load+test+-1", "text=help", 1)
	if _, err := post(hc, srv.URL+"/slack/commands", warm); err != nil {
		b.Fatal(err)
	}

	sent := make([]time.Time, burstPeople)
	var refused atomic.Int64
	errs := make(chan error, burstPeople)
	var sending sync.WaitGroup
	b.StartTimer()
	start := time.Now()
	for i := 0; i < burstPeople; i++ {
		if d := time.Until(start.Add(burstSpread * time.Duration(i) / burstPeople)); d > 0 {
			time.Sleep(d) // open loop: the sender keeps its schedule whatever the answers
		}
		sending.Add(1)
		go func() {
			defer sending.Done()
			sent[i] = time.Now()
			status, body, err := postAnswer(hc, srv.URL+"/slack/commands", bodies[i])
			switch {
			case err != nil:
				errs <- err
			case status != http.StatusOK || strings.Contains(body, "busy") || strings.Contains(body, "warning"):
				refused.Add(1)
			}
		}()
	}
	sending.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for adds.Load() < int64(burstPeople-refused.Load()) {
		if time.Now().After(deadline) {
			seen := map[string]int{}
			for _, c := range fake.Calls("response") {
				text, _ := c.JSON["text"].(string)
				if !strings.Contains(text, "submitted") {
					seen[text]++
				}
			}
			states := map[string]int{}
			for i := 0; i < burstPeople; i++ {
				rs, _ := st.ListByUser(ctx, user(i).ID, 5)
				if len(rs) == 0 {
					states["none"]++
				}
				for _, r := range rs {
					states[string(r.State)+"/"+string(r.Grant)]++
				}
			}
			b.Fatalf("%d of %d grants added after 2 minutes (%d refused); other answers: %v; requests: %v", adds.Load(), burstPeople, refused.Load(), seen, states)
		}
		time.Sleep(10 * time.Millisecond) // polling; the deadline bounds it
	}
	b.StopTimer()
	addMu.Lock()
	var last time.Time
	lat := make([]time.Duration, 0, len(added))
	for i := 0; i < burstPeople; i++ {
		at, ok := added[user(i).ID]
		if !ok {
			continue
		}
		lat = append(lat, at.Sub(sent[i]))
		if at.After(last) {
			last = at
		}
	}
	addMu.Unlock()
	cancel()
	wg.Wait() // the surface and the engine stopped: the SET rate is Redis's alone
	set := rawSET(b, rdb, prefix)
	rate := float64(len(lat)) / last.Sub(start).Seconds()
	sortDurations(lat)
	b.ReportMetric(float64(refused.Load()), "refused")
	b.ReportMetric(rate, "grants/s")
	b.ReportMetric(set, "SET/s")
	b.ReportMetric(rate/set, "ratio")
	b.ReportMetric(ms(percentile(lat, 50)), "add-p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "add-p99-ms")
}

// postAnswer sends a body signed as Slack signs it and returns the status and the body.
func postAnswer(hc *http.Client, target, body string) (int, string, error) {
	req, err := signedRequest(target, body)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// signedRequest is a POST of body signed as Slack signs it now.
func signedRequest(target, body string) (*http.Request, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(ackSecret))
	io.WriteString(mac, "v0:"+ts+":"+body)
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return req, nil
}
