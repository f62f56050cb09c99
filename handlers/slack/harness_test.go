package slack

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
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
	oncalllocal "github.com/pimbot/pimbot/oncall/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

const (
	testToken  = "xoxb-test-token"
	testSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	approvals  = "C0APPROVE"
	general    = "C0GENERAL"
)

const testPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
defaults:
  default_duration: 1h
  max_duration: 8h
  min_duration: 5m
groups:
  - name: prod-db-admins
    id: g-prod
    description: Production database administrators
    access: [member, owner]
    eligible: [alice@example.com, group:sre@example.com]
    approvers: [bob@example.com, carol@example.com]
    max_duration: 4h
    approval_channel: {slack: C0APPROVE}
  - name: quorum
    id: g-quorum
    eligible: [alice@example.com]
    approvers: [bob@example.com, carol@example.com, dave@example.com]
    approvals_required: 2
    approval_channel: {slack: C0APPROVE}
  - name: selfish
    id: g-self
    eligible: [bob@example.com]
    approvers: [bob@example.com, carol@example.com]
    approval_channel: {slack: C0APPROVE}
  - name: dm-approvers
    id: g-dm
    eligible: [alice@example.com]
    approvers: [bob@example.com, carol@example.com]
  - name: sandbox
    id: g-sandbox
    eligible: [alice@example.com]
    require_approval: false
    require_justification: false
  - name: ticketed
    id: g-ticket
    eligible: [alice@example.com]
    require_ticket: true
    approvers: [bob@example.com]
    approval_channel: {slack: C0APPROVE}
directory:
  users:
    - {email: alice@example.com, name: Alice}
    - {email: bob@example.com, name: Bob}
    - {email: carol@example.com, name: Carol}
    - {email: dave@example.com, name: Dave}
    - {email: mallory@example.com, name: Mallory}
    - {email: erin@example.com, name: Erin}
  groups:
    - {mail: sre@example.com, members: [erin@example.com]}
`

var slackUsers = []slackfake.User{
	{ID: "UALICE", Email: "alice@example.com", Name: "alice"},
	{ID: "UBOB", Email: "bob@example.com", Name: "bob"},
	{ID: "UCAROL", Email: "carol@example.com", Name: "carol"},
	{ID: "UDAVE", Email: "dave@example.com", Name: "dave"},
	{ID: "UMALLORY", Email: "mallory@example.com", Name: "mallory"},
	{ID: "USTRANGER", Email: "stranger@elsewhere.example", Name: "stranger"},
	{ID: "UNOMAIL", Name: "nomail"},
}

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

// env is one test's world: a real Redis (fresh prefix), the local directory, the engine
// with a fake clock, the surface over HTTP, and the fake Slack Web API.
type env struct {
	t      testing.TB
	ctx    context.Context
	pol    *bot.Policy
	store  *store.Redis
	dir    *local.Directory
	clock  *fakeClock
	eng    *bot.Engine
	fake   *slackfake.Server
	s      *Surface
	srv    *httptest.Server
	client *http.Client
	seq    int
}

type envOpt func(*Options)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	return newEnvPolicy(t, testPolicy, opts...)
}

func newEnvPolicy(t testing.TB, policy string, opts ...envOpt) *env {
	t.Helper()
	pol, err := policyfile.Parse("test.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), pol: pol, store: storetest.New(t), dir: local.New(pol),
		clock: &fakeClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}, fake: slackfake.New(t, testToken),
		client: &http.Client{Timeout: 30 * time.Second}}
	for _, u := range slackUsers {
		e.fake.AddUser(u)
	}
	e.fake.AddChannel(approvals)
	e.fake.AddChannel(general)
	var rotas []bot.OnCallProvider
	if len(pol.Rotas) > 0 {
		rotas = append(rotas, oncalllocal.New(pol.Rotas, e.clock.Now))
	}
	e.eng = bot.New(bot.Config{Policy: pol, Store: e.store, Directory: e.dir, Clock: e.clock, OnCall: rotas,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	o := Options{
		Client: NewClient(testToken, e.fake.URL()), Engine: e.eng, KV: e.store, SigningSecret: testSecret,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ShutdownGrace: 200 * time.Millisecond,
		ResponseURLPrefixes: []string{e.fake.ResponseURLPrefix()},
		// Paced as Slack is, scaled down so that tests run fast (delivery_test.go paces at
		// Slack's own rate against the rate-limited fake).
		ChannelInterval: 5 * time.Millisecond,
	}
	for _, f := range opts {
		f(&o)
	}
	e.s, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.eng.AddNotifier(e.s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.s.Run(ctx); close(done) }()
	mux := http.NewServeMux()
	e.s.Routes(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		cancel()
		<-done
	})
	return e
}

// sign signs a body the way Slack does: v0=HMAC-SHA256(secret, "v0:<ts>:<body>").
func sign(secret string, ts int64, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

type answer struct {
	Status int
	Body   string
}

// post sends a body signed as Slack signs it now.
func (e *env) post(path, contentType, body string) answer {
	e.t.Helper()
	ts := time.Now().Unix()
	return e.postRaw(path, contentType, body, map[string]string{
		"X-Slack-Request-Timestamp": strconv.FormatInt(ts, 10),
		"X-Slack-Signature":         sign(testSecret, ts, body),
	})
}

func (e *env) postRaw(path, contentType, body string, headers map[string]string) answer {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Body: string(b)}
}

const form = "application/x-www-form-urlencoded"

// commandBody is the form Slack posts for /activate.
func (e *env) commandBody(user, text string) (body, responseName string) {
	e.seq++
	responseName = fmt.Sprintf("cmd-%d", e.seq)
	v := url.Values{
		"token": {"legacy-verification-token"}, "team_id": {"T0TEST"}, "team_domain": {"pimbot-test"},
		"channel_id": {general}, "channel_name": {"general"}, "user_id": {user}, "user_name": {strings.ToLower(user[1:])},
		"command": {"/activate"}, "text": {text}, "api_app_id": {"A0TEST"},
		"response_url": {e.fake.ResponseURL(responseName)}, "trigger_id": {e.fake.Trigger()},
	}
	return v.Encode(), responseName
}

// command posts /activate <text> as user; it returns the answer and the response_url name.
func (e *env) command(user, text string) (answer, string) {
	e.t.Helper()
	body, name := e.commandBody(user, text)
	return e.post("/slack/commands", form, body), name
}

func (e *env) interact(payload map[string]any) answer {
	e.t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post("/slack/interactions", form, url.Values{"payload": {string(b)}}.Encode())
}

// clickPayload is a block_actions payload for a button in a message.
func (e *env) clickPayload(user, actionID, value, channel, ts string) (map[string]any, string) {
	e.seq++
	name := fmt.Sprintf("click-%d", e.seq)
	return map[string]any{
		"type": "block_actions", "token": "legacy-verification-token", "api_app_id": "A0TEST",
		"user":       map[string]any{"id": user, "username": strings.ToLower(user[1:]), "team_id": "T0TEST"},
		"team":       map[string]any{"id": "T0TEST", "domain": "pimbot-test"},
		"container":  map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"channel":    map[string]any{"id": channel, "name": "approvals"},
		"message":    map[string]any{"type": "message", "ts": ts, "text": "…"},
		"trigger_id": e.fake.Trigger(), "response_url": e.fake.ResponseURL(name),
		"actions": []any{map[string]any{
			"action_id": actionID, "block_id": "decide", "value": value, "type": "button",
			"text": map[string]any{"type": "plain_text", "text": actionID}, "action_ts": fmt.Sprintf("%d.000100", time.Now().Unix()),
		}},
	}, name
}

// click presses a button of a message; it returns the response_url name of the click.
func (e *env) click(user, actionID, value, channel, ts string) string {
	e.t.Helper()
	p, name := e.clickPayload(user, actionID, value, channel, ts)
	if a := e.interact(p); a.Status != http.StatusOK {
		e.t.Fatalf("click %s: HTTP %d %s", actionID, a.Status, a.Body)
	}
	return name
}

// submitView submits a view the surface opened, the way Slack does: the view with its
// state, where each input holds its initial value unless set says otherwise.
// set maps an action id to a string (text inputs, select values) or an int64 (datetime).
func (e *env) submitView(user string, view map[string]any, set map[string]any) answer {
	e.t.Helper()
	return e.interact(e.submissionPayload(user, view, set))
}

func (e *env) submissionPayload(user string, view map[string]any, set map[string]any) map[string]any {
	values := map[string]any{}
	blocks, _ := view["blocks"].([]any)
	for _, b := range blocks {
		bm, _ := b.(map[string]any)
		if bm["type"] != "input" {
			continue
		}
		el, _ := bm["element"].(map[string]any)
		aid, _ := el["action_id"].(string)
		typ, _ := el["type"].(string)
		v := map[string]any{"type": typ}
		want, given := set[aid]
		switch typ {
		case "static_select", "radio_buttons":
			opt := el["initial_option"]
			if given {
				opt = findOption(el, fmt.Sprint(want))
			}
			v["selected_option"] = opt
		case "datetimepicker":
			v["selected_date_time"] = el["initial_date_time"]
			if given {
				v["selected_date_time"] = want
			}
		default:
			v["value"] = el["initial_value"]
			if given {
				v["value"] = want
			}
		}
		values[bm["block_id"].(string)] = map[string]any{aid: v}
	}
	sub := map[string]any{}
	for k, x := range view {
		sub[k] = x
	}
	sub["state"] = map[string]any{"values": values}
	sub["team_id"], sub["app_id"] = "T0TEST", "A0TEST"
	return map[string]any{
		"type": "view_submission", "token": "legacy-verification-token", "api_app_id": "A0TEST",
		"user": map[string]any{"id": user, "username": strings.ToLower(user[1:]), "team_id": "T0TEST"},
		"team": map[string]any{"id": "T0TEST"}, "trigger_id": e.fake.Trigger(), "view": sub,
	}
}

func findOption(el map[string]any, value string) any {
	opts, _ := el["options"].([]any)
	groups, _ := el["option_groups"].([]any)
	for _, g := range groups {
		more, _ := g.(map[string]any)["options"].([]any)
		opts = append(opts, more...)
	}
	for _, o := range opts {
		if om, _ := o.(map[string]any); om["value"] == value {
			return om
		}
	}
	return map[string]any{"text": map[string]any{"type": "plain_text", "text": value}, "value": value}
}

// openedView is the view of a views.open or views.update call, as Slack would hold it.
func openedView(c slackfake.Call) map[string]any {
	v, _ := c.JSON["view"].(map[string]any)
	out := map[string]any{}
	for k, x := range v {
		out[k] = x
	}
	if rv, ok := c.Response["view"].(map[string]any); ok {
		out["id"], out["hash"] = rv["id"], rv["hash"]
	}
	return out
}

// event posts an Events API callback.
func (e *env) event(eventID string, inner map[string]any) answer {
	e.t.Helper()
	b, _ := json.Marshal(map[string]any{
		"token": "legacy-verification-token", "team_id": "T0TEST", "api_app_id": "A0TEST",
		"event": inner, "type": "event_callback", "event_id": eventID, "event_time": time.Now().Unix(),
	})
	return e.post("/slack/events", "application/json", string(b))
}

// pump runs the engine's due jobs until cond holds (or fails the test after 10 s).
func (e *env) pump(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := e.eng.RunDue(e.ctx); err != nil {
			e.t.Fatal(err)
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval; the deadline bounds the wait
	}
}

// drain runs every job due at the current fake time.
func (e *env) drain() {
	e.t.Helper()
	for i := 0; i < 50; i++ {
		n, err := e.eng.RunDue(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	e.t.Fatal("jobs keep coming")
}

func (e *env) user(email string) bot.User {
	e.t.Helper()
	u, err := e.dir.ResolveUser(e.ctx, email)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *env) requests(email string) []*bot.Request {
	e.t.Helper()
	rs, err := e.store.ListByUser(e.ctx, e.user(email).ID, 50)
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func (e *env) get(id string) *bot.Request {
	e.t.Helper()
	r, err := e.store.Get(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) holds(email, group string, access bot.Access) bool {
	e.t.Helper()
	hs, err := e.dir.Holders(e.ctx, group, access)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range hs {
		if h.Email == email {
			return true
		}
	}
	return false
}

// submit makes a request through the engine directly (for tests about what follows).
func (e *env) submit(email string, in bot.SubmitInput) *bot.Request {
	e.t.Helper()
	r, err := e.eng.Submit(e.ctx, bot.Actor{User: e.user(email), Surface: Name}, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// approvalPosted waits for the approvers' message of a request in channel and returns its ts.
func (e *env) approvalPosted(channel, id string) string {
	e.t.Helper()
	var ts string
	e.pump("the approvers' message of "+id, func() bool {
		for _, c := range e.fake.Calls("chat.postMessage") {
			if c.Get("channel") == channel && strings.Contains(c.Get("blocks"), `"value":"`+id+`"`) && c.Error == "" {
				ref, _ := e.s.loadRef(e.ctx, id)
				for _, m := range ref.Msgs {
					if m.Channel == channel || m.To == channel {
						ts = m.TS
						return true
					}
				}
			}
		}
		return false
	})
	return ts
}

// dms returns the DMs sent to a Slack user so far (chat.postMessage to their id).
func (e *env) dms(slackID string) []string {
	var out []string
	for _, c := range e.fake.Calls("chat.postMessage") {
		if c.Get("channel") == slackID && c.Error == "" {
			out = append(out, c.Get("text")+"\n"+c.Get("blocks"))
		}
	}
	return out
}

// waitDM waits for a DM to a Slack user containing all the given strings.
func (e *env) waitDM(slackID string, contains ...string) string {
	e.t.Helper()
	var got string
	e.pump(fmt.Sprintf("a DM to %s with %q", slackID, contains), func() bool {
		for _, d := range e.dms(slackID) {
			ok := true
			for _, c := range contains {
				ok = ok && strings.Contains(d, c)
			}
			if ok {
				got = d
				return true
			}
		}
		return false
	})
	return got
}

// responses returns what was posted to a response_url.
func (e *env) responses(name string) []string {
	var out []string
	for _, c := range e.fake.Calls("response") {
		if c.Path == name {
			out = append(out, c.Raw)
		}
	}
	return out
}

func (e *env) waitResponse(name string) string {
	e.t.Helper()
	c := e.fake.Wait(e.t, 0, "response", func(c slackfake.Call) bool { return c.Path == name })
	return c.Raw
}

// waitCall runs due jobs until the fake received a successful matching call after mark.
func (e *env) waitCall(mark int, method string, match func(slackfake.Call) bool) slackfake.Call {
	e.t.Helper()
	var got slackfake.Call
	e.pump("a "+method+" call", func() bool {
		for _, c := range e.fake.Since(mark, method) {
			if c.Error == "" && (match == nil || match(c)) {
				got = c
				return true
			}
		}
		return false
	})
	return got
}

func (e *env) groupNamed(name string) *bot.Group {
	e.t.Helper()
	g, ok := e.pol.Group(name)
	if !ok {
		e.t.Fatalf("no group %s", name)
	}
	return g
}

// viewJSON is a view as Slack holds it after views.open (with an id and a hash).
func (e *env) viewJSON(v any) map[string]any {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatal(err)
	}
	e.seq++
	m["id"], m["hash"] = fmt.Sprintf("VLOCAL%d", e.seq), "hash"
	return m
}
