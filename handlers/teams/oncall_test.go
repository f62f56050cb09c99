package teams_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// onCallPolicy is testPolicy with alice on the local db-primary rota, which approves her
// requests for prod-db-admins automatically up to 2h.
var onCallPolicy = strings.Replace(testPolicy, `    approval_channel: {teams: "19:approvals@thread.tacv2"}
`, `    approval_channel: {teams: "19:approvals@thread.tacv2"}
    auto_approve:
      on_call:
        local: {schedules: [db-primary]}
      max_duration: 2h
`, 1) + `  on_call:
    - {name: db-primary, people: [alice@example.com]}
`

// An automatic (on-call) approval is posted to the approvers' channel at once with Revoke and
// Looks good, waits in their inbox until one of them reviews it, and Revoke ends the grant.
func TestOnCall_TeamsApproversSeeReviewAndRevoke(t *testing.T) {
	e := newEnvWith(t, onCallPolicy, true)
	channel := e.fake.Channel(approvals, teamID)
	e.send(e.fake.Message(bob, channel, "help")) // the bot learns where the channel is served
	r, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "paged: replica lag"})
	if err != nil {
		t.Fatal(err)
	}
	if r.AutoApproval == nil {
		t.Fatalf("alice is on call: %s (%s)", r.State, r.OnCallNote)
	}
	e.drain()
	if !e.holds(aliceID, r.GroupID, bot.Member) {
		t.Fatal("not added")
	}
	posted := e.lastTo(approvals)
	mustContain(t, "the approvers' card", posted.Text(), "Approved automatically by on-call (local rota \"db-primary\")", "Not reviewed yet", r.ID)
	bobActor := bot.Actor{User: bot.User{ID: bobID, Email: "bob@example.com", Name: "Bob"}, Surface: "teams"}
	if shown := cardActions(posted.Card()); !slices.Equal(shown, []bot.Action{bot.ActRevoke, bot.ActLooksGood}) {
		t.Fatalf("the approvers' card offers %v, want Revoke and Looks good", shown)
	}

	// It waits in carol's inbox for review.
	chat := e.fake.Personal(carol)
	e.send(e.fake.Message(carol, chat, "pending"))
	inbox := e.lastTo(chat.ID)
	mustContain(t, "carol's inbox", inbox.Text(), "approved automatically by on-call", "review it", r.ID)

	// Bob reviews it on the channel card: the card says so, and carol's inbox empties.
	after := e.invoke(bob, channel, posted.ActivityID, "looks_good", buttonData(t, posted.Card(), "looks_good", r.ID, nil)).card(t)
	mustContain(t, "the card after the review", teamsfake.Strings(after), "Reviewed by Bob: looks good")
	if acts := e.eng.Actions(e.ctx, bobActor, e.get(r.ID)); !slices.Equal(acts, []bot.Action{bot.ActRevoke}) {
		t.Errorf("after the review the engine offers bob %v", acts)
	}
	e.send(e.fake.Message(carol, chat, "pending"))
	mustContain(t, "carol's inbox after bob's review", e.lastTo(chat.ID).Text(), "Nothing is waiting for your approval")

	// Revoke ends the grant at once.
	e.invoke(bob, channel, posted.ActivityID, "revoke", buttonData(t, after, "revoke", r.ID, nil)).card(t)
	e.drain()
	if e.holds(aliceID, r.GroupID, bot.Member) {
		t.Fatal("alice still holds the access after bob revoked it")
	}
	if got := e.get(r.ID); got.State != bot.StateEnded || !strings.Contains(got.EndReason, "revoked by bob@example.com") {
		t.Errorf("after revoke: %s (%s)", got.State, got.EndReason)
	}
	mustContain(t, "the approvers' card after the revoke", e.lastTo(approvals).Text(), "Ended", "revoked by bob@example.com")
}

// The approvers' card of an extension they approved says when the grant now ends.
func TestExtension_TeamsApproversToldWhenItTakesEffect(t *testing.T) {
	e := newEnv(t)
	channel := e.fake.Channel(approvals, teamID)
	e.send(e.fake.Message(bob, channel, "help")) // the bot learns where the channel is served
	bobActor := bot.Actor{User: bot.User{ID: bobID, Email: "bob@example.com", Name: "Bob"}, Surface: "teams"}
	r, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "migration"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Approve(e.ctx, bobActor, r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	ext, err := e.eng.Extend(e.ctx, aliceActor(), r.ID, time.Hour, "still migrating")
	if err != nil {
		t.Fatal(err)
	}
	e.drain()
	if _, err := e.eng.Approve(e.ctx, bobActor, ext.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	end := e.get(r.ID).EndsAt
	var found bool
	for _, a := range e.fake.SentTo(approvals) {
		if text := a.Text(); strings.Contains(text, "Extension request "+ext.ID) && strings.Contains(text, "It now ends at "+end.Format("15:04")) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no approvers' card of extension %s says the grant now ends at %s", ext.ID, end.Format("15:04"))
	}
	var told bool
	for _, a := range e.fake.SentTo(approvals) {
		if a.Method == "POST" && strings.Contains(a.Text(), "Request "+r.ID+" now ends at "+end.Format("15:04")) && strings.Contains(a.Text(), "approved by Bob") {
			told = true
		}
	}
	if !told {
		t.Fatalf("the approvers' channel got no new message that request %s now ends at %s", r.ID, end.Format("15:04"))
	}
}
