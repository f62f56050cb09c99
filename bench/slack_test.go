package bench

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	slacksurface "github.com/pimbot/pimbot/handlers/slack"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

const (
	ackRate    = 200 // requests per second, open loop
	ackUsers   = 500
	ackToken   = "xoxb-bench-token"
	ackSecret  = "bench-signing-secret-0123456789ab"
	ackChannel = "C0APPROVALS"
)

// BenchmarkSlackAck measures how fast Slack gets its HTTP answer for signed requests
// through the real handler (signature check, parsing, the answer; the work itself is
// queued), while that queued work and the engine's notifications run against a fake
// Slack Web API on loopback and a real Redis. Requests are sent open-loop at 200/s, each
// on its own goroutine, as Slack would send them; b.N is the number of requests.
//
// command: "/activate bench for 1h ..." (quick form: the submit runs after the ack).
// button: an approver clicks Approve on a pending request (the approval runs after the ack).
func BenchmarkSlackAck(b *testing.B) {
	b.Run("command", func(b *testing.B) { benchSlackAck(b, false) })
	b.Run("button", func(b *testing.B) { benchSlackAck(b, true) })
}

func ackPolicy() string {
	var users, members []string
	for i := 0; i < ackUsers; i++ {
		users = append(users, fmt.Sprintf("    - {email: u%d@example.com}", i))
		members = append(members, fmt.Sprintf("u%d@example.com", i))
	}
	return `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - name: bench
    id: g-bench
    eligible: [group:everyone@example.com]
    approvers: [boss@example.com]
    require_justification: false
    max_duration: 8h
    reminder_before: 0s
    approval_channel: {slack: ` + ackChannel + `}
directory:
  users:
    - {email: boss@example.com, name: Boss}
` + strings.Join(users, "\n") + `
  groups:
    - {mail: everyone@example.com, members: [` + strings.Join(members, ", ") + `]}
`
}

func benchSlackAck(b *testing.B, button bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rdb, _ := client(b, 0)
	prefix := storetest.Prefix(b)
	b.Cleanup(func() { dropPrefix(rdb, prefix) })
	pol, err := policyfile.Parse("ack.yaml", []byte(ackPolicy()))
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(rdb, store.Options{Prefix: prefix})
	dir := local.New(pol)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: dir, Logger: quiet})
	fake := slackfake.New(b, ackToken)
	fake.AddChannel(ackChannel)
	fake.AddUser(slackfake.User{ID: "UBOSS", Email: "boss@example.com", Name: "boss"})
	for i := 0; i < ackUsers; i++ {
		fake.AddUser(slackfake.User{ID: fmt.Sprintf("U%05d", i), Email: fmt.Sprintf("u%d@example.com", i), Name: fmt.Sprintf("u%d", i)})
	}
	s, err := slacksurface.New(slacksurface.Options{Client: slacksurface.NewClient(ackToken, fake.URL()), Engine: eng, KV: st,
		SigningSecret: ackSecret, Logger: quiet, ResponseURLPrefixes: []string{fake.ResponseURLPrefix()}})
	if err != nil {
		b.Fatal(err)
	}
	eng.AddNotifier(s)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var ids []string // pending requests that the clicks approve
	wg.Add(2)
	go func() { defer wg.Done(); s.Run(ctx) }()
	go func() { defer wg.Done(); eng.Run(ctx) }()
	mux := http.NewServeMux()
	s.Routes(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

	// The bodies, built before the clock starts.
	bodies := make([]string, b.N)
	path := "/slack/commands"
	if button {
		path = "/slack/interactions"
		for i := range bodies {
			u := mustResolve(b, dir, fmt.Sprintf("u%d@example.com", i%ackUsers))
			var r *bot.Request
			if i < ackUsers {
				r, err = eng.Submit(ctx, bot.Actor{User: u, Surface: "slack"}, bot.SubmitInput{Group: "bench", Duration: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, r.ID)
			}
			id := ""
			if r != nil {
				id = r.ID
			} else {
				id = bodyID(bodies[i%ackUsers])
			}
			bodies[i] = clickBody(fake, id, i)
		}
	} else {
		for i := range bodies {
			bodies[i] = commandBody(fake, fmt.Sprintf("U%05d", i%ackUsers), i)
		}
	}
	// Warm up the connection pool and the handler.
	for i := 0; i < 10; i++ {
		if _, err := post(hc, srv.URL+path, bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
	}

	lat := make([]time.Duration, b.N)
	errs := make(chan error, b.N)
	tick := time.NewTicker(time.Second / ackRate)
	defer tick.Stop()
	var sent sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		<-tick.C
		sent.Add(1)
		go func() {
			defer sent.Done()
			d, err := post(hc, srv.URL+path, bodies[i])
			if err != nil {
				errs <- err
				return
			}
			lat[i] = d
		}()
	}
	sent.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	// The queued work really ran: every user's request exists (command) or was approved (button).
	deadline := time.Now().Add(30 * time.Second)
	for !ackWorkDone(st, button, ids, min(b.N, ackUsers)) {
		if time.Now().After(deadline) {
			b.Fatal("the work queued by the acknowledged requests did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sortDurations(lat)
	b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

func ackWorkDone(st *store.Redis, button bool, ids []string, want int) bool {
	ctx := context.Background()
	if !button {
		open, err := st.OpenRequests(ctx)
		return err == nil && len(open) >= want
	}
	for _, id := range ids {
		if r, err := st.Get(ctx, id); err != nil || r.State == bot.StatePending {
			return false
		}
	}
	return true
}

// bodyID finds the request id in a click body built earlier (the same request is clicked
// again: the engine refuses a second approval, which is work too).
func bodyID(body string) string {
	v, _ := url.ParseQuery(body)
	var p struct {
		Actions []struct {
			Value string `json:"value"`
		} `json:"actions"`
	}
	json.Unmarshal([]byte(v.Get("payload")), &p)
	if len(p.Actions) == 0 {
		return ""
	}
	return p.Actions[0].Value
}

func mustResolve(b *testing.B, dir *local.Directory, email string) bot.User {
	u, err := dir.ResolveUser(context.Background(), email)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// post sends a body signed as Slack signs it and returns the time to the full answer.
func post(hc *http.Client, target, body string) (time.Duration, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(ackSecret))
	io.WriteString(mac, "v0:"+ts+":"+body)
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: HTTP %d", target, resp.StatusCode)
	}
	return d, err
}

// commandBody is the form Slack posts for "/activate bench for 1h <reason>".
func commandBody(fake *slackfake.Server, user string, i int) string {
	return url.Values{
		"token": {"legacy"}, "team_id": {"T0BENCH"}, "team_domain": {"bench"}, "channel_id": {"C0GENERAL"},
		"channel_name": {"general"}, "user_id": {user}, "user_name": {strings.ToLower(user)},
		"command": {"/activate"}, "text": {"bench for 1h load test " + strconv.Itoa(i)}, "api_app_id": {"A0BENCH"},
		"response_url": {fake.ResponseURL("cmd-" + strconv.Itoa(i))}, "trigger_id": {fake.Trigger()},
	}.Encode()
}

// clickBody is a block_actions payload: the approver clicks Approve on request id.
func clickBody(fake *slackfake.Server, id string, i int) string {
	p, _ := json.Marshal(map[string]any{
		"type": "block_actions", "token": "legacy", "api_app_id": "A0BENCH",
		"user":       map[string]any{"id": "UBOSS", "username": "boss", "team_id": "T0BENCH"},
		"team":       map[string]any{"id": "T0BENCH", "domain": "bench"},
		"container":  map[string]any{"type": "message", "message_ts": "1700000000.000100", "channel_id": ackChannel},
		"channel":    map[string]any{"id": ackChannel, "name": "approvals"},
		"message":    map[string]any{"type": "message", "ts": "1700000000.000100", "text": "request " + id},
		"trigger_id": fake.Trigger(), "response_url": fake.ResponseURL("click-" + strconv.Itoa(i)),
		"actions": []any{map[string]any{"action_id": "approve", "block_id": "decide", "value": id, "type": "button",
			"text": map[string]any{"type": "plain_text", "text": "Approve"}, "action_ts": "1700000000.000200"}},
	})
	return url.Values{"payload": {string(p)}}.Encode()
}
