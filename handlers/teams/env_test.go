package teams_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
	oncalllocal "github.com/pimbot/pimbot/oncall/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

const (
	appID     = "00000000-0000-4000-8000-00000000a99d"
	appSecret = "s3cret-value~never-logged"
	tenantID  = "72f988bf-0000-4000-8000-000000000001"
	approvals = "19:approvals@thread.tacv2"
	teamID    = "19:team-general@thread.tacv2"

	aliceID   = "11111111-1111-4111-8111-111111111111"
	bobID     = "22222222-2222-4222-8222-222222222222"
	carolID   = "33333333-3333-4333-8333-333333333333"
	malloryID = "44444444-4444-4444-8444-444444444444"
)

var (
	alice   = teamsfake.User{TeamsID: "29:1alice", AadObjectID: aliceID, Name: "Alice"}
	bob     = teamsfake.User{TeamsID: "29:1bob", AadObjectID: bobID, Name: "Bob"}
	carol   = teamsfake.User{TeamsID: "29:1carol", AadObjectID: carolID, Name: "Carol"}
	mallory = teamsfake.User{TeamsID: "29:1mallory", AadObjectID: malloryID, Name: "Mallory"}
	// stranger is a Teams user the directory does not know.
	stranger = teamsfake.User{TeamsID: "29:1stranger", AadObjectID: "55555555-5555-4555-8555-555555555555", Name: "Stranger"}
)

const testPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
defaults:
  default_duration: 1h
  max_duration: 8h
  min_duration: 5m
  reminder_before: 10m
groups:
  - name: prod-db-admins
    id: 7c1e0f8a-0000-4000-8000-000000000001
    access: [member, owner]
    eligible: [alice@example.com, bob@example.com]
    approvers: [bob@example.com, carol@example.com]
    max_duration: 4h
    approval_channel: {teams: "19:approvals@thread.tacv2"}
  - name: sandbox
    id: 7c1e0f8a-0000-4000-8000-000000000002
    eligible: [alice@example.com]
    require_approval: false
    require_justification: false
directory:
  users:
    - {id: 11111111-1111-4111-8111-111111111111, email: alice@example.com, name: Alice}
    - {id: 22222222-2222-4222-8222-222222222222, email: bob@example.com, name: Bob}
    - {id: 33333333-3333-4333-8333-333333333333, email: carol@example.com, name: Carol}
    - {id: 44444444-4444-4444-8444-444444444444, email: mallory@example.com, name: Mallory}
`

// fakeClock is the engine's injected clock: tests move time instead of sleeping.
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

type env struct {
	t       testing.TB
	ctx     context.Context
	pol     *bot.Policy
	store   *store.Redis
	dir     *local.Directory
	clock   *fakeClock
	eng     *bot.Engine
	fake    *teamsfake.Fake
	surface *teams.Surface
	url     string // POST /api/messages of the surface
}

func newEnv(t testing.TB) *env { return newEnvWith(t, testPolicy, true) }

// newEnvWith is newEnv with another policy; the approval channel is known to the fake
// unless known is false.
func newEnvWith(t testing.TB, policy string, known bool) *env {
	t.Helper()
	pol, err := policyfile.Parse("test.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: context.Background(), pol: pol, store: storetest.New(t), dir: local.New(pol),
		clock: &fakeClock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}}
	e.fake = teamsfake.New(t, appID, appSecret, tenantID)
	if known {
		e.fake.AddConversation(approvals)
	}
	e.surface, e.eng, e.url = e.start()
	return e
}

// start builds an engine and a Teams surface on the shared Redis, as one process would.
func (e *env) start() (*teams.Surface, *bot.Engine, string) {
	e.t.Helper()
	getenv := func(k string) string {
		return map[string]string{
			"MICROSOFT_APP_ID": appID, "MICROSOFT_APP_PASSWORD": appSecret, "MICROSOFT_APP_TENANT_ID": tenantID,
			"BOTFRAMEWORK_OPENID_METADATA_URL": e.fake.MetadataURL(), "BOTFRAMEWORK_TOKEN_URL": e.fake.TokenURL(),
		}[k]
	}
	st, ok, err := teams.SettingsFromEnv(getenv)
	if err != nil || !ok {
		e.t.Fatalf("settings: ok=%v err=%v", ok, err)
	}
	var rotas []bot.OnCallProvider
	if len(e.pol.Rotas) > 0 {
		rotas = append(rotas, oncalllocal.New(e.pol.Rotas, e.clock.Now))
	}
	eng := bot.New(bot.Config{Policy: e.pol, Store: e.store, Directory: e.dir, Clock: e.clock, OnCall: rotas,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s, err := st.Build(eng, e.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		e.t.Fatal(err)
	}
	eng.AddNotifier(s)
	srv := httptest.NewServer(s)
	e.t.Cleanup(srv.Close)
	return s, eng, srv.URL + "/api/messages"
}

// send posts an activity with a valid token and expects 200.
func (e *env) send(act map[string]any) []byte {
	e.t.Helper()
	status, body := e.fake.Send(e.t, e.url, act)
	if status != http.StatusOK {
		e.t.Fatalf("POST /api/messages: %d %s", status, body)
	}
	return body
}

// invoke sends an Action.Execute click and decodes the invoke answer.
func (e *env) invoke(u teamsfake.User, c teamsfake.Conversation, replyTo, verb string, data map[string]any) invokeAnswer {
	e.t.Helper()
	body := e.send(e.fake.Execute(u, c, replyTo, verb, data))
	var a invokeAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		e.t.Fatalf("invoke answer %q: %v", body, err)
	}
	if a.StatusCode != 200 {
		e.t.Fatalf("invoke answer status %d", a.StatusCode)
	}
	return a
}

type invokeAnswer struct {
	StatusCode int             `json:"statusCode"`
	Type       string          `json:"type"`
	Value      json.RawMessage `json:"value"`
}

func (a invokeAnswer) card(t testing.TB) map[string]any {
	t.Helper()
	if a.Type != "application/vnd.microsoft.card.adaptive" {
		t.Fatalf("invoke answered %s %s, want a card", a.Type, a.Value)
	}
	var c map[string]any
	if err := json.Unmarshal(a.Value, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (a invokeAnswer) message(t testing.TB) string {
	t.Helper()
	var s string
	if a.Type != "application/vnd.microsoft.activity.message" || json.Unmarshal(a.Value, &s) != nil {
		t.Fatalf("invoke answered %s %s, want a message", a.Type, a.Value)
	}
	return s
}

// drain runs every job due at the current fake time.
func (e *env) drain() {
	e.t.Helper()
	for i := 0; i < 20; i++ {
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

func (e *env) requests(userID string) []*bot.Request {
	e.t.Helper()
	rs, err := e.store.ListByUser(e.ctx, userID, 100)
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

func (e *env) holds(userID, groupID string, access bot.Access) bool {
	e.t.Helper()
	hs, err := e.dir.Holders(e.ctx, groupID, access)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range hs {
		if h.ID == userID {
			return true
		}
	}
	return false
}

// lastTo is the latest activity the bot sent to a conversation.
func (e *env) lastTo(conv string) teamsfake.Activity {
	e.t.Helper()
	xs := e.fake.SentTo(conv)
	if len(xs) == 0 {
		e.t.Fatalf("nothing was sent to %s", conv)
	}
	return xs[len(xs)-1]
}

func mustContain(t testing.TB, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Fatalf("%s does not say %q:\n%s", what, w, text)
		}
	}
}

// inputIDs lists the ids of the card's inputs.
func inputIDs(card map[string]any) []string {
	var ids []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if t, _ := x["type"].(string); strings.HasPrefix(t, "Input.") {
				ids = append(ids, x["id"].(string))
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
	walk(card)
	return ids
}

// actions lists the verbs of the card's Action.Execute buttons.
func verbs(card map[string]any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "Action.Execute" {
				out = append(out, x["verb"].(string))
			}
			for k, y := range x {
				if k != "fallback" {
					walk(y)
				}
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(card)
	return out
}

func aliceActor() bot.Actor {
	return bot.Actor{User: bot.User{ID: aliceID, Email: "alice@example.com", Name: "Alice"}, Surface: "teams"}
}
