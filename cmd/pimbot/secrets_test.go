package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/entra/entrafake"
	"github.com/pimbot/pimbot/graphclient/graphfake"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
	"github.com/pimbot/pimbot/store/storetest"
)

// Known values for every secret pimbot reads. Each is distinctive, so that any of the
// forms leakForms looks for (even its first 12 characters) can only come from it.
var knownSecrets = map[string]string{
	"SLACK_BOT_TOKEN":        "xoxb-5501-9f3kQ2-botTokenSecretValueZ7",
	"SLACK_SIGNING_SECRET":   "sgnQ7c2a9d1e7f4b3a8c6d5e2f1a0b9c8d7",
	"SLACK_APP_TOKEN":        "xapp-1-A0SEC-8812-appLevelSecretQ4w",
	"GRAPH_ACCESS_TOKEN":     "grTokDev-9c8b7a6f5e4d3c2b1a0z",
	"AZURE_CLIENT_SECRET":    "azSec~Kq8.Zp3_Wn5-Lm7.Rt2Yv9",
	"ENTRA_CLIENT_SECRET":    "enSec~Hb4.Jc6_Nd8-Pf1.Qg3Sx5",
	"MICROSOFT_APP_PASSWORD": "tmPwd~Vr6.Xs8_Zt0-Bu2.Cw4Dy6",
	"REDIS_URL password":     "rdPwQ3e5f7a9b1c2d4e6f8a0b",
}

// leakForms are the ways a secret shows up when it leaks: as is, base64 (as in a Basic
// header or a dumped token), URL-escaped, and its first 12 characters (a "truncated" log).
func leakForms(secret string) map[string]string {
	return map[string]string{
		"as is":          secret,
		"base64":         base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64 raw":     base64.RawStdEncoding.EncodeToString([]byte(secret)),
		"base64url":      base64.RawURLEncoding.EncodeToString([]byte(secret)),
		"URL-escaped":    url.QueryEscape(secret),
		"first 12 chars": secret[:12],
	}
}

// findLeaks names each secret (and the form) found in text.
func findLeaks(text string, secrets map[string]string) []string {
	var out []string
	for name, s := range secrets {
		for form, v := range leakForms(s) {
			if i := strings.Index(text, v); i >= 0 {
				lo, hi := max(0, i-80), min(len(text), i+len(v)+40)
				out = append(out, fmt.Sprintf("%s (%s) in …%s…", name, form, text[lo:hi]))
			}
		}
	}
	sort.Strings(out)
	return out
}

// The scanner finds a secret that is logged, in each form it looks for.
func TestSecretScan_FindsWhatIsLogged(t *testing.T) {
	secret := knownSecrets["MICROSOFT_APP_PASSWORD"]
	for form, v := range leakForms(secret) {
		var b bytes.Buffer
		log := newLogger(func(k string) string { return map[string]string{"PIMBOT_LOG_LEVEL": "debug"}[k] }, &b)
		log.Debug("calling the token endpoint", "body", "client_id=x&client_secret="+v+"&grant_type=client_credentials")
		got := findLeaks(b.String(), knownSecrets)
		if len(got) == 0 || !strings.HasPrefix(got[0], "MICROSOFT_APP_PASSWORD (") {
			t.Errorf("a password logged %s was not found: %v", form, got)
		}
	}
	if got := findLeaks("pimbot serving addr=127.0.0.1:3000 redis=standalone xoxb-… xapp-…", knownSecrets); len(got) != 0 {
		t.Errorf("false alarm: %v", got)
	}
}

// recorded keeps every HTTP answer the test got from pimbot, headers and body.
type recorded struct {
	mu  sync.Mutex
	all bytes.Buffer
}

func (r *recorded) keep(what string, resp *http.Response) (int, string) {
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(&r.all, "== %s: %d\n", what, resp.StatusCode)
	_ = resp.Header.Write(&r.all)
	r.all.Write(b)
	r.all.WriteString("\n")
	return resp.StatusCode, string(b)
}

func (r *recorded) String() string { r.mu.Lock(); defer r.mu.Unlock(); return r.all.String() }

// redisWithPassword gives a REDIS_URL to the test Redis that needs a password: an ACL user
// of its own, removed when the test ends.
func redisWithPassword(t *testing.T, password string) string {
	t.Helper()
	testEnv(t, nil) // skips on the embedded Redis, as the other serve tests do
	rdb := storetest.Client(t)
	user := "pimbot-secrets-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx := context.Background()
	if err := rdb.Do(ctx, "ACL", "SETUSER", user, "on", ">"+password, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })
	raw := os.Getenv("REDIS_URL")
	if raw == "" {
		raw = "redis://127.0.0.1:6379/0"
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

const secretsPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
defaults: {reminder_before: 0s}
groups:
  - name: fast
    id: 7c1e0f8a-0000-4000-8000-00000000f001
    eligible: [alice@example.com]
    require_approval: false
    require_justification: false
  - name: guarded
    id: 7c1e0f8a-0000-4000-8000-00000000f002
    eligible: [alice@example.com, carol@example.com]
    approvers: [bob@example.com]
`

const (
	secAliceID = "aaaaaaaa-0000-4000-8000-00000000a11c"
	secBobID   = "bbbbbbbb-0000-4000-8000-0000000000b0"
	secCarolID = "cccccccc-0000-4000-8000-0000000000c0"
	secTenant  = "72f988bf-0000-4000-8000-00000000cafe"
	secAppID   = "00000000-0000-4000-8000-00000000a99e"
	secClient  = "00000000-0000-4000-8000-00000000c11e"
)

// `pimbot serve` with a known value in every secret it reads and debug logging: a signed and
// a forged Slack command, a Slack event, a slash command over Socket Mode, a Teams message
// with a valid token and one with a bad token, an Entra callback with a bad state, a Graph
// call that fails, /healthz, /readyz and /metrics. No secret appears in the log or in any
// answer, as is, base64, URL-escaped or cut to its first 12 characters. Run once with the
// Entra sign-in using ENTRA_CLIENT_SECRET, once with AZURE_CLIENT_SECRET.
func TestSecrets_NeverInLogsOrAnswers(t *testing.T) {
	for _, entraSecret := range []string{"ENTRA_CLIENT_SECRET", "AZURE_CLIENT_SECRET"} {
		t.Run(entraSecret, func(t *testing.T) { secretsRun(t, entraSecret == "ENTRA_CLIENT_SECRET") })
	}
}

func secretsRun(t *testing.T, separateEntraApp bool) {
	sec := knownSecrets
	graph := graphfake.Start(t)
	graph.Token = sec["GRAPH_ACCESS_TOKEN"]
	graph.AddUser(graphfake.User{ID: secAliceID, Mail: "alice@example.com", UPN: "alice@example.com", Name: "Alice"})
	graph.AddUser(graphfake.User{ID: secBobID, Mail: "bob@example.com", UPN: "bob@example.com", Name: "Bob"})
	graph.AddUser(graphfake.User{ID: secCarolID, Mail: "carol@example.com", UPN: "carol@example.com", Name: "Carol"})
	graph.AddGroup("7c1e0f8a-0000-4000-8000-00000000f001", "fast@example.com")
	graph.AddGroup("7c1e0f8a-0000-4000-8000-00000000f002", "guarded@example.com")
	// A Graph call that fails: anything about carol is refused as if the token were bad.
	graph.Fault(func(r *http.Request) (int, string) {
		if strings.Contains(r.URL.String(), "carol") || strings.Contains(r.URL.Path, secCarolID) {
			return http.StatusUnauthorized, ""
		}
		return 0, ""
	})

	slackAPI := slackfake.New(t, sec["SLACK_BOT_TOKEN"])
	slackAPI.AppToken = sec["SLACK_APP_TOKEN"]
	slackAPI.AddUser(slackfake.User{ID: "UALICE", Email: "alice@example.com", Name: "alice"})
	slackAPI.AddUser(slackfake.User{ID: "UCAROL", Email: "carol@example.com", Name: "carol"})
	slackAPI.AddChannel("C0GENERAL")

	teamsBF := teamsfake.New(t, secAppID, sec["MICROSOFT_APP_PASSWORD"], secTenant)
	login := entrafake.New(secTenant, secClient)
	t.Cleanup(login.Close)

	policy := filepath.Join(t.TempDir(), "pimbot.yaml")
	if err := os.WriteFile(policy, []byte(secretsPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PIMBOT_CONFIG": policy, "PIMBOT_LOG_LEVEL": "debug",
		"REDIS_URL":       redisWithPassword(t, sec["REDIS_URL password"]),
		"SLACK_BOT_TOKEN": sec["SLACK_BOT_TOKEN"], "SLACK_SIGNING_SECRET": sec["SLACK_SIGNING_SECRET"],
		"SLACK_APP_TOKEN": sec["SLACK_APP_TOKEN"], "SLACK_API_URL": slackAPI.URL(),
		"GRAPH_ACCESS_TOKEN": sec["GRAPH_ACCESS_TOKEN"], "GRAPH_API_URL": graph.BaseURL(),
		"AZURE_TENANT_ID": secTenant, "AZURE_CLIENT_ID": secClient, "AZURE_CLIENT_SECRET": sec["AZURE_CLIENT_SECRET"],
		"ENTRA_LOGIN_URL": login.URL, "PIMBOT_PUBLIC_URL": "http://127.0.0.1:1",
		"MICROSOFT_APP_ID": secAppID, "MICROSOFT_APP_PASSWORD": sec["MICROSOFT_APP_PASSWORD"],
		"MICROSOFT_APP_TENANT_ID": secTenant, "BOTFRAMEWORK_OPENID_METADATA_URL": teamsBF.MetadataURL(),
		"BOTFRAMEWORK_TOKEN_URL": teamsBF.TokenURL(),
	}
	if separateEntraApp {
		env["ENTRA_CLIENT_ID"], env["ENTRA_CLIENT_SECRET"] = secClient, sec["ENTRA_CLIENT_SECRET"]
	}
	getenv := testEnv(t, env)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	a, err := newApp(ctx, getenv, logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	s := start(t, ctx, a, logs)
	answers := &recorded{}
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(what string, req *http.Request) (int, string) {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return answers.keep(what, resp)
	}
	slackPost := func(what, path, contentType, body, secret string) (int, string) {
		t.Helper()
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "v0:%s:%s", ts, body)
		req, _ := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
		return do(what, req)
	}
	command := func(user, text string) string {
		return url.Values{"user_id": {user}, "command": {"/activate"}, "text": {text}, "channel_id": {"C0GENERAL"},
			"team_id": {"T0TEST"}, "response_url": {slackAPI.ResponseURL(user)}, "trigger_id": {slackAPI.Trigger()}}.Encode()
	}
	form := "application/x-www-form-urlencoded"

	waitFor(t, "the /readyz of the server", 10*time.Second, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	// Slack over HTTP: a signed command that activates (Slack, Graph and Redis all used), one
	// whose directory lookup fails, a forged one, an event.
	if code, body := slackPost("signed command", "/slack/commands", form, command("UALICE", "fast for 1h testing"), sec["SLACK_SIGNING_SECRET"]); code != 200 {
		t.Fatalf("signed command: %d %q", code, body)
	}
	if code, body := slackPost("signed command, Graph refuses", "/slack/commands", form, command("UCAROL", "guarded for 1h x"), sec["SLACK_SIGNING_SECRET"]); code != 200 {
		t.Fatalf("signed command: %d %q", code, body)
	}
	if code, _ := slackPost("forged command", "/slack/commands", form, command("UALICE", "status"), "not-the-secret"); code != 401 {
		t.Fatalf("forged command: %d", code)
	}
	if code, body := slackPost("event", "/slack/events", "application/json", `{"type":"url_verification","challenge":"c-123"}`, sec["SLACK_SIGNING_SECRET"]); code != 200 || body != "c-123" {
		t.Fatalf("url_verification: %d %q", code, body)
	}
	// Socket Mode: connected with the app-level token; a slash command arrives over it.
	slackAPI.WaitSocket(t)
	slackAPI.SendEnvelope(t, "slash_commands", map[string]any{"user_id": "UALICE", "command": "/activate", "text": "help", "channel_id": "C0GENERAL"})

	// Teams: a message with a valid token (the reply needs a connector token, got with the
	// app password), and one with a token signed by someone else.
	chat := teamsBF.Personal(teamsfake.User{TeamsID: "29:1alice", AadObjectID: secAliceID, Name: "Alice"})
	msg := teamsBF.Message(teamsfake.User{TeamsID: "29:1alice", AadObjectID: secAliceID, Name: "Alice"}, chat, "status")
	for _, c := range []struct {
		what, token string
		want        int
	}{
		{"teams message", teamsBF.Token(teamsBF.Claims(teamsBF.ServiceURL())), 200},
		{"teams message, bad token", teamsfake.Unsigned(teamsBF.KeyID, teamsBF.Claims(teamsBF.ServiceURL())), 401},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/messages", strings.NewReader(mustJSONBody(t, msg)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.token)
		if code, body := do(c.what, req); code != c.want {
			t.Fatalf("%s: %d %q", c.what, code, body)
		}
	}
	// Entra: a callback with a state that was never issued.
	req, _ := http.NewRequest(http.MethodGet, s.url+"/auth/callback?state=forged&code=abc", nil)
	if code, _ := do("entra callback", req); code < 400 {
		t.Fatalf("a forged sign-in callback answered %d", code)
	}

	// What those requests started has finished: alice's grant is in Graph, carol was told
	// (ephemerally: response_url posts go only to Slack's hosts) that the directory failed,
	// the Teams reply went out.
	waitFor(t, "alice's grant in Graph", 15*time.Second, func() bool {
		return graph.Holds("7c1e0f8a-0000-4000-8000-00000000f001", secAliceID, false)
	})
	waitFor(t, "the answer to carol", 15*time.Second, func() bool {
		for _, c := range slackAPI.Calls("chat.postEphemeral") {
			if c.Get("user") == "UCAROL" {
				return true
			}
		}
		return false
	})
	waitFor(t, "the Teams reply", 15*time.Second, func() bool { return len(teamsBF.SentTo(chat.ID)) > 0 })
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
		if code, _ := do(path, req); code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
	}
	cancel()
	if err := s.wait(); err != nil {
		t.Fatal(err)
	}

	logText, answerText := logs.String(), answers.String()
	if !strings.Contains(logText, "level=DEBUG") || !strings.Contains(logText, "path=/slack/commands") {
		t.Fatalf("the log is not at debug level with the access log:\n%s", logText)
	}
	for _, leak := range findLeaks(logText, sec) {
		t.Errorf("a secret in the log: %s", leak)
	}
	for _, leak := range findLeaks(answerText, sec) {
		t.Errorf("a secret in an HTTP answer: %s", leak)
	}
	if t.Failed() {
		t.Logf("log:\n%s", logText)
	}
	// The scan reads the same log the server wrote: a secret logged there now is found.
	a.log.Warn("canary", "token", base64.StdEncoding.EncodeToString([]byte(sec["SLACK_APP_TOKEN"])))
	got := findLeaks(logs.String(), sec)
	for _, g := range got {
		if !strings.HasPrefix(g, "SLACK_APP_TOKEN (base64") {
			t.Fatalf("the canary was not the only find: %v", got)
		}
	}
	if len(got) == 0 {
		t.Fatal("the canary in the log was not found")
	}
	t.Logf("scanned %d bytes of log and %d bytes of HTTP answers for %d secrets in %d forms each", len(logText), len(answerText), len(sec), len(leakForms("x123456789012")))
}

func mustJSONBody(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
