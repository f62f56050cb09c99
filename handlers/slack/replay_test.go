package slack

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// captured is a request exactly as Slack signed and sent it: sending it again is what
// someone who captured it can do within the 5 minutes the signature stays valid.
type captured struct {
	path, body string
	headers    map[string]string
}

// capture signs body once, now, as Slack does.
func (e *env) capture(path, body string) captured {
	ts := time.Now().Unix()
	return captured{path: path, body: body, headers: map[string]string{
		"X-Slack-Request-Timestamp": strconv.FormatInt(ts, 10),
		"X-Slack-Signature":         sign(testSecret, ts, body),
	}}
}

// send posts the captured request, byte for byte, with its original signature.
func (e *env) send(c captured) answer {
	e.t.Helper()
	return e.postRaw(c.path, form, c.body, c.headers)
}

func (e *env) interactionBody(payload map[string]any) string {
	e.t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		e.t.Fatal(err)
	}
	return url.Values{"payload": {string(b)}}.Encode()
}

// activeSandbox gives Alice an active sandbox grant of 30 minutes.
func (e *env) activeSandbox() *bot.Request {
	e.t.Helper()
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "sandbox", Duration: 30 * time.Minute})
	e.pump("activation", func() bool { return e.get(r.ID).State == bot.StateActive })
	return r
}

// extendForm clicks Extend on a grant of Alice's and returns the modal Slack opened.
func (e *env) extendForm(id string) map[string]any {
	e.t.Helper()
	mark := e.fake.Mark()
	e.click("UALICE", actExtend, id, "DUALICE", "1.1")
	open := e.fake.Wait(e.t, mark, "views.open", func(c slackfake.Call) bool { return strings.Contains(c.Raw, `"callback_id":"extend"`) })
	return openedView(open)
}

func (e *env) extensions(email string) int {
	e.t.Helper()
	n := 0
	for _, r := range e.requests(email) {
		if r.Kind == bot.KindExtend {
			n++
		}
	}
	return n
}

// Given an active grant and Alice's extension submitted once, when the identical signed
// submission is sent again within the signature's window, then it is acknowledged and
// nothing more happens: the grant is extended once, by one extension request. A genuine
// second extension (a new form, the same values) still works.
func TestReplay_ExtendSubmissionAppliedOnce(t *testing.T) {
	e := newEnv(t)
	r := e.activeSandbox()
	sub := e.capture("/slack/interactions", e.interactionBody(e.submissionPayload("UALICE", e.extendForm(r.ID), map[string]any{"duration": "1h"})))

	if a := e.send(sub); a.Status != http.StatusOK || a.Body != "" {
		t.Fatalf("extension: HTTP %d %q, want an empty 200 (the modal closes)", a.Status, a.Body)
	}
	if got := e.get(r.ID); got.EndsAt.Sub(got.ActivatedAt) != 90*time.Minute {
		t.Fatalf("after the extension the grant lasts %v, want 1h30m", got.EndsAt.Sub(got.ActivatedAt))
	}
	if a := e.send(sub); a.Status != http.StatusOK || a.Body != "" {
		t.Fatalf("replay: HTTP %d %q, want an empty 200 (acknowledged, nothing done)", a.Status, a.Body)
	}
	got := e.get(r.ID)
	if d := got.EndsAt.Sub(got.ActivatedAt); d != 90*time.Minute || len(got.Extensions) != 1 {
		t.Fatalf("after a replay the grant lasts %v with %d extensions, want 1h30m and 1", d, len(got.Extensions))
	}
	if n := e.extensions("alice@example.com"); n != 1 {
		t.Fatalf("%d extension requests, want 1", n)
	}

	// A genuine second extension by the same person, with the same values, moments later.
	if a := e.submitView("UALICE", e.extendForm(r.ID), map[string]any{"duration": "1h"}); a.Status != http.StatusOK || a.Body != "" {
		t.Fatalf("second extension: HTTP %d %q", a.Status, a.Body)
	}
	got = e.get(r.ID)
	if d := got.EndsAt.Sub(got.ActivatedAt); d != 150*time.Minute || len(got.Extensions) != 2 {
		t.Fatalf("after a genuine second extension the grant lasts %v with %d extensions, want 2h30m and 2", d, len(got.Extensions))
	}
}

// Given Alice's quick /activate, granted and then given up (deactivated), when the
// captured command is sent again within the window, then it is acknowledged and submits
// nothing: a replay must not give back access its owner gave up. The same command typed
// again by Alice is a new invocation and works.
func TestReplay_SlashCommandSubmitsOnce(t *testing.T) {
	// One worker: work is done in the order it was queued, so once the genuine command
	// below was answered, anything the replay queued has run too.
	e := newEnv(t, func(o *Options) { o.Workers = 1 })
	body, name := e.commandBody("UALICE", "sandbox for 1h testing replays")
	cmd := e.capture("/slack/commands", body)

	if a := e.send(cmd); a.Status != http.StatusOK || a.Body != "" {
		t.Fatalf("/activate: HTTP %d %q", a.Status, a.Body)
	}
	if reply := e.waitResponse(name); !strings.Contains(reply, "submitted") {
		t.Fatalf("/activate answered %s", reply)
	}
	rs := e.requests("alice@example.com")
	if len(rs) != 1 {
		t.Fatalf("%d requests, want 1", len(rs))
	}
	first := rs[0]
	e.pump("activation", func() bool { return e.get(first.ID).State == bot.StateActive })
	e.click("UALICE", actDeactivate, first.ID, "DUALICE", "1.2")
	e.pump("deactivation", func() bool { return e.get(first.ID).State == bot.StateEnded })

	if a := e.send(cmd); a.Status != http.StatusOK || a.Body != "" {
		t.Fatalf("replay: HTTP %d %q, want an empty 200", a.Status, a.Body)
	}
	again, againName := e.command("UALICE", "sandbox for 1h testing replays")
	if again.Status != http.StatusOK {
		t.Fatalf("the same command typed again: HTTP %d %q", again.Status, again.Body)
	}
	reply := e.waitResponse(againName)
	if n := len(e.requests("alice@example.com")); n != 2 {
		t.Fatalf("%d requests, want 2: the first and the one typed again, none from the replay", n)
	}
	if n := len(e.responses(name)); n != 1 {
		t.Fatalf("the replayed command was answered %d times through its response_url, want once", n)
	}
	if !strings.Contains(reply, "submitted") {
		t.Fatalf("the same command typed again answered %s", reply)
	}
}

// Over Socket Mode a request is not signed, but Slack sends an envelope again when it
// thinks the ack was lost: the same payload under a new envelope id. Both are acked; the
// extension is applied once.
func TestReplay_SocketModeRetryActsOnce(t *testing.T) {
	e := newEnv(t)
	e.fake.AppToken = "xapp-1-test"
	e.runSocket("xapp-1-test")
	e.fake.WaitSocket(t)
	r := e.activeSandbox()
	payload := e.submissionPayload("UALICE", e.extendForm(r.ID), map[string]any{"duration": "1h"})

	first := e.fake.SendEnvelope(t, "interactive", payload)
	e.ack(first)
	retry := e.fake.SendEnvelope(t, "interactive", payload)
	if p := e.ack(retry); p != nil {
		t.Fatalf("the retried envelope's ack carried %v; want an empty ack", p)
	}
	got := e.get(r.ID)
	if d := got.EndsAt.Sub(got.ActivatedAt); d != 90*time.Minute || len(got.Extensions) != 1 {
		t.Fatalf("after a retried envelope the grant lasts %v with %d extensions, want 1h30m and 1", d, len(got.Extensions))
	}
	if n := e.extensions("alice@example.com"); n != 1 {
		t.Fatalf("%d extension requests, want 1", n)
	}
}

// A replayed click queues its work once: the person is answered once, not once per copy.
func TestReplay_ClickActsOnce(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Workers = 1 })
	r := e.activeSandbox()
	p, name := e.clickPayload("UMALLORY", actDeactivate, r.ID, general, "1.3")
	click := e.capture("/slack/interactions", e.interactionBody(p))
	for i := 0; i < 2; i++ {
		if a := e.send(click); a.Status != http.StatusOK || a.Body != "" {
			t.Fatalf("click %d: HTTP %d %q", i+1, a.Status, a.Body)
		}
	}
	// A genuine click by someone else afterwards; with one worker, its answer comes after
	// anything the copies queued.
	later := e.click("UCAROL", actDeactivate, r.ID, general, "1.4")
	e.waitResponse(later)
	if got := e.responses(name); len(got) != 1 || !strings.Contains(got[0], "can't deactivate") {
		t.Fatalf("the click was answered %d times (%v), want once with the refusal", len(got), got)
	}
	if e.get(r.ID).State != bot.StateActive {
		t.Fatal("a refused click ended the grant")
	}
}
