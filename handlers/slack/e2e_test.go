package slack

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// The whole flow of the issue, over HTTP with signed requests: slash command → views.open →
// view submission → approver message → Approve click → directory add → chat.update →
// requester DM → expiry → DM.
func TestEndToEnd_ActivateApproveExpire(t *testing.T) {
	e := newEnv(t)

	// /activate: an empty ack, then the form (cold cache: a loading view first, then the form).
	a, _ := e.command("UALICE", "")
	if a.Status != http.StatusOK || a.Body != "" {
		t.Fatalf("/activate answered %d %q, want an empty 200", a.Status, a.Body)
	}
	opened := e.fake.Wait(t, 0, "views.open", nil)
	formCall := e.fake.Wait(t, 0, "views.update", func(c slackfake.Call) bool {
		return strings.Contains(c.Raw, `"callback_id":"activate"`)
	})
	if c := openedView(formCall); c["id"] != opened.Response["view"].(map[string]any)["id"] {
		t.Fatalf("views.update went to view %v, not the one opened", c["id"])
	}
	form := openedView(formCall)
	for _, want := range []string{"prod-db-admins", "quorum", "dm-approvers", "sandbox", "ticketed", `"action_id":"start"`, `"action_id":"reason"`} {
		if !strings.Contains(formCall.Raw, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
	if strings.Contains(formCall.Raw, "selfish") {
		t.Error("the form offers a group Alice is not eligible for")
	}

	// Submit: prod-db-admins (the first group), member, 2h, with a reason that tries to ping.
	reason := "fixing the outage <!channel> <@U123> & co"
	a = e.submitView("UALICE", form, map[string]any{"duration": "7200", "reason": reason})
	if a.Status != http.StatusOK || !strings.Contains(a.Body, `"response_action":"update"`) {
		t.Fatalf("submission answered %d %s", a.Status, a.Body)
	}
	rs := e.requests("alice@example.com")
	if len(rs) != 1 {
		t.Fatalf("%d requests, want 1", len(rs))
	}
	r := rs[0]
	if r.State != bot.StatePending || r.Duration != 2*time.Hour || r.Reason != reason || r.Access != bot.Member || r.Surface != Name {
		t.Fatalf("request %+v", r)
	}
	if !strings.Contains(a.Body, r.ID) {
		t.Fatalf("the confirmation does not name request %s: %s", r.ID, a.Body)
	}

	// The approvers' message in the approval channel, with the reason made inert.
	ts := e.approvalPosted(approvals, r.ID)
	post := e.fake.Calls("chat.postMessage")
	var approval slackfake.Call
	for _, c := range post {
		if c.Get("channel") == approvals {
			approval = c
		}
	}
	for _, want := range []string{`"action_id":"approve"`, `"action_id":"deny"`, "2h", "member", "prod-db-admins", "&lt;!channel&gt;", "&lt;@U123&gt;", "&amp; co", "<@UALICE>"} {
		if !strings.Contains(approval.Get("blocks"), want) {
			t.Errorf("the approvers' message lacks %s: %s", want, approval.Get("blocks"))
		}
	}
	for _, raw := range []string{"<!channel>", "<@U123>"} {
		if strings.Contains(approval.Get("blocks"), raw) || strings.Contains(approval.Get("text"), raw) {
			t.Errorf("%s reached Slack unescaped", raw)
		}
	}
	// The requester hears that it waits for approval, with a Cancel button.
	e.waitDM("UALICE", "waiting for approval", `"action_id":"cancel"`, r.ID)

	// Bob approves from the channel.
	mark := e.fake.Mark()
	e.click("UBOB", actApprove, r.ID, approvals, ts)
	e.pump("activation", func() bool { return e.get(r.ID).State == bot.StateActive })
	if !e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatal("approved and active, but the directory does not hold Alice")
	}
	// The approvers' message is updated in place: no buttons, who decided.
	e.waitCall(mark, "chat.update", func(c slackfake.Call) bool {
		return c.Get("ts") == ts && strings.Contains(c.Get("blocks"), "Active")
	})
	m, _ := e.fake.Message(approvals, ts)
	if strings.Contains(m.Blocks, `"action_id":"approve"`) || !strings.Contains(m.Blocks, "<@UBOB>") {
		t.Fatalf("after approval the message still has buttons or does not say who: %s", m.Blocks)
	}
	e.waitDM("UALICE", "approved by <@UBOB>")
	dm := e.waitDM("UALICE", "You are now", "sign out and in", `"action_id":"deactivate"`, `"action_id":"extend"`)
	if strings.Contains(dm, `"action_id":"cancel"`) {
		t.Fatalf("the active DM offers Cancel: %s", dm)
	}
	if n := len(e.fake.Since(mark, "response")); n != 0 {
		t.Fatalf("Bob was told something privately (%d replies), though his approval worked", n)
	}

	// Two hours later the grant ends on its own, and Alice hears it.
	e.clock.Advance(2 * time.Hour)
	e.drain()
	e.pump("the end", func() bool { return e.get(r.ID).State == bot.StateEnded })
	if e.holds("alice@example.com", "g-prod", bot.Member) {
		t.Fatal("the grant outlived its window")
	}
	e.waitDM("UALICE", "has ended", "expired")
	e.waitCall(mark, "chat.update", func(c slackfake.Call) bool {
		return c.Get("ts") == ts && strings.Contains(c.Get("blocks"), "Ended")
	})
}

// A form whose answer comes from the cache opens directly, with the group preselected from
// the App Home; changing the group redraws the form for that group's policy.
func TestForm_WarmCacheAndGroupChange(t *testing.T) {
	e := newEnv(t)
	// App Home opened: identity and eligibility are resolved and cached.
	e.event("Ev0HOME1", map[string]any{"type": "app_home_opened", "user": "UALICE", "channel": "D0ALICE", "tab": "home", "event_ts": "1.1"})
	home := e.fake.Wait(t, 0, "views.publish", nil)
	for _, want := range []string{`"action_id":"home_activate"`, `"value":"ticketed"`, "Your requests", "no approval needed"} {
		if !strings.Contains(home.Raw, want) {
			t.Errorf("App Home lacks %s", want)
		}
	}
	mark := e.fake.Mark()
	p, _ := e.clickPayload("UALICE", actHomeActivate, "ticketed", "", "")
	delete(p, "channel")
	delete(p, "response_url")
	p["container"] = map[string]any{"type": "view", "view_id": "VHOME"}
	if a := e.interact(p); a.Status != http.StatusOK {
		t.Fatalf("HTTP %d", a.Status)
	}
	open := e.fake.Wait(t, mark, "views.open", nil)
	if !strings.Contains(open.Raw, `"callback_id":"activate"`) || !strings.Contains(open.Raw, `"block_id":"ticket"`) {
		t.Fatalf("with a warm cache the form opens directly, ticketed preselected with its ticket field: %s", open.Raw)
	}
	if n := len(e.fake.Since(mark, "views.update")); n != 0 {
		t.Fatalf("%d views.update after a warm open", n)
	}
	// Switch to prod-db-admins: access choice appears, ticket goes.
	view := openedView(open)
	gp, _ := e.clickPayload("UALICE", actGroup, "", "", "")
	delete(gp, "channel")
	delete(gp, "response_url")
	gp["container"] = map[string]any{"type": "view", "view_id": view["id"]}
	gp["view"] = view
	gp["actions"] = []any{map[string]any{"action_id": "group", "block_id": "group", "type": "static_select",
		"selected_option": map[string]any{"value": "prod-db-admins", "text": map[string]any{"type": "plain_text", "text": "prod-db-admins"}}}}
	mark = e.fake.Mark()
	if a := e.interact(gp); a.Status != http.StatusOK {
		t.Fatalf("HTTP %d", a.Status)
	}
	up := e.fake.Wait(t, mark, "views.update", nil)
	if up.JSON["view_id"] != view["id"] || up.JSON["hash"] != view["hash"] {
		t.Fatalf("views.update must name the view and its hash: %v %v", up.JSON["view_id"], up.JSON["hash"])
	}
	if !strings.Contains(up.Raw, `"block_id":"access.prod-db-admins"`) || strings.Contains(up.Raw, `"block_id":"ticket"`) {
		t.Fatalf("the redrawn form does not follow prod-db-admins' policy: %s", up.Raw)
	}
}
