package slack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

func TestGolden_Inbox(t *testing.T) {
	a := pendingRequest()
	b := pendingRequest()
	b.ID, b.Group, b.GroupID, b.CreatedAt, b.ApprovalsRequired = "R2222222", "quorum", "g-quorum", t0.Add(5*time.Minute), 2
	b.Approvals = []bot.Decision{{By: bob, At: t0.Add(6 * time.Minute)}}
	decide := []bot.Action{bot.ActApprove, bot.ActDeny}
	in := inbox{Requests: []*bot.Request{a, b}, Actions: map[string][]bot.Action{a.ID: decide, b.ID: decide}}
	golden(t, map[string]any{
		"message":          inboxMessage(in, "", t0.Add(10*time.Minute), time.UTC),
		"after a click":    inboxMessage(inbox{}, decidedNote(&bot.Request{ID: a.ID, State: bot.StateScheduled}), t0.Add(10*time.Minute), time.UTC),
		"home section":     homeInboxBlocks(in, t0.Add(10*time.Minute), time.UTC),
		"home, unreadable": homeInboxBlocks(inbox{Problem: "Something went wrong"}, t0, time.UTC),
	})
}

// However many requests wait, the message and the App Home stay within Slack's block limits
// and count what they leave out; with nothing waiting the Home has no such section.
func TestInbox_ListsStayWithinSlackLimits(t *testing.T) {
	var in inbox
	in.Actions = map[string][]bot.Action{}
	for i := range 60 {
		r := pendingRequest()
		r.ID = fmt.Sprintf("R%07d", i+2)
		in.Requests = append(in.Requests, r)
		in.Actions[r.ID] = []bot.Action{bot.ActApprove, bot.ActDeny}
	}
	m := inboxMessage(in, "a note", t0, time.UTC)
	if len(m.Blocks) > 50 || !strings.Contains(blocksText(t, m.Blocks), "and 40 more") {
		t.Fatalf("the message has %d blocks (Slack allows 50) or does not count the rest", len(m.Blocks))
	}
	home := homeInboxBlocks(in, t0, time.UTC)
	if len(home) != 13 || !strings.Contains(blocksText(t, home), "and 55 more") {
		t.Fatalf("the Home section has %d blocks, want 13 (the Home's budget), counting the rest", len(home))
	}
	if b := homeInboxBlocks(inbox{}, t0, time.UTC); b != nil {
		t.Fatalf("with nothing waiting the Home shows %d blocks", len(b))
	}
}

func blocksText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// inboxRequests are the two pending prod-db-admins requests of Alice, a minute apart.
func (e *env) inboxRequests() []string {
	e.t.Helper()
	var ids []string
	for _, in := range []bot.SubmitInput{
		{Group: "prod-db-admins", Access: bot.Member, Reason: "fixing the outage", Duration: time.Hour},
		{Group: "prod-db-admins", Access: bot.Owner, Reason: "rotating keys", Duration: time.Hour},
	} {
		ids = append(ids, e.submit("alice@example.com", in).ID)
		e.clock.Advance(time.Minute)
	}
	e.drain()
	return ids
}

// An approver's /activate pending answers privately with what waits for them, oldest first,
// with the buttons the engine offers; Approve on it decides the request and redraws the
// message without it. Someone who approves nothing is told nothing waits.
func TestInbox_SlashPendingListsAndApproveDecides(t *testing.T) {
	e := newEnv(t)
	ids := e.inboxRequests()
	carolActor := bot.Actor{User: e.user("carol@example.com"), Surface: Name}

	a, name := e.command("UCAROL", "pending")
	if a.Status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.Status, a.Body)
	}
	reply := e.waitResponse(name)
	for _, want := range []string{`"response_type":"ephemeral"`, "Waiting for your approval (2)", "*Alice* (alice@example.com) asks for *member of prod-db-admins for 1h*",
		"fixing the outage", "rotating keys", `"block_id":"inbox:` + ids[0] + `"`} {
		if !strings.Contains(reply, want) {
			t.Fatalf("the answer does not hold %q:\n%s", want, reply)
		}
	}
	if strings.Index(reply, "`"+ids[0]+"`") > strings.Index(reply, "`"+ids[1]+"`") {
		t.Fatalf("not oldest first:\n%s", reply)
	}
	for _, id := range ids {
		offered := e.eng.Actions(e.ctx, carolActor, e.get(id))
		if shown := shownActions(t, reply, id); !slices.Equal(shown, offered) || !slices.Contains(shown, bot.ActApprove) {
			t.Errorf("the inbox shows %v for %s; the engine offers %v", shown, id, offered)
		}
	}

	// Approve on the inbox message: the existing handler decides, and the message is redrawn.
	mark := e.fake.Mark()
	p, click := e.clickPayload("UCAROL", actApprove, ids[0], general, "1700000000.000100")
	p["actions"].([]any)[0].(map[string]any)["block_id"] = blockInbox + ids[0]
	p["container"].(map[string]any)["is_ephemeral"] = true
	if a := e.interact(p); a.Status != http.StatusOK {
		t.Fatalf("click: HTTP %d %s", a.Status, a.Body)
	}
	redrawn := e.fake.Wait(t, mark, "response", func(c slackfake.Call) bool { return c.Path == click }).Raw
	for _, want := range []string{`"replace_original":true`, "Request `" + ids[0] + "` approved.", "Waiting for your approval (1)", ids[1]} {
		if !strings.Contains(redrawn, want) {
			t.Fatalf("the redrawn inbox does not hold %q:\n%s", want, redrawn)
		}
	}
	if shownActions(t, redrawn, ids[0]) != nil {
		t.Fatalf("the decided request still has buttons:\n%s", redrawn)
	}
	if r := e.get(ids[0]); r.State == bot.StatePending || !r.ApprovedBy(carolActor.User.ID) {
		t.Fatalf("after Carol's click: %s", r.State)
	}

	_, name = e.command("UMALLORY", "inbox")
	if reply := e.waitResponse(name); !strings.Contains(reply, "Nothing is waiting for your approval.") {
		t.Fatalf("mallory's inbox: %s", reply)
	}
	_, name = e.command("UALICE", "pending")
	if reply := e.waitResponse(name); !strings.Contains(reply, "Nothing is waiting for your approval.") {
		t.Fatalf("the requester's inbox: %s", reply)
	}
	if a, _ := e.command("UCAROL", "help"); !strings.Contains(a.Body, "/activate pending") {
		t.Fatalf("the help does not name /activate pending: %s", a.Body)
	}
}

// pending in the DM with the bot answers there.
func TestInbox_PendingInTheDM(t *testing.T) {
	e := newEnv(t)
	ids := e.inboxRequests()
	e.seq++
	e.event(fmt.Sprintf("EvDM%d", e.seq), map[string]any{
		"type": "message", "channel": "DUBOB", "channel_type": "im", "user": "UBOB", "text": "pending", "ts": "1.1", "event_ts": "1.1"})
	var got string
	e.pump("the inbox in Bob's DM", func() bool {
		for _, c := range e.fake.Calls("chat.postMessage") {
			if c.Get("channel") == "DUBOB" && strings.Contains(c.Get("text"), "Waiting for your approval (2)") {
				got = c.Get("blocks")
				return true
			}
		}
		return false
	})
	bobActor := bot.Actor{User: e.user("bob@example.com"), Surface: Name}
	for _, id := range ids {
		if shown, offered := shownActions(t, got, id), e.eng.Actions(e.ctx, bobActor, e.get(id)); !slices.Equal(shown, offered) {
			t.Errorf("the DM shows %v for %s; the engine offers %v", shown, id, offered)
		}
	}
}

// The App Home of an approver shows what waits for them, with the same buttons, only while
// something waits; a decision taken there redraws it.
func TestInbox_HomeShowsWhatWaitsOnlyWhenSomethingDoes(t *testing.T) {
	e := newEnv(t)
	waiting := func(c slackfake.Call) bool { return strings.Contains(c.Raw+c.Get("view"), "Waiting for your approval") }
	e.openHome("UCAROL")
	if hs := e.homes(0, "UCAROL"); waiting(hs[len(hs)-1]) {
		t.Fatal("the Home shows a waiting section with nothing waiting")
	}
	ids := e.inboxRequests()
	mark := e.fake.Mark()
	e.openHome("UCAROL")
	hs := e.homes(mark, "UCAROL")
	home := hs[len(hs)-1]
	if !waiting(home) {
		t.Fatalf("the Home does not show what waits:\n%s", home.Get("view"))
	}
	view := home.Get("view")
	carolActor := bot.Actor{User: e.user("carol@example.com"), Surface: Name}
	for _, id := range ids {
		if shown, offered := shownActions(t, view, id), e.eng.Actions(e.ctx, carolActor, e.get(id)); !slices.Equal(shown, offered) {
			t.Errorf("the Home shows %v for %s; the engine offers %v", shown, id, offered)
		}
	}
	e.openHome("UMALLORY")
	if hs := e.homes(0, "UMALLORY"); waiting(hs[len(hs)-1]) {
		t.Fatal("the Home of someone who approves nothing shows a waiting section")
	}

	// Carol approves both from her Home (no response_url there): it is redrawn without them.
	for _, id := range ids {
		mark = e.fake.Mark()
		p, _ := e.clickPayload("UCAROL", actApprove, id, "", "")
		p["actions"].([]any)[0].(map[string]any)["block_id"] = blockInbox + id
		delete(p, "channel")
		delete(p, "response_url")
		p["container"] = map[string]any{"type": "view", "view_id": "VHOME"}
		if a := e.interact(p); a.Status != http.StatusOK {
			t.Fatalf("click: HTTP %d %s", a.Status, a.Body)
		}
		e.pump("the approval of "+id, func() bool { return e.get(id).State != bot.StatePending })
		e.pump("a redrawn Home", func() bool { return len(e.homes(mark, "UCAROL")) > 0 })
		e.homeIdle("UCAROL")
	}
	hs = e.homes(mark, "UCAROL")
	if last := hs[len(hs)-1]; waiting(last) || last.Error != "" {
		t.Fatalf("with nothing left the Home still shows a waiting section (error %q)", last.Error)
	}
}
