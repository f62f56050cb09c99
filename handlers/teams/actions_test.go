package teams_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// cardActions are the engine's actions a card's buttons stand for, in the card's order.
func cardActions(card map[string]any) []bot.Action {
	var out []bot.Action
	for _, v := range verbs(card) {
		if act := bot.Action(v); slices.Contains([]bot.Action{bot.ActApprove, bot.ActDeny, bot.ActVerify, bot.ActExtend, bot.ActDeactivate, bot.ActRevoke, bot.ActLooksGood, bot.ActCancel}, act) {
			out = append(out, act)
		}
	}
	return out
}

// requestActions are the engine's actions that the buttons of one request's own container
// stand for (the status card, the answer to an action), in the card's order; each button
// must be for that request, and the container must be there.
func requestActions(t *testing.T, card map[string]any, id string) []bot.Action {
	t.Helper()
	found := false
	var out []bot.Action
	var buttons, walk func(any)
	buttons = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "Action.Execute" {
				if d, _ := x["data"].(map[string]any); d["requestId"] != id {
					t.Fatalf("the container of %s has a button for %v", id, d["requestId"])
				}
				out = append(out, bot.Action(x["verb"].(string)))
			}
			for k, y := range x {
				if k != "fallback" {
					buttons(y)
				}
			}
		case []any:
			for _, y := range x {
				buttons(y)
			}
		}
	}
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "Container" && strings.Contains(teamsfake.Strings(x["items"]), "Request "+id+"\n") {
				found = true
				buttons(x["items"])
				return
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
	if !found {
		t.Fatalf("the card has no container for request %s: %s", id, teamsfake.Strings(card))
	}
	return out
}

// Teams shows the buttons the engine offers, nothing else: on the reply to a request, the
// approvers' card, the requester's notices, each request of the status list, and the answer
// to an action.
func TestActions_TeamsShowsWhatTheEngineOffers(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	say := func(text string) teamsfake.Activity {
		t.Helper()
		e.send(e.fake.Message(alice, chat, text))
		return e.lastTo(chat.ID)
	}
	a := aliceActor()
	approver := bot.Actor{User: bot.User{ID: carolID, Email: "carol@example.com", Name: "Carol"}, Surface: "teams"}
	same := func(what string, shown, offered []bot.Action) {
		t.Helper()
		if !slices.Equal(shown, offered) {
			t.Errorf("%s shows %v; the engine offers %v", what, shown, offered)
		}
	}

	// Pending: the reply to the requester, and the approvers' card in the channel.
	submitted := func(reply teamsfake.Activity) *bot.Request {
		t.Helper()
		m := regexp.MustCompile(`Request ([A-Z0-9]{8}) submitted`).FindStringSubmatch(reply.Text())
		if m == nil {
			t.Fatalf("not submitted: %s", reply.Text())
		}
		return e.get(m[1])
	}
	reply := say("activate prod-db-admins for 1h fixing the outage")
	pending := submitted(reply)
	same("the reply to a pending request", cardActions(reply.Card()), e.eng.Actions(e.ctx, a, pending))
	e.drain()
	same("the approvers' card", cardActions(e.lastTo(approvals).Card()), e.eng.Actions(e.ctx, approver, e.get(pending.ID)))

	// Active: the requester's notice.
	active := submitted(say("activate sandbox for 30m"))
	e.drain()
	var notice teamsfake.Activity
	for _, x := range e.fake.SentTo(chat.ID) {
		if strings.Contains(x.Text(), "Request "+active.ID+" is active") {
			notice = x
		}
	}
	if notice.Body == nil {
		t.Fatal("no notice that the grant is active")
	}
	same("the notice of an active grant", cardActions(notice.Card()), e.eng.Actions(e.ctx, a, e.get(active.ID)))

	// The status list, before and after the grant is deactivated (its removal not yet run).
	status := func(when string) {
		t.Helper()
		card := say("status").Card()
		for _, r := range e.requests(aliceID) {
			same(when+": the status of "+r.Group+" ("+string(r.State)+")", requestActions(t, card, r.ID), e.eng.Actions(e.ctx, a, r))
		}
	}
	status("active")
	result := say("deactivate " + active.ID)
	same("the result of deactivating", requestActions(t, result.Card(), active.ID), e.eng.Actions(e.ctx, a, e.get(active.ID)))
	if !e.get(active.ID).Ending() {
		t.Fatal("the grant is not being removed")
	}
	status("being removed")
}
