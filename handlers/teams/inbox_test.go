package teams_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

func TestCard_Inbox(t *testing.T) {
	gs := testGroups(t)
	a, b := pending(gs[0]), pending(gs[2])
	b.ID, b.CreatedAt, b.Reason = "R2222222", now.Add(5*time.Minute), "key rotation"
	b.Approvals = []bot.Decision{{By: bot.User{ID: bobID, Email: "bob@example.com", Name: "Bob"}, At: now.Add(6 * time.Minute)}}
	acts := map[string][]bot.Action{a.ID: decide, b.ID: decide}
	golden(t, teams.InboxCard(view, []*bot.Request{a, b}, acts, ""))
}

// What people typed reaches the inbox card only as inert text.
func TestCard_InboxPeoplesTextIsInert(t *testing.T) {
	evil := "see [x](http://evil) **now** <at>Bob</at> {{DATE(2026-01-01T00:00:00Z)}}"
	r := pending(testGroups(t)[0])
	r.Reason, r.Ticket = evil, evil
	r.Requester.Name = "Mallory [click](http://evil) **boss**"
	assertInert(t, teams.InboxCard(view, []*bot.Request{r}, map[string][]bot.Action{r.ID: decide}, ""), evil)
}

// However many requests wait and however long what people typed, the inbox card stays
// within Teams' message limit, each reason input has its own id, and the rest are counted.
func TestCard_InboxStaysSmall(t *testing.T) {
	g := testGroups(t)[0]
	var rs []*bot.Request
	acts := map[string][]bot.Action{}
	for i := range 25 {
		r := pending(g)
		r.ID = fmt.Sprintf("R%07d", i+2)
		r.Reason = strings.Repeat("why? ", bot.MaxReasonLen/5)
		r.Requester.Name = strings.Repeat("N", 300)
		rs = append(rs, r)
		acts[r.ID] = decide
	}
	card := teams.InboxCard(view, rs, acts, "Request R0000001 approved.")
	b, err := json.Marshal(card)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 28<<10 {
		t.Fatalf("the card is %d bytes; Teams refuses messages over 28 KB", len(b))
	}
	ids := inputIDs(card)
	if len(ids) != 10 || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 10 {
		t.Fatalf("reason inputs %q: want 10, each its own", ids)
	}
	if !bytes.Contains(b, []byte("and 15 more")) {
		t.Fatal("the requests not shown are not counted")
	}
}

// buttonData is the data an Action.Execute button of the card sends for a request, with
// the card's inputs typed as given (Teams merges input values into the data).
func buttonData(t *testing.T, card map[string]any, verb, id string, typed map[string]any) map[string]any {
	t.Helper()
	var found map[string]any
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if d, _ := x["data"].(map[string]any); x["type"] == "Action.Execute" && x["verb"] == verb && d["requestId"] == id {
				found = d
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
	if found == nil {
		t.Fatalf("the card has no %s button for %s", verb, id)
	}
	out := map[string]any{}
	for k, v := range found {
		out[k] = v
	}
	for k, v := range typed {
		out[k] = v
	}
	return out
}

// itemActions are the engine's actions the inbox card's buttons stand for, for one request.
func itemActions(card map[string]any, id string) []bot.Action {
	var out []bot.Action
	body, _ := card["body"].([]any)
	for _, b := range body {
		c, _ := b.(map[string]any)
		if c["type"] == "Container" && strings.Contains(teamsfake.Strings(c["items"]), "\n"+id+"\n") {
			out = append(out, cardActions(c)...)
		}
	}
	return out
}

// An approver types pending in the personal chat and gets a card of what waits for their
// decision, each request with the buttons the engine offers them; a click decides it and
// the card comes back with what remains. Others see that nothing waits; a channel is told
// to ask in the personal chat.
func TestInbox_TeamsPendingCardDecides(t *testing.T) {
	e := newEnv(t)
	requester := aliceActor()
	carolActor := bot.Actor{User: bot.User{ID: carolID, Email: "carol@example.com", Name: "Carol"}, Surface: "teams"}
	var ids []string
	for _, in := range []bot.SubmitInput{
		{Group: "prod-db-admins", Access: bot.Member, Duration: time.Hour, Reason: "fixing the outage"},
		{Group: "prod-db-admins", Access: bot.Owner, Duration: time.Hour, Reason: "rotating keys", Ticket: "INC-42"},
	} {
		r, err := e.eng.Submit(e.ctx, requester, in)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
		e.clock.Advance(time.Minute)
	}
	e.drain()
	chat := e.fake.Personal(carol)
	e.send(e.fake.Message(carol, chat, "pending"))
	reply := e.lastTo(chat.ID)
	mustContain(t, "carol's inbox", reply.Text(), "Waiting for your approval (2)", "Alice (alice@example.com)", " asks for ",
		"member of prod-db-admins for 1h", "fixing the outage", "rotating keys", "INC-42", ids[0], ids[1])
	card := reply.Card()
	for _, id := range ids {
		offered := e.eng.Actions(e.ctx, carolActor, e.get(id))
		if shown := itemActions(card, id); !slices.Equal(shown, offered) || !slices.Contains(shown, bot.ActApprove) {
			t.Errorf("the inbox shows %v for %s; the engine offers %v", shown, id, offered)
		}
	}
	if text := reply.Text(); strings.Index(text, ids[0]) > strings.Index(text, ids[1]) {
		t.Fatalf("not oldest first:\n%s", text)
	}

	// Deny the first with a reason typed into its own input: the card comes back without it.
	data := buttonData(t, card, "deny", ids[0], map[string]any{"denyReason." + ids[0]: "use the replica"})
	after := e.invoke(carol, chat, reply.ActivityID, "deny", data).card(t)
	text := teamsfake.Strings(after)
	mustContain(t, "the inbox after a denial", text, "Request "+ids[0]+" denied.", "Waiting for your approval (1)", ids[1])
	if strings.Contains(strings.ReplaceAll(text, "Request "+ids[0]+" denied.", ""), ids[0]) {
		t.Fatalf("the denied request is still listed:\n%s", text)
	}
	if r := e.get(ids[0]); r.State != bot.StateDenied || r.DenyReason != "use the replica" {
		t.Fatalf("after the click: %s, reason %q", r.State, r.DenyReason)
	}
	after = e.invoke(carol, chat, reply.ActivityID, "approve", buttonData(t, after, "approve", ids[1], nil)).card(t)
	mustContain(t, "the inbox after an approval", teamsfake.Strings(after), "Request "+ids[1]+" approved.", "Nothing is waiting for your approval")
	if r := e.get(ids[1]); r.State == bot.StatePending {
		t.Fatal("the approval did not land")
	}

	// Someone who approves nothing, the requester, and a channel.
	for _, u := range []teamsfake.User{mallory, alice} {
		c := e.fake.Personal(u)
		e.send(e.fake.Message(u, c, "inbox"))
		mustContain(t, u.Name+"'s inbox", e.lastTo(c.ID).Text(), "Nothing is waiting for your approval")
	}
	channel := e.fake.Channel(approvals, teamID)
	e.send(e.fake.Message(carol, channel, "pending"))
	mustContain(t, "pending in a channel", e.lastTo(channel.ID).Text(), "personal chat")
}
