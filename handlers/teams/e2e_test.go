package teams_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

const prodID = "7c1e0f8a-0000-4000-8000-000000000001"

// The whole path through Teams: a message opens the form, the submit goes to the engine,
// the approvers' card appears in the channel, a non-approver, the requester and a second
// click change nothing, an approver's click approves, the directory grants, the card is
// updated in place, the requester is told in their personal chat, and expiry tells them again.
func TestEndToEnd_FormSubmitApproveActivateExpire(t *testing.T) {
	e := newEnv(t)
	e.send(e.fake.InstallTeam(bob, teamID)) // the bot learns the tenant's serviceUrl
	chat := e.fake.Personal(alice)

	// "activate" alone answers with the form, eligible groups only.
	e.send(e.fake.Message(alice, chat, "activate"))
	form := e.lastTo(chat.ID)
	if got := inputIDs(form.Card()); !slices.Contains(got, "group") || !slices.Contains(got, "reason") || !slices.Contains(got, "duration") {
		t.Fatalf("the form's inputs are %v", got)
	}
	mustContain(t, "the form", teamsfake.Strings(form.Card()), "prod-db-admins", "sandbox")

	// A refused submit comes back as the form with the engine's words under the field.
	refused := e.invoke(alice, chat, form.ActivityID, "submit", map[string]any{"verb": "submit", "group": "prod-db-admins", "duration": "9h", "reason": "x"}).card(t)
	mustContain(t, "the refused form", teamsfake.Strings(refused), "9h is not allowed for prod-db-admins")
	if len(e.requests(aliceID)) != 0 {
		t.Fatal("a refused form made a request")
	}

	// The real submit.
	reason := "fixing the outage [x](http://evil) **now**"
	done := e.invoke(alice, chat, form.ActivityID, "submit", map[string]any{"verb": "submit", "group": "prod-db-admins",
		"access": "member", "duration": "2h", "reason": reason}).card(t)
	rs := e.requests(aliceID)
	if len(rs) != 1 || rs[0].State != bot.StatePending || rs[0].Duration != 2*time.Hour || rs[0].Surface != "teams" {
		t.Fatalf("requests after the submit: %+v", rs)
	}
	r := rs[0]
	mustContain(t, "the submit answer", teamsfake.Strings(done), "Request "+r.ID+" submitted", "Waiting for approval")

	// The approvers' card is posted to the channel; the requester hears "pending".
	e.drain()
	cards := e.fake.SentTo(approvals)
	if len(cards) != 1 || cards[0].Method != http.MethodPost {
		t.Fatalf("approval channel got %d activities, want one new card", len(cards))
	}
	card := cards[0]
	mustContain(t, "the approvers' card", teamsfake.Strings(card.Card()), "Access request "+r.ID, "Alice", "2h", "Waiting for approval")
	if v := verbs(card.Card()); !slices.Contains(v, "approve") || !slices.Contains(v, "deny") {
		t.Fatalf("the approvers' card has actions %v", v)
	}
	mustContain(t, "the pending DM", e.lastTo(chat.ID).Text(), "is waiting for approval")

	channel := teamsfake.Conversation{ID: approvals, Type: "channel", ChannelID: approvals, TeamID: teamID}
	before := len(e.fake.Sent())
	version := e.get(r.ID).Version

	// Someone who is not an approver: told so, nothing changes.
	msg := e.invoke(mallory, channel, card.ActivityID, "approve", map[string]any{"verb": "approve", "requestId": r.ID}).message(t)
	mustContain(t, "the answer to a non-approver", msg, "only bob@example.com or carol@example.com may approve")
	// The requester may not approve their own request either (she is not an approver here),
	// and a forged request id in the data is just another request to authorize.
	msg = e.invoke(alice, channel, card.ActivityID, "approve", map[string]any{"verb": "approve", "requestId": r.ID}).message(t)
	mustContain(t, "the answer to the requester", msg, "You can't approve this")
	if got := e.get(r.ID); got.Version != version || got.State != bot.StatePending || len(e.fake.Sent()) != before {
		t.Fatalf("a refused click changed something: state %s, version %d→%d, %d new activities", got.State, version, got.Version, len(e.fake.Sent())-before)
	}

	// Bob approves: the invoke answer is the card without Approve and Deny; what is left is
	// an approver's way to end the grant.
	approved := e.invoke(bob, channel, card.ActivityID, "approve", map[string]any{"verb": "approve", "requestId": r.ID}).card(t)
	mustContain(t, "the approved card", teamsfake.Strings(approved), "Approved by Bob")
	if v := verbs(approved); !slices.Equal(v, []string{"deactivate"}) {
		t.Fatalf("the decided card has buttons %v, want only deactivate", v)
	}
	// A double submit (Bob again, or Carol a moment later) changes nothing.
	version = e.get(r.ID).Version
	for _, u := range []teamsfake.User{bob, carol} {
		msg = e.invoke(u, channel, card.ActivityID, "approve", map[string]any{"verb": "approve", "requestId": r.ID}).message(t)
		mustContain(t, "the answer to a second click", msg, "it can no longer be approved")
	}
	if got := e.get(r.ID); got.Version != version || len(got.Approvals) != 1 {
		t.Fatalf("a second click changed the request: version %d→%d, %d approvals", version, got.Version, len(got.Approvals))
	}

	// The worker: approved → activated; the directory holds the grant; card and DM follow.
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateActive || !e.holds(aliceID, prodID, bot.Member) {
		t.Fatalf("after approval: state %s, holds=%v", got.State, e.holds(aliceID, prodID, bot.Member))
	}
	updates := 0
	for _, a := range e.fake.SentTo(approvals) {
		if a.Method == http.MethodPut {
			if a.ActivityID != card.ActivityID {
				t.Fatalf("updated activity %s, the card is %s", a.ActivityID, card.ActivityID)
			}
			updates++
		}
	}
	if updates == 0 {
		t.Fatal("the approvers' card was not updated in place")
	}
	mustContain(t, "the updated card", teamsfake.Strings(e.lastTo(approvals).Card()), "Approved by Bob", "Active until")
	dm := e.lastTo(chat.ID)
	mustContain(t, "the active DM", dm.Text(), "Request "+r.ID+" is active", "member of prod-db-admins", bot.CachingCaveat)

	// Expiry: the grant is removed at its end and the requester is told.
	e.clock.Advance(2 * time.Hour)
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateEnded || e.holds(aliceID, prodID, bot.Member) {
		t.Fatalf("after the end: state %s, holds=%v", got.State, e.holds(aliceID, prodID, bot.Member))
	}
	mustContain(t, "the ended DM", e.lastTo(chat.ID).Text(), "Request "+r.ID+" ended", "no longer a member of prod-db-admins")
	mustContain(t, "the final card", teamsfake.Strings(e.lastTo(approvals).Card()), "Ended")

	// The reminder came in between, and the requester's reason never went out as markdown.
	var saw []string
	for _, a := range e.fake.SentTo(chat.ID) {
		saw = append(saw, a.Text())
	}
	mustContain(t, "the DMs", strings.Join(saw, "\n"), "ends at", "was approved")
	for _, a := range e.fake.SentTo(approvals) {
		assertInert(t, a.Card(), reason)
	}
}

// Self-approval is refused unless the group allows it; a text "approve" is the same engine call.
func TestApprove_SelfApprovalRefused(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(bob)
	e.send(e.fake.Message(bob, chat, "activate prod-db-admins for 1h checking the replica"))
	rs := e.requests(bobID)
	if len(rs) != 1 {
		t.Fatalf("bob's requests: %d", len(rs))
	}
	e.drain()
	card := e.fake.SentTo(approvals)[0]
	channel := teamsfake.Conversation{ID: approvals, Type: "channel", ChannelID: approvals, TeamID: teamID}
	msg := e.invoke(bob, channel, card.ActivityID, "approve", map[string]any{"verb": "approve", "requestId": rs[0].ID}).message(t)
	mustContain(t, "the answer to self-approval", msg, "it is your own request")
	e.send(e.fake.Message(bob, chat, "approve "+rs[0].ID))
	mustContain(t, "the text reply", e.lastTo(chat.ID).Text(), "it is your own request")
	if got := e.get(rs[0].ID); got.State != bot.StatePending || len(got.Approvals) != 0 {
		t.Fatalf("self-approval changed the request: %s, %d approvals", got.State, len(got.Approvals))
	}
}

// Deny asks for a reason; the requester hears it, the card shows it, and it is inert text.
func TestDeny_WithReason(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "activate prod-db-admins for 1h debugging"))
	r := e.requests(aliceID)[0]
	e.drain()
	card := e.fake.SentTo(approvals)[0]
	channel := teamsfake.Conversation{ID: approvals, Type: "channel", ChannelID: approvals, TeamID: teamID}
	why := "use the <at>read replica</at> **instead**"
	denied := e.invoke(carol, channel, card.ActivityID, "deny", map[string]any{"verb": "deny", "requestId": r.ID, "denyReason": why}).card(t)
	mustContain(t, "the denied card", teamsfake.Strings(denied), "Denied by Carol")
	assertInert(t, denied, why)
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateDenied || got.DenyReason != why {
		t.Fatalf("after deny: %s %q", got.State, got.DenyReason)
	}
	dm := e.lastTo(chat.ID)
	mustContain(t, "the denied DM", dm.Text(), "was denied", "Denied by Carol")
	assertInert(t, dm.Card(), why)
}

// Hosts without Universal Actions send Action.Submit as a message with a value: the same
// action runs and the clicked card is updated through the connector (PUT replyToId).
func TestActionSubmitFallback_UpdatesTheClickedCard(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "activate prod-db-admins for 1h debugging"))
	r := e.requests(aliceID)[0]
	e.drain()
	card := e.fake.SentTo(approvals)[0]
	channel := teamsfake.Conversation{ID: approvals, Type: "channel", ChannelID: approvals, TeamID: teamID}
	e.send(e.fake.Submit(bob, channel, card.ActivityID, map[string]any{"verb": "approve", "requestId": r.ID}))
	last := e.lastTo(approvals)
	if last.Method != http.MethodPut || last.ActivityID != card.ActivityID {
		t.Fatalf("the fallback click sent %s %s, want PUT of %s", last.Method, last.ActivityID, card.ActivityID)
	}
	if got := e.get(r.ID); got.State != bot.StateScheduled {
		t.Fatalf("state %s after the fallback approve", got.State)
	}
}

// Conversation references live in Redis: a new process (new engine, new surface) on the
// same Redis still tells the requester and still updates the approvers' card.
func TestRestart_ReferencesSurvive(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "activate prod-db-admins for 1h debugging"))
	r := e.requests(aliceID)[0]
	e.drain()
	card := e.fake.SentTo(approvals)[0]

	// "Restart": everything in memory is dropped.
	e.surface, e.eng, e.url = e.start()
	if _, err := e.eng.Approve(e.ctx, bot.Actor{User: bot.User{ID: bobID, Email: "bob@example.com", Name: "Bob"}, Surface: "shell"}, r.ID); err != nil {
		t.Fatal(err)
	}
	before := len(e.fake.SentTo(chat.ID))
	e.drain()
	if len(e.fake.SentTo(chat.ID)) <= before {
		t.Fatal("after a restart the requester was not told")
	}
	mustContain(t, "the DM after a restart", e.lastTo(chat.ID).Text(), "is active")
	if last := e.lastTo(approvals); last.Method != http.MethodPut || last.ActivityID != card.ActivityID {
		t.Fatalf("after a restart the card was not updated in place: %s %s", last.Method, last.ActivityID)
	}
}

// A person the bot knows only from a channel gets their personal chat created
// (POST /v3/conversations), and its id is kept for next time.
func TestDM_CreatesThePersonalChat(t *testing.T) {
	e := newEnv(t)
	thread := e.fake.Channel("19:ops@thread.tacv2", teamID)
	e.send(e.fake.Message(alice, thread, "activate prod-db-admins for 1h debugging"))
	mustContain(t, "the reply in the thread", e.lastTo(thread.ID).Text(), "submitted")
	e.drain()
	if e.fake.Hits("create") != 1 {
		t.Fatalf("create conversation called %d times, want 1", e.fake.Hits("create"))
	}
	var dms []teamsfake.Activity
	for _, a := range e.fake.Sent() {
		if strings.HasPrefix(a.ConversationID, "a:1") {
			dms = append(dms, a)
		}
	}
	if len(dms) != 1 {
		t.Fatalf("%d DMs, want the pending one", len(dms))
	}
	r := e.requests(aliceID)[0]
	if _, err := e.eng.Cancel(e.ctx, bot.Actor{User: bot.User{ID: aliceID}, Surface: "teams"}, r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if e.fake.Hits("create") != 1 {
		t.Fatal("the personal chat was created again instead of reused")
	}
	mustContain(t, "the canceled DM", e.lastTo(dms[0].ConversationID).Text(), "was canceled")
}

// Text commands: the quick form, status, cancel, extend, groups, help, the channel id,
// mentions stripped in channels, a hint for anything else, and strangers told why not.
func TestTextCommands(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	say := func(text string) string {
		e.t.Helper()
		e.send(e.fake.Message(alice, chat, text))
		return e.lastTo(chat.ID).Text()
	}
	mustContain(t, "help", say("help"), "activate", "status", "deactivate")
	mustContain(t, "groups", say("groups"), "prod-db-admins", "sandbox", "no approval needed")
	mustContain(t, "a bad quick form", say("activate prod-db-admins for 99h because"), "99h is not allowed")
	mustContain(t, "the quick form", say("activate sandbox for 30m"), "submitted", "No approval needed")
	r := e.requests(aliceID)[0]
	e.drain()
	if !e.holds(aliceID, "7c1e0f8a-0000-4000-8000-000000000002", bot.Member) {
		t.Fatal("sandbox was not granted")
	}
	mustContain(t, "status", say("status"), "Request "+r.ID, "Active", "sandbox")
	mustContain(t, "extend", say("extend "+r.ID+" for 15m more testing"), "Extension", "applied")
	mustContain(t, "deactivate", say("deactivate "+strings.ToLower(r.ID)), "Request "+r.ID+" is being deactivated")
	mustContain(t, "cancel without id", say("cancel"), "Which request?")
	mustContain(t, "cancel of someone else's", say("cancel ZZZZZZZZ"), "No such request")
	mustContain(t, "unknown text", say("please give me admin"), "I did not understand that", "help")
	mustContain(t, "channel id in a chat", say("channel"), "not a channel")

	thread := e.fake.Channel("19:ops@thread.tacv2", teamID)
	e.send(e.fake.Message(alice, thread, "channel"))
	mustContain(t, "channel id", e.lastTo(thread.ID).Text(), "19:ops@thread.tacv2")
	if last := e.lastTo(thread.ID); last.ReplyToID == "" {
		t.Fatal("the reply in a channel is not threaded")
	}

	e.send(e.fake.Message(stranger, e.fake.Personal(stranger), "activate sandbox"))
	mustContain(t, "a stranger", e.lastTo("a:1personal-"+stranger.TeamsID).Text(), "not in the directory")
	if len(e.requests("55555555-5555-4555-8555-555555555555")) != 0 {
		t.Fatal("a stranger made a request")
	}
}

// Teams redelivers an activity when the answer is slow; the second delivery does nothing.
func TestRedelivery_IsHandledOnce(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	act := e.fake.Message(alice, chat, "activate sandbox for 30m")
	e.send(act)
	e.send(act)
	if n := len(e.requests(aliceID)); n != 1 {
		t.Fatalf("%d requests from one redelivered message", n)
	}
	if n := len(e.fake.SentTo(chat.ID)); n != 1 {
		t.Fatalf("%d replies to one redelivered message", n)
	}
}

// Installing the bot in a personal scope says hello; in a team it tells the channel id.
func TestInstall_WelcomesAndTellsChannelID(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(carol)
	e.send(e.fake.InstallPersonal(carol, chat))
	mustContain(t, "the welcome", e.lastTo(chat.ID).Text(), "just-in-time access")
	e.send(e.fake.InstallTeam(carol, teamID))
	mustContain(t, "the team welcome", e.lastTo(teamID).Text(), "approval_channel.teams", teamID)
}

// Notify is retried by the engine: a retried delivery is not sent twice, and a late retry of
// an older event does not roll the approvers' card back.
func TestNotify_RetriesAreIdempotent(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "activate prod-db-admins for 1h debugging"))
	r := e.requests(aliceID)[0]
	old := e.get(r.ID)
	e.drain()
	submitted := bot.Event{Type: bot.EvSubmitted, Request: old, At: e.clock.Now()}
	before := len(e.fake.Sent())
	if err := e.surface.Notify(e.ctx, submitted); err != nil { // the same delivery again
		t.Fatal(err)
	}
	if n := len(e.fake.Sent()) - before; n != 1 || e.lastTo(approvals).Method != http.MethodPut {
		t.Fatalf("a repeated 'submitted' sent %d activities; want only the card refreshed in place", n)
	}
	if _, err := e.eng.Approve(e.ctx, bot.Actor{User: bot.User{ID: carolID, Email: "carol@example.com", Name: "Carol"}, Surface: "shell"}, r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	before = len(e.fake.Sent())
	if err := e.surface.Notify(e.ctx, submitted); err != nil { // a late retry of the old event
		t.Fatal(err)
	}
	if len(e.fake.Sent()) != before {
		t.Fatal("a late retry of an older event changed the card or messaged again")
	}
}
