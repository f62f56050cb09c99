package slack

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// openHome sends app_home_opened for a Slack user and waits until their Home was published
// and no redraw of it is queued or running.
func (e *env) openHome(slackID string) {
	e.t.Helper()
	e.seq++
	mark := e.fake.Mark()
	e.event(fmt.Sprintf("EvHOME%d", e.seq), map[string]any{
		"type": "app_home_opened", "user": slackID, "channel": "D" + slackID, "tab": "home", "event_ts": "1.1"})
	e.fake.Wait(e.t, mark, "views.publish", func(c slackfake.Call) bool { return c.Get("user_id") == slackID })
	e.homeIdle(slackID)
}

// homeIdle waits until no App Home redraw of a Slack user is queued or running.
func (e *env) homeIdle(slackID string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.s.homes.Lock()
		_, busy := e.s.homes.m[slackID]
		e.s.homes.Unlock()
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the App Home of %s is still being redrawn after 10 s", slackID)
		}
		time.Sleep(5 * time.Millisecond) // polling interval; the deadline bounds the wait
	}
}

// homes are the views.publish calls for a Slack user after mark (failed ones included).
func (e *env) homes(mark int, slackID string) []slackfake.Call {
	var out []slackfake.Call
	for _, c := range e.fake.Since(mark, "views.publish") {
		if c.Get("user_id") == slackID {
			out = append(out, c)
		}
	}
	return out
}

// homeRequest finds a request in a published Home: the text of its line and the action ids
// of its buttons. ok is false when the Home does not list it among the open requests.
func homeRequest(c slackfake.Call, id string) (line string, actions []string, ok bool) {
	v, _ := c.JSON["view"].(map[string]any)
	blocks, _ := v["blocks"].([]any)
	for _, b := range blocks {
		bm, _ := b.(map[string]any)
		switch bm["type"] {
		case "section":
			t, _ := bm["text"].(map[string]any)
			if s, _ := t["text"].(string); strings.Contains(s, "`"+id+"`") {
				line, ok = s, true
			}
		case "actions":
			if bm["block_id"] != "request:"+id {
				continue
			}
			els, _ := bm["elements"].([]any)
			for _, el := range els {
				em, _ := el.(map[string]any)
				if a, _ := em["action_id"].(string); a != "" && em["value"] == id {
					actions = append(actions, a)
				}
			}
		}
	}
	return line, actions, ok
}

// waitHome runs due jobs until the last successful Home published for slackID after mark
// shows request id in the given state, then until no redraw is pending, and returns the
// last Home published.
func (e *env) waitHome(mark int, slackID, id string, state bot.State) slackfake.Call {
	e.t.Helper()
	shows := func(c slackfake.Call) bool {
		line, _, ok := homeRequest(c, id)
		return ok && strings.Contains(line, state.Label())
	}
	e.pump(fmt.Sprintf("the Home of %s to show %s as %s", slackID, id, state.Label()), func() bool {
		hs := e.homes(mark, slackID)
		return len(hs) > 0 && hs[len(hs)-1].Error == "" && shows(hs[len(hs)-1])
	})
	e.homeIdle(slackID)
	hs := e.homes(mark, slackID)
	last := hs[len(hs)-1]
	if last.Error != "" || !shows(last) {
		line, _, _ := homeRequest(last, id)
		e.t.Fatalf("a later Home of %s replaced it (error %q): %q", slackID, last.Error, line)
	}
	return last
}

// A person who opened the Home sees it follow their request without reopening it: pending
// with Cancel after the submission, then active with Extend and Deactivate once approved
// and started.
func TestHome_FollowsTheRequestOfSomeoneWhoOpenedIt(t *testing.T) {
	e := newEnv(t)
	e.openHome("UALICE")

	mark := e.fake.Mark()
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "outage", Duration: time.Hour})
	home := e.waitHome(mark, "UALICE", r.ID, bot.StatePending)
	if _, acts, _ := homeRequest(home, r.ID); strings.Join(acts, ",") != actCancel {
		t.Fatalf("the pending request's buttons in the Home: %v, want [%s]", acts, actCancel)
	}

	ts := e.approvalPosted(approvals, r.ID)
	mark = e.fake.Mark()
	e.click("UBOB", actApprove, r.ID, approvals, ts)
	e.pump("the activation", func() bool { return e.get(r.ID).State == bot.StateActive })
	home = e.waitHome(mark, "UALICE", r.ID, bot.StateActive)
	line, acts, _ := homeRequest(home, r.ID)
	if strings.Join(acts, ",") != actExtend+","+actDeactivate {
		t.Fatalf("the active request's buttons in the Home: %v, want [%s %s]", acts, actExtend, actDeactivate)
	}
	if !strings.Contains(line, "until") || !strings.Contains(line, "prod-db-admins") {
		t.Fatalf("the active request's line in the Home: %q", line)
	}
	// The Home was redrawn by the events, not by reopening it, and only Alice's.
	for _, c := range e.fake.Since(0, "views.publish") {
		if c.Get("user_id") != "UALICE" {
			t.Fatalf("views.publish for %s, who never opened the Home", c.Get("user_id"))
		}
	}
}

// Someone who never opened the Home gets no views.publish however their request moves;
// once they open it, the next change redraws it. Drift findings about them do not.
func TestHome_NotPublishedForSomeoneWhoNeverOpenedIt(t *testing.T) {
	e := newEnv(t)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "sandbox", Duration: time.Hour})
	e.pump("the activation", func() bool { return e.get(r.ID).State == bot.StateActive })
	e.waitDM("UALICE", r.ID)
	e.drain()
	e.homeIdle("UALICE")
	if hs := e.homes(0, "UALICE"); len(hs) != 0 {
		t.Fatalf("%d views.publish for Alice, who never opened the Home", len(hs))
	}

	// Control: she opens it; ending the grant redraws it.
	e.openHome("UALICE")
	mark := e.fake.Mark()
	if _, err := e.eng.Deactivate(e.ctx, e.s.actor(e.user("alice@example.com")), r.ID); err != nil {
		t.Fatal(err)
	}
	e.pump("the end", func() bool { return e.get(r.ID).State.Terminal() })
	e.pump("a redrawn Home", func() bool { return len(e.homes(mark, "UALICE")) > 0 })
	e.homeIdle("UALICE")
	last := e.homes(mark, "UALICE")
	if _, _, open := homeRequest(last[len(last)-1], r.ID); open || last[len(last)-1].Error != "" {
		t.Fatalf("after the end the Home still lists %s among the open requests (error %q)", r.ID, last[len(last)-1].Error)
	}

	// A drift finding names Alice as the holder; it is not her request: no redraw.
	if err := e.dir.Add(e.ctx, "g-prod", e.user("alice@example.com").ID, bot.Member); err != nil {
		t.Fatal(err)
	}
	mark = e.fake.Mark()
	found, err := e.eng.Reconcile(e.ctx, e.dir)
	if err != nil || len(found) != 1 {
		t.Fatalf("reconcile: %d findings, %v; want 1", len(found), err)
	}
	e.drain()
	e.fake.Wait(t, mark, "chat.postMessage", func(c slackfake.Call) bool { return c.Get("channel") == approvals })
	e.homeIdle("UALICE")
	if hs := e.homes(mark, "UALICE"); len(hs) != 0 {
		t.Fatalf("a drift finding redrew Alice's Home (%d views.publish)", len(hs))
	}
}

// A failing views.publish (even a retryable one) fails no notification: no retry is
// scheduled, the DM goes out once, and a later delivery of the same event redraws the Home
// without a second DM.
func TestHome_PublishFailureDoesNotFailTheNotification(t *testing.T) {
	e := newEnv(t)
	e.openHome("UALICE")

	e.fake.Fail("views.publish", "ratelimited")
	mark := e.fake.Mark()
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "outage", Duration: time.Hour})
	e.drain()
	e.homeIdle("UALICE")
	hs := e.homes(mark, "UALICE")
	if len(hs) != 1 || hs[0].Error != "ratelimited" {
		t.Fatalf("views.publish calls for Alice after the submission: %d (want 1 that failed): %+v", len(hs), hs)
	}
	next, err := e.store.NextDue(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if retryAt := e.clock.Now().Add(bot.Backoff(1)); !next.IsZero() && !next.After(retryAt) {
		t.Fatalf("a job is due at %s, by %s: the notification was scheduled for a retry", next, retryAt)
	}
	pending := func() int {
		n := 0
		for _, d := range e.dms("UALICE") {
			if strings.Contains(d, r.ID) {
				n++
			}
		}
		return n
	}
	if n := pending(); n != 1 {
		t.Fatalf("%d DMs about %s, want 1", n, r.ID)
	}

	// The same event delivered again (as a retry caused by another step would): no second
	// DM, and the Home is drawn this time.
	mark = e.fake.Mark()
	if err := e.s.Notify(e.ctx, bot.Event{Type: bot.EvSubmitted, Request: e.get(r.ID), At: e.clock.Now()}); err != nil {
		t.Fatalf("Notify again: %v", err)
	}
	e.waitHome(mark, "UALICE", r.ID, bot.StatePending)
	if n := pending(); n != 1 {
		t.Fatalf("%d DMs about %s after a second delivery, want 1", n, r.ID)
	}
}

// Redraws of one Home are coalesced and ordered: while one is being published, any number
// of changes make exactly one more, drawn after them, so the older view is never the last.
func TestHome_RedrawsCoalesceAndTheLastOneIsTheNewest(t *testing.T) {
	e := newEnv(t)
	e.openHome("UALICE")

	entered, release := make(chan struct{}), make(chan struct{})
	var once, unblock sync.Once
	t.Cleanup(func() { unblock.Do(func() { close(release) }) })
	e.fake.OnCall(func(c slackfake.Call) {
		if c.Method == "views.publish" {
			once.Do(func() { close(entered); <-release })
		}
	})
	mark := e.fake.Mark()
	e.s.refreshHome("UALICE", false)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no views.publish came")
	}
	// While that view (drawn before the request existed) is on its way: a request and ten
	// changes asking for a redraw.
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "outage", Duration: time.Hour})
	for i := 0; i < 10; i++ {
		e.s.refreshHome("UALICE", false)
	}
	unblock.Do(func() { close(release) })
	e.homeIdle("UALICE")

	hs := e.homes(mark, "UALICE")
	if len(hs) != 2 {
		t.Fatalf("%d views.publish for one redraw and ten asked during it, want 2", len(hs))
	}
	if _, _, ok := homeRequest(hs[0], r.ID); ok {
		t.Fatalf("the first view already lists %s: it was not drawn before the request", r.ID)
	}
	if line, _, ok := homeRequest(hs[1], r.ID); !ok || !strings.Contains(line, bot.StatePending.Label()) || hs[1].Error != "" {
		t.Fatalf("the last view does not show %s pending (error %q): %q", r.ID, hs[1].Error, line)
	}
}
