package slack

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// pendingProd is a pending prod-db-admins request by Alice with its approvers' message.
func (e *env) pendingProd() (*bot.Request, string) {
	e.t.Helper()
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "outage", Duration: time.Hour})
	return r, e.approvalPosted(approvals, r.ID)
}

func TestDecide_NonApproverIsToldPrivatelyAndNothingChanges(t *testing.T) {
	e := newEnv(t)
	r, ts := e.pendingProd()
	mark := e.fake.Mark()
	name := e.click("UMALLORY", actApprove, r.ID, approvals, ts)
	reply := e.waitResponse(name)
	if !strings.Contains(reply, `"response_type":"ephemeral"`) || !strings.Contains(reply, "can't approve") || !strings.Contains(reply, "bob@example.com") {
		t.Fatalf("the reply is not a private refusal naming the approvers: %s", reply)
	}
	if strings.Contains(reply, `"replace_original":true`) {
		t.Fatal("the refusal replaced the approvers' message")
	}
	e.drain()
	if got := e.get(r.ID); got.State != bot.StatePending || len(got.Approvals) != 0 {
		t.Fatalf("after a non-approver's click: %s with %d approvals", got.State, len(got.Approvals))
	}
	if n := len(e.fake.Since(mark, "chat.update")); n != 0 {
		t.Fatalf("the approvers' message changed (%d updates)", n)
	}
	// Deny by a non-approver: refused before any form opens.
	name = e.click("UMALLORY", actDeny, r.ID, approvals, ts)
	if reply := e.waitResponse(name); !strings.Contains(reply, "can't deny") {
		t.Fatalf("deny by a non-approver: %s", reply)
	}
	if n := len(e.fake.Since(mark, "views.open")); n != 0 {
		t.Fatal("a non-approver got the deny form")
	}
	// Someone Slack knows but the directory does not.
	name = e.click("USTRANGER", actApprove, r.ID, approvals, ts)
	if reply := e.waitResponse(name); !strings.Contains(reply, "matches no one in the directory") {
		t.Fatalf("stranger: %s", reply)
	}
	if e.get(r.ID).State != bot.StatePending {
		t.Fatal("a stranger's click changed the request")
	}
}

func TestDecide_SelfApprovalRefused(t *testing.T) {
	e := newEnv(t)
	r := e.submit("bob@example.com", bot.SubmitInput{Group: "selfish", Reason: "mine"})
	ts := e.approvalPosted(approvals, r.ID)
	name := e.click("UBOB", actApprove, r.ID, approvals, ts)
	if reply := e.waitResponse(name); !strings.Contains(reply, "your own request") {
		t.Fatalf("self-approval reply: %s", reply)
	}
	e.drain()
	if got := e.get(r.ID); got.State != bot.StatePending || len(got.Approvals) != 0 {
		t.Fatalf("self-approval changed the request: %s", got.State)
	}
	// Another approver can.
	e.click("UCAROL", actApprove, r.ID, approvals, ts)
	e.pump("Carol's approval", func() bool { return e.get(r.ID).State != bot.StatePending })
}

func TestDecide_DoubleClickChangesNothing(t *testing.T) {
	e := newEnv(t)
	r, ts := e.pendingProd()
	e.click("UBOB", actApprove, r.ID, approvals, ts)
	e.pump("approval", func() bool { return e.get(r.ID).State == bot.StateActive })
	before := e.get(r.ID)
	opsBefore := len(e.dir.Ops())
	for _, who := range []string{"UBOB", "UCAROL"} {
		name := e.click(who, actApprove, r.ID, approvals, ts)
		if reply := e.waitResponse(name); !strings.Contains(reply, "can no longer be approved") {
			t.Fatalf("second click by %s: %s", who, reply)
		}
	}
	name := e.click("UCAROL", actDeny, r.ID, approvals, ts)
	if reply := e.waitResponse(name); !strings.Contains(reply, "can no longer be denied") {
		t.Fatalf("deny after approval: %s", reply)
	}
	e.drain()
	after := e.get(r.ID)
	if after.Version != before.Version || len(after.Approvals) != 1 || len(e.dir.Ops()) != opsBefore {
		t.Fatalf("a click after the decision changed something: version %d→%d, approvals %d, directory ops %d→%d",
			before.Version, after.Version, len(after.Approvals), opsBefore, len(e.dir.Ops()))
	}
}

func TestDecide_DenyWithReason(t *testing.T) {
	e := newEnv(t)
	r, ts := e.pendingProd()
	mark := e.fake.Mark()
	e.click("UBOB", actDeny, r.ID, approvals, ts)
	open := e.fake.Wait(t, mark, "views.open", nil)
	if !strings.Contains(open.Raw, `"callback_id":"deny"`) || !strings.Contains(open.Raw, r.ID) {
		t.Fatalf("deny form: %s", open.Raw)
	}
	a := e.submitView("UBOB", openedView(open), map[string]any{"reason": "use the <!here> read replica"})
	if a.Status != 200 || a.Body != "" {
		t.Fatalf("deny submission: %d %s (want an empty 200 that closes the form)", a.Status, a.Body)
	}
	if got := e.get(r.ID); got.State != bot.StateDenied || got.DenyReason != "use the <!here> read replica" {
		t.Fatalf("after deny: %s %q", got.State, got.DenyReason)
	}
	e.waitDM("UALICE", "was denied by <@UBOB>", "use the &lt;!here&gt; read replica")
	c := e.waitCall(mark, "chat.update", func(c slackfake.Call) bool { return c.Get("ts") == ts })
	if !strings.Contains(c.Get("blocks"), "Denied") || strings.Contains(c.Get("blocks"), `"action_id"`) {
		t.Fatalf("the approvers' message after deny: %s", c.Get("blocks"))
	}
	// A deny reason over the limit is refused next to the field, and nothing changes.
	r2 := e.submit("alice@example.com", bot.SubmitInput{Group: "quorum", Reason: "x"})
	ts2 := e.approvalPosted(approvals, r2.ID)
	mark = e.fake.Mark()
	e.click("UBOB", actDeny, r2.ID, approvals, ts2)
	open = e.fake.Wait(t, mark, "views.open", nil)
	a = e.submitView("UBOB", openedView(open), map[string]any{"reason": strings.Repeat("no ", 400)})
	if !strings.Contains(a.Body, `"response_action":"errors"`) || !strings.Contains(a.Body, `"reason"`) {
		t.Fatalf("long reason: %s", a.Body)
	}
	if e.get(r2.ID).State != bot.StatePending {
		t.Fatal("a refused deny changed the request")
	}
}

func TestDecide_QuorumShowsProgress(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "quorum", Reason: "two keys"})
	ts := e.approvalPosted(approvals, r.ID)
	mark := e.fake.Mark()
	e.click("UBOB", actApprove, r.ID, approvals, ts)
	c := e.waitCall(mark, "chat.update", func(c slackfake.Call) bool { return c.Get("ts") == ts })
	if !strings.Contains(c.Get("blocks"), "1 of 2 approvals") || !strings.Contains(c.Get("blocks"), `"action_id":"approve"`) {
		t.Fatalf("after one of two approvals: %s", c.Get("blocks"))
	}
	e.waitDM("UALICE", "(1 of 2)")
	name := e.click("UBOB", actApprove, r.ID, approvals, ts)
	if reply := e.waitResponse(name); !strings.Contains(reply, "already approved") {
		t.Fatalf("Bob again: %s", reply)
	}
	mark = e.fake.Mark()
	e.click("UDAVE", actApprove, r.ID, approvals, ts)
	c = e.waitCall(mark, "chat.update", func(c slackfake.Call) bool {
		return c.Get("ts") == ts && strings.Contains(c.Get("blocks"), "Approved")
	})
	if strings.Contains(c.Get("blocks"), `"action_id":"approve"`) || !strings.Contains(c.Get("blocks"), "<@UDAVE>") {
		t.Fatalf("after the quorum: %s", c.Get("blocks"))
	}
}

// Without a Slack approval channel, each approver listed as a user gets a DM (found by
// e-mail), and every copy is updated when one of them decides.
func TestDecide_ApproversByDM(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "dm-approvers", Reason: "dm"})
	tsBob := e.approvalPosted("UBOB", r.ID)
	tsCarol := e.approvalPosted("UCAROL", r.ID)
	if len(e.dms("UALICE")) == 0 {
		e.waitDM("UALICE", "waiting for approval")
	}
	mark := e.fake.Mark()
	e.click("UCAROL", actApprove, r.ID, "DUCAROL", tsCarol)
	for ch, ts := range map[string]string{"DUBOB": tsBob, "DUCAROL": tsCarol} {
		c := e.waitCall(mark, "chat.update", func(c slackfake.Call) bool {
			return c.Get("channel") == ch && c.Get("ts") == ts && strings.Contains(c.Get("blocks"), "Approved")
		})
		if strings.Contains(c.Get("blocks"), `"action_id":"approve"`) {
			t.Fatalf("%s still has buttons", ch)
		}
	}
	if n := len(e.fake.Calls("users.lookupByEmail")); n == 0 {
		t.Fatal("approvers were not looked up by e-mail")
	}
}

// A notification that failed half-way is retried without posting twice.
func TestNotify_RetryDoesNotRepeat(t *testing.T) {
	e := newEnv(t)
	e.fake.Fail("chat.postMessage", "ratelimited")
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "retry"})
	e.drain() // the first post fails; the job is rescheduled
	e.clock.Advance(time.Minute)
	ts := e.approvalPosted(approvals, r.ID)
	e.waitDM("UALICE", "waiting for approval")
	e.clock.Advance(time.Hour)
	e.drain()
	posts := 0
	for _, c := range e.fake.Calls("chat.postMessage") {
		if c.Get("channel") == approvals && c.Error == "" {
			posts++
		}
	}
	if posts != 1 || len(e.dms("UALICE")) != 1 || ts == "" {
		t.Fatalf("approvers' messages %d, DMs to Alice %d; want 1 and 1", posts, len(e.dms("UALICE")))
	}
}
