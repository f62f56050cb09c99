package slack

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/handlers/slack/slackfake"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// runSocket connects the surface over Socket Mode to the fake and returns the runner's result channel.
func (e *env) runSocket(appToken string) (<-chan error, context.CancelFunc) {
	api := slack.New(testToken, slack.OptionAPIURL(e.fake.URL()), slack.OptionAppLevelToken(appToken))
	client := socketmode.New(api, socketmode.OptionLog(log.New(io.Discard, "", 0)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() { done <- e.s.SocketMode(client)(ctx); close(stopped) }()
	e.t.Cleanup(func() { cancel(); <-stopped })
	return done, cancel
}

func (e *env) ack(envelope string) map[string]any {
	e.t.Helper()
	c := e.fake.Wait(e.t, 0, "socket.ack", func(c slackfake.Call) bool { return c.JSON["envelope_id"] == envelope })
	p, _ := c.JSON["payload"].(map[string]any)
	return p
}

// Socket Mode feeds the same code as HTTP: commands, interactions and events, each acked,
// with the answer in the ack when there is one.
func TestSocketMode_SameCodeAsHTTP(t *testing.T) {
	e := newEnv(t)
	e.fake.AppToken = "xapp-1-test"
	done, _ := e.runSocket("xapp-1-test")
	e.fake.WaitSocket(t)

	cmd := func(text string) string {
		return e.fake.SendEnvelope(t, "slash_commands", map[string]any{
			"token": "x", "team_id": "T0TEST", "channel_id": general, "user_id": "UALICE", "user_name": "alice",
			"command": "/activate", "text": text, "response_url": e.fake.ResponseURL("sock-" + text), "trigger_id": e.fake.Trigger(),
		})
	}
	if p := e.ack(cmd("")); p != nil {
		t.Fatalf("/activate ack carried %v; want an empty ack", p)
	}
	form := openedView(e.fake.Wait(t, 0, "views.update", func(c slackfake.Call) bool { return strings.Contains(c.Raw, `"callback_id":"activate"`) }))
	if p := e.ack(cmd("help")); p == nil || !strings.Contains(p["text"].(string), "/activate") {
		t.Fatalf("help ack: %v", p)
	}
	// A view submission is answered in its ack: the refusal next to the field.
	env := e.fake.SendEnvelope(t, "interactive", e.submissionPayload("UALICE", form, map[string]any{}))
	p := e.ack(env)
	errs, _ := p["errors"].(map[string]any)
	if p["response_action"] != "errors" || errs["reason"] == nil {
		t.Fatalf("submission without reason: ack %v", p)
	}
	env = e.fake.SendEnvelope(t, "interactive", e.submissionPayload("UALICE", form, map[string]any{"reason": "over the socket"}))
	if p := e.ack(env); p["response_action"] != "update" {
		t.Fatalf("submission: ack %v", p)
	}
	rs := e.requests("alice@example.com")
	if len(rs) != 1 || rs[0].Reason != "over the socket" {
		t.Fatalf("requests %v", rs)
	}
	ts := e.approvalPosted(approvals, rs[0].ID)
	click, _ := e.clickPayload("UBOB", actApprove, rs[0].ID, approvals, ts)
	e.ack(e.fake.SendEnvelope(t, "interactive", click))
	e.pump("approval over the socket", func() bool { return e.get(rs[0].ID).Version > rs[0].Version && len(e.get(rs[0].ID).Approvals) == 1 })
	// An event: acked, deduplicated, answered.
	ev, _ := json.Marshal(map[string]any{"token": "x", "team_id": "T0TEST", "type": "event_callback", "event_id": "Ev0SOCK",
		"event": map[string]any{"type": "message", "channel_type": "im", "channel": "DUALICE", "user": "UALICE", "text": "status", "ts": "3.0"}})
	var raw json.RawMessage = ev
	mark := e.fake.Mark()
	e.ack(e.fake.SendEnvelope(t, "events_api", raw))
	e.fake.Wait(t, mark, "chat.postMessage", func(c slackfake.Call) bool { return c.Get("channel") == "DUALICE" })

	select {
	case err := <-done:
		t.Fatalf("the runner stopped: %v", err)
	default:
	}
}

func TestSocketMode_RefusedTokenStopsTheRunner(t *testing.T) {
	e := newEnv(t)
	e.fake.AppToken = "xapp-1-right"
	done, _ := e.runSocket("xapp-1-wrong")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "invalid_auth") {
			t.Fatalf("runner returned %v, want invalid_auth", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the runner kept going with a refused token")
	}
}
