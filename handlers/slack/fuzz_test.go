package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/internal/fuzzkit"
)

// Fuzzing of the three Slack endpoints with signed requests: whatever the body, the surface
// answers 200 (or a 4xx with words, for a body it cannot read), never a 5xx; whatever it
// says to the person is not empty; the work it queued does not panic; and nothing it sends
// to Slack is refused for its shape (too long, empty, malformed blocks or views).
//
// Seeds (here and in testdata/fuzz/<Target>/) may hold placeholders that each execution
// replaces with live values of this process, so that mutations of real-shaped payloads
// reach past identity and ids: {{response_url}}, {{trigger_id}} and {{event_id}} (fresh
// each time), {{pending}} (a request of alice waiting for bob or carol) and {{active}}
// (an active grant of alice).

// fuzzRig is one process's world for a fuzz target: set up once, used by every execution.
type fuzzRig struct {
	e       *env
	pending string
	active  string
	logs    *fuzzkit.Tap
	seq     int
}

func newFuzzRig(f testing.TB) *fuzzRig {
	fuzzkit.BoundMinimization()
	logs := fuzzkit.NewTap("panicked")
	// One worker: a barrier task queued after an execution runs once all its work has run.
	e := newEnv(f, func(o *Options) { o.Workers = 1; o.Logger = slog.New(logs) })
	pending := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "fuzz"})
	active := e.submit("alice@example.com", bot.SubmitInput{Group: "sandbox", Duration: time.Hour})
	e.drain()
	if r := e.get(active.ID); r.State != bot.StateActive {
		f.Fatalf("the sandbox grant is %s, want active", r.State)
	}
	return &fuzzRig{e: e, pending: pending.ID, active: active.ID, logs: logs}
}

// fill replaces the placeholders of a seed with this process's live values.
func (r *fuzzRig) fill(s string, escape func(string) string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	r.seq++
	return strings.NewReplacer(
		"{{response_url}}", escape(r.e.fake.ResponseURL(fmt.Sprintf("fuzz-%d", r.seq))),
		"{{trigger_id}}", escape(r.e.fake.Trigger()),
		"{{event_id}}", escape(fmt.Sprintf("EvFUZZ%d", r.seq)),
		"{{pending}}", r.pending,
		"{{active}}", r.active,
	).Replace(s)
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// exchange posts body to path, signed as Slack signs, waits for the work it queued, and
// checks what came back and what was sent to Slack meanwhile.
func (r *fuzzRig) exchange(t *testing.T, path, contentType string, body []byte) answer {
	mark := r.e.fake.Mark()
	ts := time.Now().Unix()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", sign(testSecret, ts, string(body)))
	// The mux the test server serves, called in this goroutine: no server or client
	// goroutines of its own whose timing would blur the coverage that guides the fuzzer.
	rec := httptest.NewRecorder()
	r.e.srv.Config.Handler.ServeHTTP(rec, req)
	a := answer{Status: rec.Code, Body: rec.Body.String()}

	// The barrier: with one worker, it runs after every task this request queued.
	done := make(chan struct{})
	if !r.e.s.later("fuzz barrier", func(context.Context) { close(done) }) {
		t.Fatal("the work queue refused the barrier")
	}
	select {
	case <-done:
	case <-time.After(2 * taskTimeout):
		t.Fatalf("the work queued by %s did not finish", path)
	}
	if ps := r.logs.Take(); len(ps) > 0 {
		t.Fatalf("queued work panicked: %s", strings.Join(ps, "\n"))
	}
	switch {
	case a.Status >= 500:
		t.Fatalf("HTTP %d for a signed request: %q", a.Status, a.Body)
	case a.Status >= 400:
		if strings.TrimSpace(a.Body) == "" {
			t.Fatalf("HTTP %d without a word of why", a.Status)
		}
	case a.Status != http.StatusOK:
		t.Fatalf("HTTP %d %q: Slack wants 200", a.Status, a.Body)
	}
	for _, c := range r.e.fake.Since(mark, "") {
		switch c.Error {
		case "msg_too_long", "no_text", "invalid_blocks", "invalid_blocks_format", "invalid_arguments", "invalid_json", "invalid_payload":
			t.Fatalf("Slack would refuse what pimbot sent (%s): %s %.2000s", c.Error, c.Method, c.Raw)
		}
		if c.Method == "response" && c.Error == "" {
			if text, _ := c.JSON["text"].(string); strings.TrimSpace(text) == "" {
				t.Fatalf("an empty answer to the person: %.2000s", c.Raw)
			}
		}
	}
	return a
}

// checkJSONAnswer checks a 200's body: empty (an ack) or JSON in which every text meant for
// the person is non-empty.
func checkJSONAnswer(t *testing.T, a answer) map[string]any {
	if a.Status != http.StatusOK || a.Body == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(a.Body), &m); err != nil {
		t.Fatalf("a 200 whose body is not JSON: %q", a.Body)
	}
	if text, ok := m["text"]; ok {
		if s, _ := text.(string); strings.TrimSpace(s) == "" {
			t.Fatalf("an empty answer: %s", a.Body)
		}
	}
	if m["response_action"] == "errors" {
		errs, _ := m["errors"].(map[string]any)
		if len(errs) == 0 {
			t.Fatalf("an errors answer without errors: %s", a.Body)
		}
		for block, v := range errs {
			if s, _ := v.(string); strings.TrimSpace(s) == "" || block == "" {
				t.Fatalf("an empty error next to %q: %s", block, a.Body)
			}
		}
	}
	return m
}

// Slash command form bodies, as Slack posts /activate.
func FuzzSlackCommand(f *testing.F) {
	form := func(user, text string) string {
		body := url.Values{
			"token": {"legacy-verification-token"}, "team_id": {"T0TEST"}, "team_domain": {"pimbot-test"},
			"channel_id": {general}, "channel_name": {"general"}, "user_id": {user}, "user_name": {"someone"},
			"command": {"/activate"}, "text": {text}, "api_app_id": {"A0TEST"},
			"response_url": {"{{response_url}}"}, "trigger_id": {"{{trigger_id}}"},
		}.Encode()
		return strings.NewReplacer("%7B%7B", "{{", "%7D%7D", "}}").Replace(body)
	}
	for _, c := range []struct{ user, text string }{
		{"UALICE", ""}, {"UALICE", "help"}, {"UALICE", "status"}, {"UBOB", "list"},
		{"UALICE", "prod-db-admins for 2h fixing the outage"}, {"UALICE", "sandbox for 30m"},
		{"UALICE", "prod-db-admins owner for 90m at 14:30 ticket INC-1 x"}, {"UALICE", "ticketed for 1h"},
		{"UALICE", "sandbox for -1h"}, {"UALICE", "sandbox for 0s"}, {"UALICE", "sandbox for 9999h"},
		{"UALICE", "sandbox at 1999-01-01 00:00"}, {"UALICE", "<!channel> for 1d <@UBOB> *bold*"},
		{"UALICE", "prod-db-admins for 1h " + strings.Repeat("long reason ", 900)},
		{"UMALLORY", "prod-db-admins for 1h let me in"}, {"USTRANGER", "sandbox for 1h"},
		{"UNOMAIL", "sandbox"}, {"UNOBODY", "help"}, {"", "help"}, {"UALICE", "\x00\xff"},
	} {
		f.Add(form(c.user, c.text))
	}
	f.Add("user_id=UALICE&command=%2Factivate&text=%zz")
	f.Add("user_id=UALICE&command=/activate&text=status&response_url=https%3A%2F%2Fevil.example%2Fhook")
	f.Add("")
	r := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, body string) {
		a := r.exchange(t, "/slack/commands", "application/x-www-form-urlencoded", []byte(r.fill(body, url.QueryEscape)))
		checkJSONAnswer(t, a)
	})
}

// Interactivity payloads (payload=<JSON>): block actions, view submissions, shortcuts.
func FuzzSlackInteraction(f *testing.F) {
	click := func(user, action, value string) string {
		b, _ := json.Marshal(map[string]any{
			"type": "block_actions", "token": "legacy-verification-token", "api_app_id": "A0TEST",
			"user":       map[string]any{"id": user, "username": "someone", "team_id": "T0TEST"},
			"team":       map[string]any{"id": "T0TEST", "domain": "pimbot-test"},
			"container":  map[string]any{"type": "message", "message_ts": "1.000001", "channel_id": approvals, "is_ephemeral": false},
			"channel":    map[string]any{"id": approvals, "name": "approvals"},
			"message":    map[string]any{"type": "message", "ts": "1.000001", "text": "…"},
			"trigger_id": "{{trigger_id}}", "response_url": "{{response_url}}",
			"actions": []any{map[string]any{"action_id": action, "block_id": "decide", "value": value, "type": "button",
				"text": map[string]any{"type": "plain_text", "text": action}, "action_ts": "1.000100"}},
		})
		return string(b)
	}
	for _, c := range []struct{ user, action, value string }{
		{"UBOB", actApprove, "{{pending}}"}, {"UCAROL", actDeny, "{{pending}}"}, {"UMALLORY", actApprove, "{{pending}}"},
		{"UALICE", actCancel, "{{pending}}"}, {"UALICE", actDeactivate, "{{active}}"}, {"UALICE", actExtend, "{{active}}"},
		{"UBOB", actApprove, "R0000000"}, {"UBOB", actApprove, strings.Repeat("R", 3000)}, {"UALICE", actHomeActivate, "sandbox"},
		{"UALICE", "no_such_action", "x"}, {"", actApprove, "{{pending}}"},
	} {
		f.Add(click(c.user, c.action, c.value))
	}
	f.Add(`{"type":"shortcut","callback_id":"activate","trigger_id":"{{trigger_id}}","user":{"id":"UALICE"}}`)
	f.Add(`{"type":"message_action","callback_id":"x","trigger_id":"{{trigger_id}}","user":{"id":"UALICE"},"message":{"text":"hi"}}`)
	f.Add(`{"type":"block_suggestion","action_id":"group","value":"pro","user":{"id":"UALICE"}}`)
	f.Add(`{"type":"view_closed","user":{"id":"UALICE"},"view":{"callback_id":"activate"}}`)
	f.Add(`{"type":"view_submission","user":{"id":"UBOB"},"view":{"callback_id":"deny","private_metadata":"{{pending}}","state":{"values":{"reason":{"reason":{"type":"plain_text_input","value":"no"}}}}}}`)
	f.Add(`{"type":"view_submission","user":{"id":"UALICE"},"view":{"callback_id":"extend","private_metadata":"{{active}}","state":{"values":{"duration":{"duration":{"type":"plain_text_input","value":"-1h"}}}}}}`)
	f.Add(`{"type":"view_submission","user":{"id":"UALICE"},"view":{"callback_id":"activate","private_metadata":"{\"opened\":-1}","state":{"values":{"group":{"group":{"type":"static_select","selected_option":{"value":"sandbox"}}},"duration.sandbox":{"duration":{"type":"static_select","selected_option":{"value":"-60"}}}}}}}`)
	f.Add(`{"type":"view_submission","user":{"id":"UALICE"},"view":{"callback_id":"activate","blocks":[{"type":"input"}],"state":{"values":{}}}}`)
	f.Add(`{"type":"block_actions","user":{"id":"UALICE"},"view":{"id":"V0","hash":"h","private_metadata":"{\"opened\":1}"},"actions":[{"action_id":"group","type":"static_select","selected_option":{"value":"prod-db-admins"}}]}`)
	f.Add(`{}`)
	f.Add(`{"type":5}`)
	r := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, payload string) {
		body := url.Values{"payload": {r.fill(payload, jsonEscape)}}.Encode()
		checkJSONAnswer(t, r.exchange(t, "/slack/interactions", "application/x-www-form-urlencoded", []byte(body)))
	})
}

// Events API bodies: url_verification, and event_callback with messages and app_home_opened.
func FuzzSlackEvent(f *testing.F) {
	event := func(inner map[string]any) string {
		b, _ := json.Marshal(map[string]any{"token": "legacy-verification-token", "team_id": "T0TEST", "api_app_id": "A0TEST",
			"event": inner, "type": "event_callback", "event_id": "{{event_id}}", "event_time": 1764320400})
		return string(b)
	}
	dm := func(user, text string) string {
		return event(map[string]any{"type": "message", "channel_type": "im", "user": user, "channel": "D" + user, "text": text, "ts": "1.000200"})
	}
	f.Add(`{"token":"legacy-verification-token","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	f.Add(`{"type":"url_verification"}`)
	for _, s := range []string{
		dm("UALICE", "help"), dm("UALICE", "status"), dm("UALICE", "activate"), dm("UALICE", "activate sandbox for 30m testing"),
		dm("UALICE", "activate prod-db-admins for -1h"), dm("UALICE", "hello there"), dm("UMALLORY", "activate prod-db-admins for 1h x"),
		dm("UNOBODY", "status"), dm("", "status"), dm("UALICE", "activate sandbox for 1h "+strings.Repeat("<!here> ", 2000)),
		event(map[string]any{"type": "message", "channel_type": "im", "user": "UALICE", "bot_id": "B1", "text": "help"}),
		event(map[string]any{"type": "message", "channel_type": "im", "user": "UALICE", "subtype": "message_changed", "text": "help"}),
		event(map[string]any{"type": "message", "channel_type": "channel", "user": "UALICE", "channel": general, "text": "help"}),
		event(map[string]any{"type": "app_home_opened", "user": "UALICE", "channel": "DUALICE", "tab": "home"}),
		event(map[string]any{"type": "app_home_opened", "user": "UNOBODY", "tab": "home"}),
		event(map[string]any{"type": "app_home_opened", "user": "UALICE", "tab": "messages"}),
		event(map[string]any{"type": "reaction_added", "user": "UALICE"}),
		event(map[string]any{"type": "app_mention", "user": "UALICE", "text": "<@UBOT> help", "channel": general}),
	} {
		f.Add(s)
	}
	f.Add(`{"type":"event_callback","event_id":"{{event_id}}","event":null}`)
	f.Add(`{"type":"event_callback","event":{"type":"message","user":1}}`)
	f.Add(`{"type":"app_rate_limited","minute_rate_limited":1518467820}`)
	f.Add(`[]`)
	r := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, body string) {
		filled := r.fill(body, jsonEscape)
		a := r.exchange(t, "/slack/events", "application/json", []byte(filled))
		var outer struct{ Type, Challenge string }
		if a.Status == http.StatusOK && json.Unmarshal([]byte(filled), &outer) == nil && outer.Type == "url_verification" && a.Body != outer.Challenge {
			t.Fatalf("url_verification answered %q, want the challenge %q", a.Body, outer.Challenge)
		}
	})
}

// The fuzz rig reaches the engine: its placeholders make seeds real enough that a slash
// command submits, a click decides and a DM is answered (else the fuzzing would only ever
// exercise the decoders).
func TestFuzzRig_SeedsReachTheEngine(t *testing.T) {
	r := newFuzzRig(t)
	mark := r.e.fake.Mark()
	cmd := url.Values{"user_id": {"UALICE"}, "command": {"/activate"}, "text": {"dm-approvers for 30m fuzz rig"},
		"channel_id": {general}, "response_url": {"{{response_url}}"}}.Encode()
	cmd = strings.NewReplacer("%7B%7B", "{{", "%7D%7D", "}}").Replace(cmd)
	if a := r.exchange(t, "/slack/commands", form, []byte(r.fill(cmd, url.QueryEscape))); a.Status != 200 || a.Body != "" {
		t.Fatalf("command: %d %q", a.Status, a.Body)
	}
	if got := r.e.fake.Since(mark, "response"); len(got) != 1 || !strings.Contains(got[0].Raw, "submitted") {
		t.Fatalf("the command was not answered as submitted: %v", got)
	}
	p, _ := r.e.clickPayload("UBOB", actApprove, "{{pending}}", approvals, "1.000001")
	b, _ := json.Marshal(p)
	if a := r.exchange(t, "/slack/interactions", form, []byte(url.Values{"payload": {r.fill(string(b), jsonEscape)}}.Encode())); a.Status != 200 {
		t.Fatalf("click: %d %q", a.Status, a.Body)
	}
	if st := r.e.get(r.pending).State; st == bot.StatePending {
		t.Fatalf("bob's approval of %s did not land", r.pending)
	}
	mark = r.e.fake.Mark()
	ev := `{"type":"event_callback","event_id":"{{event_id}}","event":{"type":"message","channel_type":"im","user":"UALICE","channel":"DUALICE","text":"help","ts":"1.1"}}`
	if a := r.exchange(t, "/slack/events", "application/json", []byte(r.fill(ev, jsonEscape))); a.Status != 200 {
		t.Fatalf("event: %d %q", a.Status, a.Body)
	}
	if got := r.e.fake.Since(mark, "chat.postMessage"); len(got) != 1 || got[0].Error != "" {
		t.Fatalf("the DM was not answered: %v", got)
	}
}
