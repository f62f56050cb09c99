package conformance_test

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
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

const (
	slackToken   = "xoxb-conformance"
	slackSecret  = "8f742231b10e8888abcd99yyyzzz85a5"
	slackGeneral = "C0GENERAL"
)

// slackDriver drives the Slack surface over its signed HTTP endpoints, with the real
// slack-go client pointed at slackfake.
type slackDriver struct {
	t      testing.TB
	w      *world
	fake   *slackfake.Server
	srv    *httptest.Server
	client *http.Client
	seq    int
	names  map[string]Person // response_url name -> whose command or click it answers
	told   map[string]int    // person -> calls already read by Told
}

func slackID(p Person) string { return "U" + strings.ToUpper(p.Key) }

func newSlackDriver(t *testing.T) *slackDriver {
	w := newWorld(t)
	d := &slackDriver{t: t, w: w, fake: slackfake.New(t, slackToken), client: &http.Client{Timeout: 30 * time.Second},
		names: map[string]Person{}, told: map[string]int{}}
	for _, p := range everyone {
		d.fake.AddUser(slackfake.User{ID: slackID(p), Email: p.Email, Name: p.Key})
	}
	d.fake.AddChannel(slackGeneral)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := slack.New(slack.Options{
		Client: slack.NewClient(slackToken, d.fake.URL()), Engine: w.eng, KV: w.store, SigningSecret: slackSecret,
		Logger: quiet, ShutdownGrace: 200 * time.Millisecond, ResponseURLPrefixes: []string{d.fake.ResponseURLPrefix()},
		ChannelInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	w.eng.AddNotifier(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	mux := http.NewServeMux()
	s.Routes(mux)
	d.srv = httptest.NewServer(mux)
	t.Cleanup(func() { d.srv.Close(); cancel(); <-done })
	return d
}

func (d *slackDriver) World() *world { return d.w }

// post sends a body signed as Slack signs it: v0=HMAC-SHA256(secret, "v0:<ts>:<body>").
func (d *slackDriver) post(path, contentType, body string) (int, string) {
	d.t.Helper()
	ts := time.Now().Unix()
	mac := hmac.New(sha256.New, []byte(slackSecret))
	fmt.Fprintf(mac, "v0:%d:%s", ts, body)
	req, err := http.NewRequest(http.MethodPost, d.srv.URL+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := d.client.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (d *slackDriver) responseName(p Person, what string) string {
	d.seq++
	name := fmt.Sprintf("%s-%s-%d", what, p.Key, d.seq)
	d.names[name] = p
	return name
}

// command posts /activate <text> as the person; it returns the response_url name.
func (d *slackDriver) command(p Person, text string) string {
	d.t.Helper()
	name := d.responseName(p, "cmd")
	v := url.Values{
		"token": {"legacy"}, "team_id": {"T0TEST"}, "team_domain": {"conformance"},
		"channel_id": {slackGeneral}, "channel_name": {"general"}, "user_id": {slackID(p)}, "user_name": {p.Key},
		"command": {"/activate"}, "text": {text}, "api_app_id": {"A0TEST"},
		"response_url": {d.fake.ResponseURL(name)}, "trigger_id": {d.fake.Trigger()},
	}
	if status, body := d.post("/slack/commands", "application/x-www-form-urlencoded", v.Encode()); status != http.StatusOK {
		d.t.Fatalf("/activate %s: HTTP %d %s", text, status, body)
	}
	return name
}

func (d *slackDriver) interact(payload map[string]any) (int, string) {
	d.t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		d.t.Fatal(err)
	}
	return d.post("/slack/interactions", "application/x-www-form-urlencoded", url.Values{"payload": {string(b)}}.Encode())
}

// response waits for what the surface posted to a response_url.
func (d *slackDriver) response(name string) string {
	d.t.Helper()
	return d.fake.Wait(d.t, 0, "response", func(c slackfake.Call) bool { return c.Path == name }).Raw
}

func (d *slackDriver) responded(name string) (string, bool) {
	for _, c := range d.fake.Calls("response") {
		if c.Path == name {
			return c.Raw, true
		}
	}
	return "", false
}

func (d *slackDriver) Request(p Person, group string, access bot.Access, dur time.Duration, reason string) string {
	d.t.Helper()
	name := d.command(p, fmt.Sprintf("%s %s for %s %s", group, access, bot.FormatDuration(dur), reason))
	return submittedID(d.t, d.response(name))
}

// slackMessage is one message the person sees: a DM (posted, or as last updated) or an
// answer to their command or click.
type slackMessage struct {
	channel, ts string
	text        string // the text, then the blocks
	blocks      string // Block Kit JSON (for a response_url post, the whole body)
}

func (m slackMessage) content() string { return m.text + "\n" + m.blocks }

// messages lists, oldest first, what Slack showed the person: DMs as posted and updated,
// and the answers to their commands and clicks. Calls from index from on.
func (d *slackDriver) messages(p Person, from int) []slackMessage {
	uid := slackID(p)
	var out []slackMessage
	calls := d.fake.Calls("")
	for _, c := range calls[min(from, len(calls)):] {
		if c.Error != "" {
			continue
		}
		switch c.Method {
		case "chat.postMessage":
			if ch := c.Get("channel"); ch == uid || ch == "D"+uid {
				ts, _ := c.Response["ts"].(string)
				out = append(out, slackMessage{channel: "D" + uid, ts: ts, text: c.Get("text"), blocks: c.Get("blocks")})
			}
		case "chat.update":
			if ch := c.Get("channel"); ch == uid || ch == "D"+uid {
				out = append(out, slackMessage{channel: "D" + uid, ts: c.Get("ts"), text: c.Get("text"), blocks: c.Get("blocks")})
			}
		case "chat.postEphemeral":
			if c.Get("user") == uid {
				out = append(out, slackMessage{channel: c.Get("channel"), text: c.Get("text"), blocks: c.Get("blocks")})
			}
		case "response":
			if d.names[c.Path] == p {
				out = append(out, slackMessage{channel: slackGeneral, blocks: c.Raw})
			}
		}
	}
	return out
}

// latest is the newest message the person sees that names the request.
func (d *slackDriver) latest(p Person, id string) (slackMessage, bool) {
	ms := d.messages(p, 0)
	for i := len(ms) - 1; i >= 0; i-- {
		if strings.Contains(ms[i].content(), id) {
			return ms[i], true
		}
	}
	return slackMessage{}, false
}

var slackActions = map[string]bot.Action{
	"approve": bot.ActApprove, "deny": bot.ActDeny, "cancel": bot.ActCancel, "deactivate": bot.ActDeactivate,
	"extend": bot.ActExtend, "verify_again": bot.ActVerify, "revoke": bot.ActRevoke, "looks_good": bot.ActLooksGood,
}

func slackActionID(a bot.Action) string {
	for k, v := range slackActions {
		if v == a {
			return k
		}
	}
	return string(a)
}

// buttons lists the actions of the buttons for the request in Block Kit JSON (found
// anywhere in it: a message's blocks, or a response_url body).
func buttons(blocks, id string) []bot.Action {
	var out []bot.Action
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "button" && x["value"] == id {
				if a, ok := slackActions[fmt.Sprint(x["action_id"])]; ok {
					out = append(out, a)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	var v any
	if json.Unmarshal([]byte(blocks), &v) == nil {
		walk(v)
	}
	return out
}

func (d *slackDriver) Offered(p Person, id string) []bot.Action {
	m, ok := d.latest(p, id)
	if !ok {
		return nil
	}
	return buttons(m.blocks, id)
}

// Shared: in this world the approvers are asked by DM (the policy names no Slack channel),
// and each DM is rendered for its reader.
func (d *slackDriver) Shared(Person, string) bool { return false }

func (d *slackDriver) Told(p Person) []string {
	calls := len(d.fake.Calls(""))
	var out []string
	for _, m := range d.messages(p, d.told[p.Key]) {
		out = append(out, m.content())
	}
	d.told[p.Key] = calls
	return out
}

func (d *slackDriver) Pending(p Person) []string {
	d.t.Helper()
	return knownIDs(d.w, d.response(d.command(p, "pending")))
}

func (d *slackDriver) Drain() { d.w.runDue() }

func (d *slackDriver) Advance(dur time.Duration) { d.w.clock.Advance(dur); d.Drain() }

// click presses the action's button for the request on the latest message the person sees
// about it. Without such a button, the click is the one Slack would deliver from a message
// that had it (a stale copy, or a crafted payload): the surface must refuse it all the same.
func (d *slackDriver) click(p Person, act bot.Action, id string) string {
	d.t.Helper()
	channel, ts := "D"+slackID(p), fmt.Sprintf("%d.000001", time.Now().Unix())
	if m, ok := d.latest(p, id); ok && m.ts != "" {
		channel, ts = m.channel, m.ts
	}
	name := d.responseName(p, "click")
	payload := map[string]any{
		"type": "block_actions", "token": "legacy", "api_app_id": "A0TEST",
		"user":       map[string]any{"id": slackID(p), "username": p.Key, "team_id": "T0TEST"},
		"team":       map[string]any{"id": "T0TEST", "domain": "conformance"},
		"container":  map[string]any{"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false},
		"channel":    map[string]any{"id": channel, "name": "directmessage"},
		"message":    map[string]any{"type": "message", "ts": ts, "text": "…"},
		"trigger_id": d.fake.Trigger(), "response_url": d.fake.ResponseURL(name),
		"actions": []any{map[string]any{
			"action_id": slackActionID(act), "block_id": "request:" + id, "value": id, "type": "button",
			"text": map[string]any{"type": "plain_text", "text": string(act)}, "action_ts": fmt.Sprintf("%d.000100", time.Now().Unix()),
		}},
	}
	if status, body := d.interact(payload); status != http.StatusOK {
		d.t.Fatalf("click %s: HTTP %d %s", act, status, body)
	}
	return name
}

func (d *slackDriver) Act(p Person, act bot.Action, id, reason string) Outcome {
	d.t.Helper()
	before := d.w.version(id)
	mark := d.fake.Mark()
	name := d.click(p, act, id)
	if act == bot.ActDeny || act == bot.ActExtend {
		// The button opens a form (or the refusal is said instead); the person fills it in.
		var view slackfake.Call
		waitFor(d.t, "the "+string(act)+" form or a refusal", func() bool {
			if _, ok := d.responded(name); ok {
				return true
			}
			for _, c := range d.fake.Since(mark, "views.open") {
				if c.Error == "" {
					view = c
					return true
				}
			}
			return false
		})
		if text, ok := d.responded(name); ok {
			return Outcome{Text: text, Refused: true}
		}
		set := map[string]any{"reason": reason}
		if act == bot.ActExtend {
			set["duration"] = "" // the default the engine leaves
		}
		status, body := d.interact(d.submission(p, openedView(view), set))
		if status != http.StatusOK {
			d.t.Fatalf("submit the %s form: HTTP %d %s", act, status, body)
		}
		return Outcome{Text: body, Refused: strings.Contains(body, `"errors"`)}
	}
	waitFor(d.t, "the answer to "+string(act), func() bool {
		_, ok := d.responded(name)
		return ok || d.w.version(id) != before
	})
	text, _ := d.responded(name)
	return Outcome{Text: text, Refused: d.w.version(id) == before}
}

// openedView is the view of a views.open call, as Slack holds it (with its id and hash).
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

// submission is the view_submission Slack sends for a view: each input holds its initial
// value unless set gives another.
func (d *slackDriver) submission(p Person, view map[string]any, set map[string]any) map[string]any {
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
		v := map[string]any{"type": typ, "value": el["initial_value"]}
		if want, ok := set[aid]; ok {
			v["value"] = want
		}
		values[fmt.Sprint(bm["block_id"])] = map[string]any{aid: v}
	}
	sub := map[string]any{}
	for k, x := range view {
		sub[k] = x
	}
	sub["state"] = map[string]any{"values": values}
	sub["team_id"], sub["app_id"] = "T0TEST", "A0TEST"
	return map[string]any{
		"type": "view_submission", "token": "legacy", "api_app_id": "A0TEST",
		"user": map[string]any{"id": slackID(p), "username": p.Key, "team_id": "T0TEST"},
		"team": map[string]any{"id": "T0TEST"}, "trigger_id": d.fake.Trigger(), "view": sub,
	}
}
