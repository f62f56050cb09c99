package slack

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// buttonAction maps a button back to the engine's action it stands for.
var buttonAction = map[string]bot.Action{
	actApprove: bot.ActApprove, actDeny: bot.ActDeny, actVerifyAgain: bot.ActVerify,
	actExtend: bot.ActExtend, actDeactivate: bot.ActDeactivate, actCancel: bot.ActCancel,
}

// shownActions reads, from a message's JSON (its blocks, or a whole response), the actions
// its buttons offer for one request.
func shownActions(t *testing.T, raw, id string) []bot.Action {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	var out []bot.Action
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			aid, _ := x["action_id"].(string)
			if act, ok := buttonAction[aid]; ok && x["value"] == id {
				out = append(out, act)
			}
			for _, k := range []string{"blocks", "elements"} { // in block order
				walk(x[k])
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(v)
	return out
}

// dmBlocks is the blocks of a DM as waitDM gives it (its text, a newline, its blocks).
func dmBlocks(dm string) string { return dm[strings.LastIndex(dm, "\n[")+1:] }

// blocksOf is the blocks of the last message posted to channel that names the request.
func (e *env) blocksOf(channel, id string) string {
	e.t.Helper()
	calls := e.fake.Calls("chat.postMessage")
	for i := len(calls) - 1; i >= 0; i-- {
		if c := calls[i]; c.Get("channel") == channel && c.Error == "" && strings.Contains(c.Get("blocks"), `"value":"`+id+`"`) {
			return c.Get("blocks")
		}
	}
	e.t.Fatalf("no message to %s names %s", channel, id)
	return ""
}

// Slack shows the buttons the engine offers, nothing else: in the approvers' message, the
// requester's direct messages, and the status list, for requests in several states.
func TestActions_SlackShowsWhatTheEngineOffers(t *testing.T) {
	e := newEnvPolicy(t, policyWith(mfaGroup, ""))
	e.eng.SetMFA(&verifier{bound: map[string]string{}})
	alice := bot.Actor{User: e.user("alice@example.com"), Surface: Name}
	bob := bot.Actor{User: e.user("bob@example.com"), Surface: Name}
	carol := bot.Actor{User: e.user("carol@example.com"), Surface: Name}
	same := func(what string, shown, offered []bot.Action) {
		t.Helper()
		if !slices.Equal(shown, offered) {
			t.Errorf("%s shows %v; the engine offers %v", what, shown, offered)
		}
	}

	// Pending: the approvers' channel message offers what an approver who is not the requester is offered.
	pending := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "outage"})
	e.approvalPosted(approvals, pending.ID)
	decide := e.eng.Actions(e.ctx, carol, e.get(pending.ID))
	same("the approvers' message", shownActions(t, e.blocksOf(approvals, pending.ID), pending.ID), decide)
	same("the requester's DM of a pending request", shownActions(t, dmBlocks(e.waitDM("UALICE", "waiting for approval", pending.ID)), pending.ID),
		e.eng.Actions(e.ctx, alice, e.get(pending.ID)))

	// Waiting for MFA.
	verifying := e.submit("alice@example.com", bot.SubmitInput{Group: "secure", Reason: "keys"})
	same("the MFA DM", shownActions(t, dmBlocks(e.waitDM("UALICE", "needs MFA", verifying.ID)), verifying.ID),
		e.eng.Actions(e.ctx, alice, e.get(verifying.ID)))

	// Scheduled: approved, starting in two hours.
	scheduled := e.submit("alice@example.com", bot.SubmitInput{Group: "ticketed", Reason: "later", Ticket: "INC-1", Start: e.clock.Now().Add(2 * time.Hour)})
	if _, err := e.eng.Approve(e.ctx, bob, scheduled.ID); err != nil {
		t.Fatal(err)
	}
	same("the DM of an approved request", shownActions(t, dmBlocks(e.waitDM("UALICE", "was approved", scheduled.ID)), scheduled.ID),
		e.eng.Actions(e.ctx, alice, e.get(scheduled.ID)))

	// Active.
	active := e.submit("alice@example.com", bot.SubmitInput{Group: "sandbox", Duration: 30 * time.Minute})
	same("the DM of an active grant", shownActions(t, dmBlocks(e.waitDM("UALICE", "You are now", active.ID)), active.ID),
		e.eng.Actions(e.ctx, alice, e.get(active.ID)))

	// Active, being deactivated by an approver (its removal has not run yet).
	ending := e.submit("alice@example.com", bot.SubmitInput{Group: "dm-approvers", Reason: "short"})
	if _, err := e.eng.Approve(e.ctx, bob, ending.ID); err != nil {
		t.Fatal(err)
	}
	e.pump("activation", func() bool { return e.get(ending.ID).State == bot.StateActive })
	e.drain()
	if _, err := e.eng.Deactivate(e.ctx, carol, ending.ID); err != nil {
		t.Fatal(err)
	}

	// The status list, for each request as it stands now.
	_, name := e.command("UALICE", "status")
	reply := e.waitResponse(name)
	rs := e.requests("alice@example.com")
	if len(rs) != 5 {
		t.Fatalf("%d requests", len(rs))
	}
	offeredSomething := 0
	for _, r := range rs {
		offered := e.eng.Actions(e.ctx, alice, r)
		if len(offered) > 0 {
			offeredSomething++
		}
		same("the status list for "+string(r.State)+" "+r.Group, shownActions(t, reply, r.ID), offered)
	}
	if offeredSomething != 4 || !e.get(ending.ID).Ending() {
		t.Fatalf("the states did not come out as meant: %d requests offer something", offeredSomething)
	}
}
