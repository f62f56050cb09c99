package slack

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Forged, stale and oversized requests are refused before anything happens: no Slack call,
// no request, no KV write.
func TestHTTP_RefusedRequestsDoNothing(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBody = 4096 })
	quick, _ := e.commandBody("UALICE", "sandbox for 10m testing")
	click, _ := e.clickPayload("UBOB", actApprove, "R2222222", approvals, "1.000001")
	clickJSON, _ := json.Marshal(click)
	clickBody := url.Values{"payload": {string(clickJSON)}}.Encode()
	event, _ := json.Marshal(map[string]any{"type": "event_callback", "event_id": "Ev0FORGED",
		"event": map[string]any{"type": "message", "channel_type": "im", "user": "UALICE", "channel": "DUALICE", "text": "status", "ts": "1.1"}})
	now := time.Now().Unix()
	ts := func(t int64) string { return strconv.FormatInt(t, 10) }
	big := quick + "&pad=" + strings.Repeat("x", 5000)

	cases := []struct {
		name    string
		path    string
		body    string
		headers map[string]string
		want    int
	}{
		{"no signature headers", "/slack/commands", quick, nil, 401},
		{"no timestamp", "/slack/commands", quick, map[string]string{"X-Slack-Signature": sign(testSecret, now, quick)}, 401},
		{"signed with another secret", "/slack/commands", quick, map[string]string{"X-Slack-Request-Timestamp": ts(now), "X-Slack-Signature": sign("not-the-secret", now, quick)}, 401},
		{"signature of another body", "/slack/commands", quick, map[string]string{"X-Slack-Request-Timestamp": ts(now), "X-Slack-Signature": sign(testSecret, now, quick+"x")}, 401},
		{"signature not v0", "/slack/commands", quick, map[string]string{"X-Slack-Request-Timestamp": ts(now), "X-Slack-Signature": "v1=" + strings.TrimPrefix(sign(testSecret, now, quick), "v0=")}, 401},
		{"garbage signature", "/slack/commands", quick, map[string]string{"X-Slack-Request-Timestamp": ts(now), "X-Slack-Signature": "v0=zz"}, 401},
		{"timestamp 6 minutes old (replay)", "/slack/commands", quick, map[string]string{"X-Slack-Request-Timestamp": ts(now - 360), "X-Slack-Signature": sign(testSecret, now-360, quick)}, 401},
		{"timestamp 6 minutes ahead", "/slack/commands", quick, map[string]string{"X-Slack-Request-Timestamp": ts(now + 360), "X-Slack-Signature": sign(testSecret, now+360, quick)}, 401},
		{"timestamp not a number", "/slack/commands", quick, map[string]string{"X-Slack-Request-Timestamp": "yesterday", "X-Slack-Signature": sign(testSecret, now, quick)}, 401},
		{"forged approve click", "/slack/interactions", clickBody, map[string]string{"X-Slack-Request-Timestamp": ts(now), "X-Slack-Signature": sign("forged", now, clickBody)}, 401},
		{"forged event", "/slack/events", string(event), map[string]string{"X-Slack-Request-Timestamp": ts(now), "X-Slack-Signature": sign("forged", now, string(event))}, 401},
		{"body over the limit, signed", "/slack/commands", big, map[string]string{"X-Slack-Request-Timestamp": ts(now), "X-Slack-Signature": sign(testSecret, now, big)}, 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := form
			if c.path == "/slack/events" {
				ct = "application/json"
			}
			a := e.postRaw(c.path, ct, c.body, c.headers)
			if a.Status != c.want {
				t.Fatalf("HTTP %d %q, want %d", a.Status, a.Body, c.want)
			}
		})
	}
	valid, validName := e.commandBody("UALICE", "sandbox for 10m testing")
	checkNothing := func(when string) {
		t.Helper()
		for _, c := range e.fake.Calls("") {
			if c.Get("user") == "UBOB" || c.Method == "chat.postMessage" || (c.Method == "response" && c.Path != validName) {
				t.Fatalf("%s: a refused request reached Slack: %s %s", when, c.Method, c.Raw)
			}
		}
		if _, ok, _ := e.store.GetValue(e.ctx, keyEvent("Ev0FORGED")); ok {
			t.Fatalf("%s: a forged event was recorded", when)
		}
		if _, ok := e.s.cachedUser(e.ctx, "UBOB"); ok {
			t.Fatalf("%s: a refused click resolved its user", when)
		}
	}
	checkNothing("at once")
	if rs := e.requests("alice@example.com"); len(rs) != 0 {
		t.Fatalf("a refused request created %d requests", len(rs))
	}

	// The same quick form, correctly signed, is accepted: the refusals were about the
	// signature. Work is queued in order, so by the time it is done, anything a refused
	// request had queued would have run too.
	if a := e.post("/slack/commands", form, valid); a.Status != http.StatusOK {
		t.Fatalf("signed: HTTP %d %s", a.Status, a.Body)
	}
	e.waitResponse(validName)
	if rs := e.requests("alice@example.com"); len(rs) != 1 {
		t.Fatalf("%d requests, want the one signed request", len(rs))
	}
	checkNothing("after a signed request")
}

func TestHTTP_MalformedAndVerification(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, path, ct, body string
		want                 int
	}{
		{"command without user", "/slack/commands", form, "command=%2Factivate&text=help", 400},
		{"command not a form", "/slack/commands", form, "%zz", 400},
		{"interaction without payload", "/slack/interactions", form, "foo=bar", 400},
		{"interaction payload not JSON", "/slack/interactions", form, "payload=%7Bnot-json", 400},
		{"interaction without type", "/slack/interactions", form, "payload=%7B%7D", 400},
		{"event not JSON", "/slack/events", "application/json", "{", 400},
		{"event without type", "/slack/events", "application/json", "{}", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if a := e.post(c.path, c.ct, c.body); a.Status != c.want {
				t.Fatalf("HTTP %d %q, want %d", a.Status, a.Body, c.want)
			}
		})
	}
	if calls := e.fake.Calls(""); len(calls) != 0 {
		t.Fatalf("malformed requests reached Slack: %d calls", len(calls))
	}
	a := e.post("/slack/events", "application/json", `{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`)
	if a.Status != 200 || a.Body != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("url_verification: %d %q", a.Status, a.Body)
	}
	// An event type the app does not handle is acknowledged (Slack would retry a failure).
	if a := e.event("Ev0UNKNOWN", map[string]any{"type": "reaction_added", "user": "UALICE"}); a.Status != 200 {
		t.Fatalf("unknown event: HTTP %d", a.Status)
	}
	if got := e.post("/slack/commands", form, "command=%2Factivate"); got.Status != 400 {
		t.Fatalf("HTTP %d", got.Status)
	}
	resp, err := http.Get(e.srv.URL + "/slack/commands")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: HTTP %d, want 405", resp.StatusCode)
	}
}
