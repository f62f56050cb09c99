package teams_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// Issue 13, "Teams activities from Teams only": a valid Bot Framework token says the Bot
// Framework relayed an activity, not that Teams sent it, nor for which tenant.

// The Bot Framework also relays Direct Line, Web Chat and the Emulator, whose clients write
// from.aadObjectId themselves. Posing as an approver there, with a valid token signed by a
// key endorsed for that channel, is refused (403) and changes nothing; the approver in
// Teams still decides.
func TestChannel_DirectLinePosingAsApproverIsRefused(t *testing.T) {
	e := newEnv(t)
	e.fake.Endorse("msteams", "directline", "webchat", "emulator")
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "activate prod-db-admins for 1h debugging"))
	r := e.requests(aliceID)[0]
	e.drain()
	card := e.fake.SentTo(approvals)[0]
	channel := teamsfake.Conversation{ID: approvals, Type: "channel", ChannelID: approvals, TeamID: teamID}
	posing := teamsfake.User{TeamsID: "dl_9f2c-attacker", AadObjectID: bobID, Name: "Bob"} // Bob approves prod-db-admins
	own := e.fake.Personal(posing)
	before, version := len(e.fake.Sent()), e.get(r.ID).Version

	for _, channelID := range []string{"directline", "webchat", "emulator"} {
		for name, act := range map[string]map[string]any{
			"Action.Execute": e.fake.Execute(posing, channel, card.ActivityID, "approve", map[string]any{"verb": "approve", "requestId": r.ID}),
			"Action.Submit":  e.fake.Submit(posing, channel, card.ActivityID, map[string]any{"verb": "approve", "requestId": r.ID}),
			"text":           e.fake.Message(posing, own, "approve "+r.ID),
		} {
			act["channelId"] = channelID
			if status, body := e.fake.Send(t, e.url, act); status != http.StatusForbidden {
				t.Errorf("channel %q, %s: %d %s, want 403", channelID, name, status, body)
			}
		}
	}
	got := e.get(r.ID)
	if got.State != bot.StatePending || got.Version != version || len(got.Approvals) != 0 {
		t.Fatalf("a Direct Line activity changed the request: state %s, version %d→%d, %d approvals", got.State, version, got.Version, len(got.Approvals))
	}
	if n := len(e.fake.Sent()) - before; n != 0 {
		t.Fatalf("the bot sent %d activities for refused ones", n)
	}
	if _, kept, _ := e.store.GetValue(e.ctx, "teams:user:"+bobID); kept {
		t.Fatal("a refused activity left a conversation reference for Bob")
	}

	approved := e.invoke(bob, channel, card.ActivityID, "approve", map[string]any{"verb": "approve", "requestId": r.ID}).card(t)
	mustContain(t, "Bob's own approval in Teams", teamsfake.Strings(approved), "Approved by Bob")
}

// A surface pinned to a tenant refuses (403) an activity that names no tenant, or names
// another one anywhere (channelData.tenant.id, conversation.tenantId): nothing is done and
// nothing is kept.
func TestTenant_MissingOrOtherIsRefused(t *testing.T) {
	const other = "99999999-0000-4000-8000-000000000009"
	e := newEnv(t)
	cases := []struct {
		name   string
		mutate func(act, channelData, conversation map[string]any)
	}{
		{"no tenant id", func(_, cd, conv map[string]any) { delete(cd, "tenant"); delete(conv, "tenantId") }},
		{"no channelData, no conversation.tenantId", func(a, _, conv map[string]any) { delete(a, "channelData"); delete(conv, "tenantId") }},
		{"another tenant", func(_, cd, conv map[string]any) {
			cd["tenant"] = map[string]any{"id": other}
			conv["tenantId"] = other
		}},
		{"another tenant in channelData only", func(_, cd, _ map[string]any) { cd["tenant"] = map[string]any{"id": other} }},
		{"another tenant in the conversation only", func(_, _, conv map[string]any) { conv["tenantId"] = other }},
		{"ours in the conversation, none in channelData", func(_, cd, _ map[string]any) { delete(cd, "tenant") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chat := e.fake.Personal(alice)
			act := e.fake.Message(alice, chat, "activate sandbox for 30m")
			tc.mutate(act, act["channelData"].(map[string]any), act["conversation"].(map[string]any))
			want := http.StatusForbidden
			if strings.HasPrefix(tc.name, "ours") {
				want = http.StatusOK
			}
			before := len(e.fake.Sent())
			status, body := e.fake.Send(t, e.url, act)
			if status != want {
				t.Fatalf("%d %s, want %d", status, body, want)
			}
			if want == http.StatusOK {
				for _, r := range e.requests(aliceID) {
					if !r.State.Terminal() {
						e.eng.Deactivate(e.ctx, aliceActor(), r.ID)
					}
				}
				e.drain()
				return
			}
			_, kept, _ := e.store.GetValue(e.ctx, "teams:user:"+aliceID)
			_, service, _ := e.store.GetValue(e.ctx, "teams:service")
			if len(e.fake.Sent()) != before || len(e.requests(aliceID)) != 0 || kept || service {
				t.Fatalf("a refused activity had an effect: %d sent, %d requests, reference kept=%v, serviceUrl kept=%v",
					len(e.fake.Sent())-before, len(e.requests(aliceID)), kept, service)
			}
		})
	}
}

// Without a configured tenant, activities of any tenant are served as before, and the
// surface says so once at start.
func TestTenant_NotConfiguredWarnsAtStart(t *testing.T) {
	e := newEnv(t)
	logs := &logBuffer{}
	s := e.surfaceWith(map[string]string{"MICROSOFT_APP_TENANT_ID": ""}, nil, slog.New(slog.NewTextHandler(logs, nil)))
	if n := strings.Count(logs.String(), "not pinned to a tenant"); n != 1 {
		t.Fatalf("%d warnings about the missing tenant at start, want 1:\n%s", n, logs)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	chat := e.fake.Personal(alice)
	act := e.fake.Message(alice, chat, "help")
	delete(act["channelData"].(map[string]any), "tenant")
	delete(act["conversation"].(map[string]any), "tenantId")
	if status, body := e.fake.Send(t, srv.URL, act); status != http.StatusOK {
		t.Fatalf("an activity without a tenant on an unpinned surface: %d %s", status, body)
	}
	mustContain(t, "the reply", e.lastTo(chat.ID).Text(), "activate")
}

// Only a person's own activity replaces their conversation reference: another user posing
// as them over Direct Line, other users in Teams, and a directory that answers someone's
// object id with them all leave it as it was, and their notifications still reach their
// own chat.
func TestRefs_AnotherUserCannotReplaceAUsersReference(t *testing.T) {
	const daveID = "66666666-6666-4666-8666-666666666666"
	// Alice's upn in this local directory is Dave's object id, so the directory answers
	// Dave's object id with Alice.
	policy := strings.Replace(testPolicy, "email: alice@example.com, name: Alice}",
		"email: alice@example.com, upn: "+daveID+", name: Alice}", 1)
	e := newEnvWith(t, policy, true)
	e.fake.Endorse("msteams", "directline")
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "help"))
	ref := func(id string) string {
		t.Helper()
		v, ok, err := e.store.GetValue(e.ctx, "teams:user:"+id)
		if err != nil || !ok {
			t.Fatalf("no conversation reference for %s (%v)", id, err)
		}
		return v
	}
	alices := ref(aliceID)

	// Mallory, over Direct Line, with Alice's object id, from her own chat.
	malloryChat := e.fake.Personal(mallory)
	posing := e.fake.Message(teamsfake.User{TeamsID: mallory.TeamsID, AadObjectID: aliceID, Name: "Alice"}, malloryChat, "help")
	posing["channelId"] = "directline"
	if status, _ := e.fake.Send(t, e.url, posing); status != http.StatusForbidden {
		t.Errorf("Direct Line with Alice's object id: %d, want 403", status)
	}
	if got := ref(aliceID); got != alices {
		t.Fatalf("Mallory's Direct Line activity replaced Alice's reference:\n%s\nwas\n%s", got, alices)
	}

	// Dave in Teams: the directory answers his object id with Alice.
	dave := teamsfake.User{TeamsID: "29:1dave", AadObjectID: daveID, Name: "Dave"}
	daveChat := e.fake.Personal(dave)
	e.send(e.fake.Message(dave, daveChat, "activate sandbox for 30m"))
	mustContain(t, "the answer to Dave", e.lastTo(daveChat.ID).Text(), "not in the directory")
	if got := ref(aliceID); got != alices {
		t.Fatalf("Dave's activity replaced Alice's reference:\n%s\nwas\n%s", got, alices)
	}
	if n := len(e.requests(aliceID)); n != 0 {
		t.Fatalf("Dave's activity made %d requests as Alice", n)
	}

	// Bob and Mallory as themselves, in their chats and in a channel.
	thread := e.fake.Channel("19:ops@thread.tacv2", teamID)
	for _, u := range []teamsfake.User{bob, mallory} {
		e.send(e.fake.Message(u, e.fake.Personal(u), "help"))
		e.send(e.fake.Message(u, thread, "help"))
	}
	if got := ref(aliceID); got != alices {
		t.Fatalf("another user's Teams activity replaced Alice's reference:\n%s\nwas\n%s", got, alices)
	}
	if got := ref(bobID); !strings.Contains(got, `"teams_id":"`+bob.TeamsID+`"`) {
		t.Fatalf("Bob's reference is %s", got)
	}

	// Alice's news reaches her chat, and nobody else's.
	others := len(e.fake.SentTo(malloryChat.ID)) + len(e.fake.SentTo(daveChat.ID))
	r, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "sandbox", Duration: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.drain()
	mustContain(t, "Alice's DM", e.lastTo(chat.ID).Text(), "Request "+r.ID)
	if n := len(e.fake.SentTo(malloryChat.ID)) + len(e.fake.SentTo(daveChat.ID)) - others; n != 0 {
		t.Fatalf("%d of Alice's notifications went to Mallory's or Dave's chat", n)
	}
}

// A post into a channel the bot has not heard from goes to the configured service URL (here
// GCC's), ahead of the latest serviceUrl seen.
func TestProactive_ConfiguredServiceURLIsUsed(t *testing.T) {
	e := newEnv(t)
	e.send(e.fake.Message(alice, e.fake.Personal(alice), "help")) // the latest serviceUrl seen is the fake's
	gcc, _ := url.Parse(teams.ServiceURLGCC)
	rt := newRoutes(map[string]string{teams.ServiceURLGCC: e.fake.ServiceURL()})
	s := e.surfaceWith(map[string]string{teams.EnvServiceURL: teams.ServiceURLGCC}, rt, nil)
	r := e.pending()

	if err := s.Notify(e.ctx, bot.Event{Type: bot.EvSubmitted, Request: r, At: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := rt.requests(gcc.Host); got != 1 {
		t.Fatalf("%d requests to %s, want the approval card (hosts tried: %v)", got, gcc.Host, rt.all())
	}
	cards := e.fake.SentTo(approvals)
	if len(cards) != 1 {
		t.Fatalf("%d activities in the approval channel, want the card", len(cards))
	}
	mustContain(t, "the card", teamsfake.Strings(cards[0].Card()), "Access request "+r.ID)
}

// With no reference for the channel, none for the tenant and no configured service URL, the
// post fails with an error (and a log line) naming the setting, and no request leaves for a
// default host; once an activity brought a serviceUrl, the retry goes through it.
func TestProactive_NoServiceURLFailsClearly(t *testing.T) {
	e := newEnv(t)
	rt := newRoutes(nil)
	logs := &logBuffer{}
	s := e.surfaceWith(nil, rt, slog.New(slog.NewTextHandler(logs, nil)))
	r := e.pending()
	ev := bot.Event{Type: bot.EvSubmitted, Request: r, At: e.clock.Now()}

	err := s.Notify(e.ctx, ev)
	if !errors.Is(err, teams.ErrNoServiceURL) || !strings.Contains(err.Error(), teams.EnvServiceURL) {
		t.Fatalf("Notify: %v, want ErrNoServiceURL naming %s", err, teams.EnvServiceURL)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), teams.EnvServiceURL) {
		t.Fatalf("the log does not name %s in an error:\n%s", teams.EnvServiceURL, logs)
	}
	if hosts := rt.remote(); len(hosts) != 0 {
		t.Fatalf("requests went to %v", hosts)
	}
	if e.fake.Hits("send") != 0 {
		t.Fatal("something was posted")
	}

	e.send(e.fake.Message(alice, e.fake.Personal(alice), "help"))
	if err := s.Notify(e.ctx, ev); err != nil {
		t.Fatalf("the retry after an activity: %v", err)
	}
	if len(e.fake.SentTo(approvals)) != 1 {
		t.Fatal("the retry did not post the approval card")
	}
}

// pending submits a request that waits for approval in the Teams approval channel, without
// running the jobs that would notify it.
func (e *env) pending() *bot.Request {
	e.t.Helper()
	r, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "debugging"})
	if err != nil || r.State != bot.StatePending {
		e.t.Fatalf("submit: %v", err)
	}
	return r
}

// surfaceWith builds a second surface on the env's engine and Redis from the env's settings
// with some changed (an empty value unsets one), its HTTP through rt (nil: the default).
func (e *env) surfaceWith(changes map[string]string, rt http.RoundTripper, log *slog.Logger) *teams.Surface {
	e.t.Helper()
	vars := map[string]string{
		"MICROSOFT_APP_ID": appID, "MICROSOFT_APP_PASSWORD": appSecret, "MICROSOFT_APP_TENANT_ID": tenantID,
		"BOTFRAMEWORK_OPENID_METADATA_URL": e.fake.MetadataURL(), "BOTFRAMEWORK_TOKEN_URL": e.fake.TokenURL(),
	}
	for k, v := range changes {
		vars[k] = v
	}
	st, ok, err := teams.SettingsFromEnv(func(k string) string { return vars[k] })
	if err != nil || !ok {
		e.t.Fatalf("settings: ok=%v err=%v", ok, err)
	}
	if rt != nil {
		st.HTTP = &http.Client{Transport: rt, Timeout: 10 * time.Second}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s, err := st.Build(e.eng, e.store, log)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// routes is the surface's transport in these tests: loopback goes through, a request under
// a mapped base URL (a Teams cloud's connector) goes to the fake instead, and any other is
// refused; every host tried is recorded.
type routes struct {
	mu    sync.Mutex
	to    map[string][2]*url.URL // host -> {from, to} base URLs
	hosts []string
}

// newRoutes maps base URLs (such as teams.ServiceURLGCC) to the fake's base.
func newRoutes(bases map[string]string) *routes {
	rt := &routes{to: map[string][2]*url.URL{}}
	for from, to := range bases {
		f, err := url.Parse(from)
		if err != nil {
			panic(err)
		}
		t, err := url.Parse(to)
		if err != nil {
			panic(err)
		}
		rt.to[f.Host] = [2]*url.URL{f, t}
	}
	return rt
}

func (rt *routes) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.hosts = append(rt.hosts, req.URL.Host)
	rt.mu.Unlock()
	if isLoopback(req.URL.Hostname()) {
		return http.DefaultTransport.RoundTrip(req)
	}
	route, ok := rt.to[req.URL.Host]
	prefix := ""
	if ok {
		prefix = strings.TrimSuffix(route[0].Path, "/")
	}
	if !ok || !strings.HasPrefix(req.URL.Path, prefix+"/") {
		return nil, fmt.Errorf("test transport: no route to %s", req.URL.Redacted())
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host, out.Host = route[1].Scheme, route[1].Host, ""
	out.URL.Path = strings.TrimPrefix(out.URL.Path, prefix)
	out.URL.RawPath = strings.TrimPrefix(out.URL.RawPath, prefix)
	return http.DefaultTransport.RoundTrip(out)
}

func (rt *routes) all() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.hosts...)
}

func (rt *routes) requests(host string) int {
	n := 0
	for _, h := range rt.all() {
		if h == host {
			n++
		}
	}
	return n
}

// remote lists the hosts tried that are not loopback.
func (rt *routes) remote() []string {
	var out []string
	for _, h := range rt.all() {
		name, _, err := net.SplitHostPort(h)
		if err != nil {
			name = h
		}
		if !isLoopback(name) {
			out = append(out, h)
		}
	}
	return out
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// logBuffer collects a surface's log lines; handlers may write from other goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
