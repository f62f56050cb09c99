package teams_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
	"github.com/pimbot/pimbot/internal/fuzzkit"
)

// Fuzzing of POST /api/messages with a valid Bot Framework token: whatever the activity,
// the answer is 200 (an invoke's answer holds a card or a non-empty message), or a 4xx with
// words; never a 5xx, except the 501 the Bot Framework expects for an invoke the bot does
// not implement; no panic; and nothing the bot posts back is refused by the connector for
// its size or shape.
//
// Seeds (here and in testdata/fuzz/<Target>/) may hold placeholders replaced at each
// execution: {{serviceUrl}} (the fake connector, which the token names), {{id}} (a fresh
// activity id, so that redelivery detection does not drop the mutations), {{pending}} (a
// request of alice waiting for bob or carol) and {{active}} (an active grant of alice).

type teamsRig struct {
	e       *env
	h       http.Handler
	token   string
	pending string
	active  string
	logs    *fuzzkit.Tap
	seq     int
}

func newTeamsRig(tb testing.TB) *teamsRig {
	fuzzkit.BoundMinimization()
	e := newEnv(tb)
	logs := fuzzkit.NewTap("MessageSizeTooBig", "BadSyntax", "Unknown activity type", "encode:")
	// The surface under test logs to logs; it shares the engine and Redis of env.
	getenv := func(k string) string {
		return map[string]string{
			"MICROSOFT_APP_ID": appID, "MICROSOFT_APP_PASSWORD": appSecret, "MICROSOFT_APP_TENANT_ID": tenantID,
			"BOTFRAMEWORK_OPENID_METADATA_URL": e.fake.MetadataURL(), "BOTFRAMEWORK_TOKEN_URL": e.fake.TokenURL(),
		}[k]
	}
	st, _, err := teams.SettingsFromEnv(getenv)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := st.Build(e.eng, e.store, slog.New(logs))
	if err != nil {
		tb.Fatal(err)
	}
	e.fake.Personal(alice)
	e.fake.Personal(bob)
	e.fake.Channel(approvals, teamID)
	pending, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "fuzz"})
	if err != nil {
		tb.Fatal(err)
	}
	active, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "sandbox", Duration: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	e.drain()
	if r := e.get(active.ID); r.State != bot.StateActive {
		tb.Fatalf("the sandbox grant is %s, want active", r.State)
	}
	return &teamsRig{e: e, h: s, token: e.fake.Token(e.fake.Claims(e.fake.ServiceURL())),
		pending: pending.ID, active: active.ID, logs: logs}
}

func (r *teamsRig) fill(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	r.seq++
	return strings.NewReplacer("{{serviceUrl}}", r.e.fake.ServiceURL(), "{{id}}", fmt.Sprintf("f:fuzz%d", r.seq),
		"{{pending}}", r.pending, "{{active}}", r.active).Replace(s)
}

// exchange posts an activity body with a valid token and checks the answer.
func (r *teamsRig) exchange(t *testing.T, body []byte) (int, string) {
	req := httptest.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.token)
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req) // in this goroutine: a panic fails the execution
	code, answer := rec.Code, rec.Body.String()
	if refused := r.logs.Take(); len(refused) > 0 {
		t.Fatalf("the connector refused what pimbot sent: %s", strings.Join(refused, "\n"))
	}
	var act struct{ Type, Name string }
	_ = json.Unmarshal(body, &act)
	switch {
	case code == http.StatusNotImplemented && act.Type == "invoke" && act.Name != "adaptiveCard/action":
		// The Bot Framework's answer to an invoke a bot does not handle.
	case code >= 500:
		t.Fatalf("HTTP %d for an authenticated activity: %q", code, answer)
	case code >= 400:
		if strings.TrimSpace(answer) == "" {
			t.Fatalf("HTTP %d without a word of why", code)
		}
	case code != http.StatusOK:
		t.Fatalf("HTTP %d %q, want 200", code, answer)
	case act.Type == "invoke" && act.Name == "adaptiveCard/action":
		var inv struct {
			StatusCode int             `json:"statusCode"`
			Type       string          `json:"type"`
			Value      json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal([]byte(answer), &inv); err != nil || inv.StatusCode != 200 {
			t.Fatalf("the invoke answer %q is not an invoke response (%v)", answer, err)
		}
		switch inv.Type {
		case "application/vnd.microsoft.activity.message":
			var msg string
			if json.Unmarshal(inv.Value, &msg) != nil || strings.TrimSpace(msg) == "" {
				t.Fatalf("an empty message to the person who clicked: %s", answer)
			}
		case "application/vnd.microsoft.card.adaptive":
			var card map[string]any
			if json.Unmarshal(inv.Value, &card) != nil || card["type"] != "AdaptiveCard" {
				t.Fatalf("the answer card is not an Adaptive Card: %.2000s", answer)
			}
			if b, _ := json.Marshal(card); len(b) > teamsfake.MaxMessage {
				t.Fatalf("the answer card is %d bytes, over Teams' %d", len(b), teamsfake.MaxMessage)
			}
		default:
			t.Fatalf("an invoke answer of type %q", inv.Type)
		}
	}
	return code, answer
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// seedActivity makes a fake activity into a seed: live values become placeholders.
func seedActivity(f *teamsfake.Fake, act map[string]any) string {
	act["serviceUrl"] = "{{serviceUrl}}"
	act["id"] = "{{id}}"
	return strings.ReplaceAll(mustJSON(act), f.ServiceURL(), "{{serviceUrl}}")
}

// Whole activities as Teams posts them: messages (commands), invokes, installs, anything.
func FuzzTeamsActivity(f *testing.F) {
	r := newTeamsRig(f)
	fk := r.e.fake
	chat, bobChat := fk.Personal(alice), fk.Personal(bob)
	channel := teamsfake.Conversation{ID: approvals, Type: "channel", ChannelID: approvals, TeamID: teamID}
	for _, text := range []string{"help", "activate", "activate help", "activate status", "status", "status {{pending}}", "groups",
		"activate sandbox for 30m testing", "activate prod-db-admins for -1h", "activate prod-db-admins for 9999h x",
		"activate prod-db-admins owner for 90m at 14:30 ticket INC-1 " + strings.Repeat("**markdown** [x](http://evil) ", 300),
		"cancel", "cancel {{pending}}", "deactivate {{active}}", "extend {{active}} for 30m more", "extend {{active}} for -1h",
		"approve", "approve R0000000", "deny {{pending}} no", "channel", "hello", "<at>pimbot</at> help", "&nbsp;&lt;at&gt;", ""} {
		f.Add(seedActivity(fk, fk.Message(alice, chat, text)))
	}
	f.Add(seedActivity(fk, fk.Message(bob, bobChat, "approve {{pending}}")))
	f.Add(seedActivity(fk, fk.Message(mallory, channel, "approve {{pending}}")))
	f.Add(seedActivity(fk, fk.Message(stranger, chat, "status")))
	f.Add(seedActivity(fk, fk.Message(teamsfake.User{TeamsID: "29:1nobody", Name: "No Object Id"}, chat, "status")))
	f.Add(seedActivity(fk, fk.Execute(bob, channel, "1", "approve", map[string]any{"verb": "approve", "requestId": "{{pending}}"})))
	f.Add(seedActivity(fk, fk.Execute(alice, chat, "1", "form", map[string]any{"verb": "form"})))
	f.Add(seedActivity(fk, fk.InstallPersonal(alice, chat)))
	f.Add(seedActivity(fk, fk.InstallTeam(bob, teamID)))
	inv := fk.Activity("invoke", alice, chat)
	inv["name"] = "composeExtension/query"
	f.Add(seedActivity(fk, inv))
	other := fk.Message(alice, chat, "help")
	other["channelData"] = map[string]any{"tenant": map[string]any{"id": "00000000-0000-4000-8000-00000000beef"}}
	f.Add(seedActivity(fk, other))
	f.Add(seedActivity(fk, fk.Activity("typing", alice, chat)))
	f.Add(seedActivity(fk, fk.Activity("messageReaction", alice, chat)))
	f.Add(`{"type":"message","serviceUrl":"{{serviceUrl}}","channelId":"msteams","text":"help"}`)
	f.Add(`{"type":"message","serviceUrl":"https://evil.example/","channelId":"msteams","text":"help"}`)
	f.Add(`{"type":"message","serviceUrl":"{{serviceUrl}}","channelId":"webchat","text":"help"}`)
	f.Add(`{"type":""}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, body string) {
		r.exchange(t, []byte(r.fill(body)))
	})
}

// The value of a card button: Action.Execute's data (an invoke) and Action.Submit's value (a
// message, from hosts without Universal Actions), with approve, deny, cancel, deactivate,
// extend, form and the form's submit, from a person who may or may not decide.
func FuzzTeamsCardAction(f *testing.F) {
	r := newTeamsRig(f)
	fk := r.e.fake
	for _, v := range []map[string]any{
		{"verb": "approve", "requestId": "{{pending}}"},
		{"verb": "deny", "requestId": "{{pending}}", "denyReason": "not now"},
		{"verb": "deny", "requestId": "{{pending}}", "denyReason": strings.Repeat("<b>no</b> ", 1200)},
		{"verb": "cancel", "requestId": "{{pending}}"},
		{"verb": "deactivate", "requestId": "{{active}}"},
		{"verb": "extend", "requestId": "{{active}}"},
		{"verb": "approve", "requestId": "R0000000"},
		{"verb": "approve", "requestId": 42},
		{"verb": "form"},
		{"verb": "submit", "group": "prod-db-admins", "access": "member", "duration": "2h", "reason": "fixing the outage"},
		{"verb": "submit", "group": "prod-db-admins", "access": "owner", "duration": "90m", "startDate": "2026-11-28", "startTime": "14:30", "reason": "x", "ticket": "INC-1"},
		{"verb": "submit", "group": "sandbox", "duration": "0s"},
		{"verb": "submit", "group": "sandbox", "duration": "-1h", "startDate": "1999-13-45", "startTime": "25:61"},
		{"verb": "submit", "group": "nope", "access": "root"},
		{"verb": "submit"},
		{"verb": "no-such-verb"},
		{},
	} {
		for _, as := range []string{"alice", "bob", "mallory"} {
			f.Add(as, true, mustJSON(v))
		}
		f.Add("alice", false, mustJSON(v))
	}
	f.Add("bob", true, `"approve"`)
	f.Add("bob", false, `[1,2,3]`)
	f.Add("carol", true, `{"verb":{"nested":true},"requestId":["{{pending}}"]}`)
	people := map[string]teamsfake.User{"alice": alice, "bob": bob, "carol": carol, "mallory": mallory, "stranger": stranger}
	f.Fuzz(func(t *testing.T, who string, invoke bool, value string) {
		value = r.fill(value)
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			return // FuzzTeamsActivity feeds malformed JSON
		}
		u, ok := people[who]
		if !ok {
			u = teamsfake.User{TeamsID: "29:1" + who, AadObjectID: who, Name: who}
		}
		chat := teamsfake.Conversation{ID: "a:1personal-" + u.TeamsID, Type: "personal"}
		var act map[string]any
		if invoke {
			act = fk.Execute(u, chat, "1", "", nil)
			data, _ := v.(map[string]any)
			verb, _ := data["verb"].(string)
			act["value"] = map[string]any{"action": map[string]any{"type": "Action.Execute", "verb": verb, "data": v}, "trigger": "manual"}
		} else {
			act = fk.Submit(u, chat, "1", nil)
			act["value"] = v
		}
		r.exchange(t, []byte(mustJSON(act)))
	})
}

// The fuzz rig reaches the engine: a seed's token and placeholders get an activity past
// authentication to a reply, and a click to a decision (else the fuzzing would only ever
// exercise the decoders).
func TestTeamsRig_SeedsReachTheEngine(t *testing.T) {
	r := newTeamsRig(t)
	fk := r.e.fake
	chat := fk.Personal(alice)
	before := len(fk.SentTo(chat.ID))
	if code, body := r.exchange(t, []byte(r.fill(seedActivity(fk, fk.Message(alice, chat, "status {{pending}}"))))); code != 200 {
		t.Fatalf("message: %d %q", code, body)
	}
	sent := fk.SentTo(chat.ID)
	if len(sent) != before+1 || !strings.Contains(sent[len(sent)-1].Text(), r.pending) {
		t.Fatalf("the status command was not answered with request %s", r.pending)
	}
	channel := teamsfake.Conversation{ID: approvals, Type: "channel", ChannelID: approvals, TeamID: teamID}
	click := seedActivity(fk, fk.Execute(bob, channel, "1", "approve", map[string]any{"verb": "approve", "requestId": "{{pending}}"}))
	if code, body := r.exchange(t, []byte(r.fill(click))); code != 200 || !strings.Contains(body, "AdaptiveCard") {
		t.Fatalf("approve: %d %q", code, body)
	}
	if st := r.e.get(r.pending).State; st == bot.StatePending {
		t.Fatalf("bob's approval of %s did not land", r.pending)
	}
}
