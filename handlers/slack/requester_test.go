package slack

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// The 3-second rule: with a directory that takes a minute to answer, /activate is still
// acknowledged and views.open still reaches Slack while the trigger is valid (the fake
// refuses triggers older than 3 s); so is an Approve click. Nothing here measures time:
// a surface that waited on the directory first would not get there for a minute.
func TestThreeSecondRule_SlowDirectory(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "slow"})
	ts := e.approvalPosted(approvals, r.ID)
	e.dir.SetDelay(time.Minute)
	defer e.dir.SetDelay(0)

	a, _ := e.command("UCAROL", "") // Carol is not in the identity cache: the directory must be asked
	if a.Status != http.StatusOK {
		t.Fatalf("HTTP %d", a.Status)
	}
	open := e.fake.Wait(t, 0, "views.open", nil) // Wait accepts only a successful call: trigger still valid
	if !strings.Contains(open.Raw, "Looking up") {
		t.Fatalf("expected the loading view while the directory is slow: %s", open.Raw)
	}
	if len(e.fake.Calls("views.update")) != 0 {
		t.Fatal("the form was filled in although the directory has not answered")
	}

	e.click("UBOB", actApprove, r.ID, approvals, ts) // the click is acknowledged (click fails the test otherwise)
	if got := e.get(r.ID); got.State != bot.StatePending {
		t.Fatalf("state %s while the directory is still answering", got.State)
	}
}

func TestQuickForm(t *testing.T) {
	e := newEnv(t)
	a, name := e.command("UALICE", "prod-db-admins owner for 2h ticket INC-42 fixing the <!channel> outage")
	if a.Status != 200 || a.Body != "" {
		t.Fatalf("quick form answered %d %q", a.Status, a.Body)
	}
	reply := e.waitResponse(name)
	rs := e.requests("alice@example.com")
	if len(rs) != 1 {
		t.Fatalf("%d requests", len(rs))
	}
	r := rs[0]
	if r.Access != bot.Owner || r.Duration != 2*time.Hour || r.Ticket != "INC-42" || r.Reason != "fixing the <!channel> outage" || r.Surface != Name {
		t.Fatalf("request %+v", r)
	}
	if !strings.Contains(reply, r.ID) || !strings.Contains(reply, "waiting for approval") || !strings.Contains(reply, `"response_type":"ephemeral"`) {
		t.Fatalf("reply %s", reply)
	}
	// Refusals: the parser's at once, the engine's through the response_url; nothing is created.
	a, _ = e.command("UALICE", "prod-db-admins for 99x")
	if a.Status != 200 || !strings.Contains(a.Body, "ephemeral") || !strings.Contains(a.Body, "Usage") {
		t.Fatalf("bad duration: %d %s", a.Status, a.Body)
	}
	a, name = e.command("UALICE", "quorum for 20h because")
	if reply := e.waitResponse(name); !strings.Contains(reply, "20h is not allowed") {
		t.Fatalf("too long: %s", reply)
	}
	a, name = e.command("UALICE", "prod-db-admins owner for 1h again")
	if reply := e.waitResponse(name); !strings.Contains(reply, "already have request "+r.ID) {
		t.Fatalf("duplicate: %s", reply)
	}
	a, name = e.command("UALICE", "<!channel> now")
	if reply := e.waitResponse(name); strings.Contains(reply, "<!channel>") || !strings.Contains(reply, "&lt;!channel&gt;") {
		t.Fatalf("an unknown group name was echoed unescaped: %s", reply)
	}
	if n := len(e.requests("alice@example.com")); n != 1 {
		t.Fatalf("%d requests after refusals", n)
	}
	// help and status.
	a, _ = e.command("UALICE", "help")
	if !strings.Contains(a.Body, "/activate") || !strings.Contains(a.Body, "ephemeral") {
		t.Fatalf("help: %s", a.Body)
	}
	_, name = e.command("UALICE", "status")
	if reply := e.waitResponse(name); !strings.Contains(reply, r.ID) || !strings.Contains(reply, `"action_id":"cancel"`) {
		t.Fatalf("status: %s", reply)
	}
	// Someone whose Slack profile shows no e-mail gets a clear message.
	_, name = e.command("UNOMAIL", "status")
	if reply := e.waitResponse(name); !strings.Contains(reply, "no e-mail") {
		t.Fatalf("no e-mail: %s", reply)
	}
}

func TestDM_QueriesAndDedupe(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "sandbox", Duration: 10 * time.Minute})
	dm := func(id, text string) {
		t.Helper()
		if a := e.event(id, map[string]any{"type": "message", "channel_type": "im", "channel": "DUALICE", "user": "UALICE", "text": text, "ts": "1.0" + id}); a.Status != 200 {
			t.Fatalf("HTTP %d", a.Status)
		}
	}
	waitReply := func(mark int, contains string) slackfake.Call {
		t.Helper()
		return e.fake.Wait(t, mark, "chat.postMessage", func(c slackfake.Call) bool {
			return c.Get("channel") == "DUALICE" && strings.Contains(c.Get("text")+c.Get("blocks"), contains)
		})
	}
	mark := e.fake.Mark()
	dm("Ev01", "status")
	waitReply(mark, r.ID)
	dm("Ev02", "help")
	waitReply(mark, "/activate")
	dm("Ev03", "what can you do")
	waitReply(mark, "did not understand")
	// Slack retries an event it thinks was lost: the same event id is answered once.
	mark = e.fake.Mark()
	dm("Ev04", "my requests")
	dm("Ev04", "my requests")
	waitReply(mark, r.ID)
	dm("Ev05", "help") // a later event, to know the retry had its chance
	waitReply(mark, "/activate")
	replies := 0
	for _, c := range e.fake.Since(mark, "chat.postMessage") {
		if strings.Contains(c.Get("blocks"), r.ID) {
			replies++
		}
	}
	if replies != 1 {
		t.Fatalf("a retried event was answered %d times", replies)
	}
	// Bot messages (our own replies come back as message.im) are ignored.
	mark = e.fake.Mark()
	e.event("Ev06", map[string]any{"type": "message", "channel_type": "im", "channel": "DUALICE", "user": "UBOT", "bot_id": "BBOT", "text": "status", "ts": "2.0"})
	dm("Ev07", "help")
	waitReply(mark, "/activate")
	if n := len(e.fake.Since(mark, "chat.postMessage")); n != 1 {
		t.Fatalf("%d replies: the bot answered a bot message", n)
	}
	// The quick form in a DM.
	mark = e.fake.Mark()
	dm("Ev08", "activate ticketed for 30m ticket INC-7 Rotate Keys")
	waitReply(mark, "submitted")
	var got *bot.Request
	for _, x := range e.requests("alice@example.com") {
		if x.Group == "ticketed" {
			got = x
		}
	}
	if got == nil || got.Reason != "Rotate Keys" || got.Ticket != "INC-7" {
		t.Fatalf("quick form in a DM: %+v", got)
	}
}

func TestModal_RefusalsNextToTheField(t *testing.T) {
	e := newEnv(t)
	e.command("UALICE", "")
	form := openedView(e.fake.Wait(t, 0, "views.update", nil))
	cases := []struct {
		name  string
		set   map[string]any
		block string
		words string
	}{
		{"reason required", map[string]any{}, "reason", "A reason is needed"},
		{"ticket required", map[string]any{"group": "ticketed", "reason": "x"}, "group", ""},
		{"start in the past", map[string]any{"reason": "x", "start": e.clock.Now().Add(-time.Hour).Unix()}, "start", "in the past"},
		{"duration not offered", map[string]any{"reason": "x", "duration": "999999"}, "duration.prod-db-admins", "not allowed"},
		{"bad duration value", map[string]any{"reason": "x", "duration": "abc"}, "duration.prod-db-admins", "Choose a duration"},
		{"group not eligible", map[string]any{"reason": "x", "group": "selfish"}, "group", "not eligible"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.submitView("UALICE", form, c.set)
			if !strings.Contains(a.Body, `"response_action":"errors"`) || !strings.Contains(a.Body, `"`+c.block+`":`) || !strings.Contains(a.Body, c.words) {
				t.Fatalf("answer %s, want an error on %s saying %q", a.Body, c.block, c.words)
			}
		})
	}
	if n := len(e.requests("alice@example.com")); n != 0 {
		t.Fatalf("%d requests from refused forms", n)
	}
	// The ticketed form itself puts a missing ticket next to its field.
	e.s.eligible(e.ctx, e.user("alice@example.com"))
	tf := activateModal(activateForm{Groups: []*bot.Group{e.groupNamed("ticketed")}, Opened: e.clock.Now()})
	raw := e.viewJSON(tf)
	a := e.submitView("UALICE", raw, map[string]any{"reason": "x"})
	if !strings.Contains(a.Body, `"ticket":`) || !strings.Contains(a.Body, "A ticket number is needed") {
		t.Fatalf("missing ticket: %s", a.Body)
	}
	// A start left at the form's default means now, even after the form stayed open a while.
	e.clock.Advance(20 * time.Minute)
	a = e.submitView("UALICE", form, map[string]any{"reason": "late submit"})
	if !strings.Contains(a.Body, `"response_action":"update"`) {
		t.Fatalf("a form left open 20 minutes: %s", a.Body)
	}
	if rs := e.requests("alice@example.com"); len(rs) != 1 || !rs[0].Start.Equal(e.clock.Now()) {
		t.Fatalf("start %v, want now", rs[0].Start)
	}
}

func TestButtons_CancelDeactivateExtend(t *testing.T) {
	e := newEnv(t)
	// Cancel a pending request from its DM.
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "maybe"})
	e.waitDM("UALICE", "waiting for approval")
	e.click("UALICE", actCancel, r.ID, "DUALICE", "1.1")
	e.pump("cancel", func() bool { return e.get(r.ID).State == bot.StateCanceled })
	e.waitDM("UALICE", "was canceled")
	// Someone else's Cancel is refused.
	r2 := e.submit("alice@example.com", bot.SubmitInput{Group: "sandbox", Duration: 30 * time.Minute})
	e.pump("activation", func() bool { return e.get(r2.ID).State == bot.StateActive })
	name := e.click("UMALLORY", actDeactivate, r2.ID, general, "1.2")
	if reply := e.waitResponse(name); !strings.Contains(reply, "can't deactivate") {
		t.Fatalf("deactivate by another: %s", reply)
	}
	// Extend: the form, then the engine's answer.
	mark := e.fake.Mark()
	e.click("UALICE", actExtend, r2.ID, "DUALICE", "1.3")
	open := e.fake.Wait(t, mark, "views.open", nil)
	if !strings.Contains(open.Raw, `"callback_id":"extend"`) {
		t.Fatalf("extend form: %s", open.Raw)
	}
	a := e.submitView("UALICE", openedView(open), map[string]any{"duration": "99h"})
	if !strings.Contains(a.Body, `"duration":`) || !strings.Contains(a.Body, "at most") {
		t.Fatalf("extend too far: %s", a.Body)
	}
	a = e.submitView("UALICE", openedView(open), map[string]any{"duration": "1h"})
	if a.Body != "" {
		t.Fatalf("extend: %s", a.Body)
	}
	e.waitDM("UALICE", "now ends at")
	if got := e.get(r2.ID); got.EndsAt.Sub(got.ActivatedAt) != 90*time.Minute {
		t.Fatalf("ends %v after activation, want 1h30m", got.EndsAt.Sub(got.ActivatedAt))
	}
	// Deactivate now.
	e.click("UALICE", actDeactivate, r2.ID, "DUALICE", "1.4")
	e.pump("deactivation", func() bool { return e.get(r2.ID).State == bot.StateEnded })
	if e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatal("deactivated but still a member")
	}
	e.waitDM("UALICE", "has ended", "deactivated")
	// Extend after the end is refused privately, without a form.
	mark = e.fake.Mark()
	name = e.click("UALICE", actExtend, r2.ID, "DUALICE", "1.5")
	if reply := e.waitResponse(name); !strings.Contains(reply, "can no longer be extended") {
		t.Fatalf("extend after the end: %s", reply)
	}
	if len(e.fake.Since(mark, "views.open")) != 0 {
		t.Fatal("a form opened for an ended grant")
	}
}

// The extension form refuses "0m" and a negative length next to the field instead of taking
// it for the default, and extends nothing.
func TestExtendForm_RefusesZeroAndNegative(t *testing.T) {
	e := newEnv(t)
	r := e.activeSandbox()
	before := e.get(r.ID).EndsAt
	for _, typed := range []string{"0m", "-1h"} {
		a := e.submitView("UALICE", e.extendForm(r.ID), map[string]any{"duration": typed})
		if a.Status != http.StatusOK || !strings.Contains(a.Body, `"response_action":"errors"`) || !strings.Contains(a.Body, "extend by at least 1m") {
			t.Fatalf("%s: HTTP %d %s, want the refusal next to the duration", typed, a.Status, a.Body)
		}
	}
	if got := e.get(r.ID); !got.EndsAt.Equal(before) || len(got.Extensions) != 0 || e.extensions("alice@example.com") != 0 {
		t.Fatalf("a refused extension changed the grant: ends %v (was %v), %d extensions", got.EndsAt, before, len(got.Extensions))
	}
}
