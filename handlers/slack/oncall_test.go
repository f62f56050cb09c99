package slack

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// onCallPolicy is testPolicy with alice on the local db-primary rota, which approves her
// requests for prod-db-admins automatically up to 2h.
var onCallPolicy = strings.Replace(testPolicy, `    max_duration: 4h
    approval_channel: {slack: C0APPROVE}
`, `    max_duration: 4h
    approval_channel: {slack: C0APPROVE}
    auto_approve:
      on_call:
        local: {schedules: [db-primary]}
      max_duration: 2h
`, 1) + `  on_call:
    - {name: db-primary, people: [alice@example.com]}
`

// An automatic (on-call) approval is posted to the approval channel at once with Revoke and
// Looks good; it waits in the approvers' inbox until one of them reviews it; the message is
// updated with the review; Revoke ends the grant.
func TestOnCall_SlackApproversSeeReviewAndRevoke(t *testing.T) {
	e := newEnvPolicy(t, onCallPolicy)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Duration: time.Hour, Reason: "paged: replica lag"})
	if r.AutoApproval == nil {
		t.Fatalf("alice is on call: %s (%s)", r.State, r.OnCallNote)
	}
	ts := e.approvalPosted(approvals, r.ID)
	post := e.fake.Calls("chat.postMessage")
	var blocks string
	for _, c := range post {
		if c.Get("channel") == approvals && strings.Contains(c.Get("blocks"), r.ID) {
			blocks = c.Get("blocks")
		}
	}
	for _, want := range []string{"Approved automatically", `on-call (local rota \"db-primary\")`, "Not reviewed yet", `"action_id":"revoke"`, `"action_id":"looks_good"`} {
		if !strings.Contains(blocks, want) {
			t.Fatalf("the approvers' message lacks %q:\n%s", want, blocks)
		}
	}
	e.waitDM("UALICE", "approved automatically", "you are on call")
	e.pump("the grant", func() bool { return e.holds("alice@example.com", "g-prod", bot.Member) })

	// It waits in carol's inbox for review.
	a, name := e.command("UCAROL", "pending")
	if a.Status != http.StatusOK {
		t.Fatalf("HTTP %d %s", a.Status, a.Body)
	}
	if reply := e.waitResponse(name); !strings.Contains(reply, "approved automatically by on-call") || !strings.Contains(reply, `"action_id":"looks_good"`) {
		t.Fatalf("carol's inbox does not ask for the review:\n%s", reply)
	}

	// Bob reviews it on the channel message: the message says so, and carol's inbox empties.
	mark := len(e.fake.Calls("chat.update"))
	e.click("UBOB", actLooksGood, r.ID, approvals, ts)
	e.waitCall(mark, "chat.update", func(c slackfake.Call) bool {
		return c.Get("ts") == ts && strings.Contains(c.Get("blocks"), "Reviewed by")
	})
	if got := e.get(r.ID); got.AutoApproval.Review == nil || got.AutoApproval.Review.By.Email != "bob@example.com" {
		t.Fatalf("the review is not recorded: %+v", got.AutoApproval)
	}
	carol := bot.Actor{User: e.user("carol@example.com"), Surface: Name}
	if acts := e.eng.Actions(e.ctx, carol, e.get(r.ID)); !slices.Equal(acts, []bot.Action{bot.ActRevoke}) {
		t.Errorf("after the review the engine offers carol %v", acts)
	}
	if _, name = e.command("UCAROL", "pending"); !strings.Contains(e.waitResponse(name), "Nothing is waiting") {
		t.Errorf("carol's inbox still lists the reviewed approval")
	}

	// Revoke ends the grant at once.
	e.click("UCAROL", actRevoke, r.ID, approvals, ts)
	e.pump("the revoked grant removed", func() bool { return !e.holds("alice@example.com", "g-prod", bot.Member) })
	if got := e.get(r.ID); !strings.Contains(got.EndReason, "revoked by carol@example.com") {
		t.Errorf("end reason %q", got.EndReason)
	}
}
