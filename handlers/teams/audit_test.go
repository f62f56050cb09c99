package teams_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

const auditChannel = "19:audit@thread.tacv2"

func newAuditEnv(t *testing.T, approvalsKnown bool) *env {
	t.Helper()
	e := newPolicyEnv(t, driftPolicy(`audit_channel: {teams: "`+auditChannel+`"}`), approvalsKnown)
	e.fake.AddConversation(auditChannel)
	return e
}

// auditLines are the lines posted to the audit channel since index from.
func (e *env) auditLines(t *testing.T, from int) []string {
	t.Helper()
	var out []string
	for _, a := range e.fake.Sent()[from:] {
		if a.ConversationID != auditChannel {
			continue
		}
		if a.Method != http.MethodPost {
			t.Fatalf("the audit channel got a %s: lines are posted, never changed", a.Method)
		}
		out = append(out, strings.TrimSpace(strings.ReplaceAll(teamsfake.Strings(a.Card()), "\u2060", "")))
	}
	return out
}

func postsTo(acts []teamsfake.Activity, conv string) int {
	n := 0
	for _, a := range acts {
		if a.ConversationID == conv && a.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// Each audit-worthy event, and a drift finding in a group without a Teams channel, is one
// line of plain text in the audit channel; markup people typed stays inert.
func TestAudit_OneInertLinePerEvent(t *testing.T) {
	e := newAuditEnv(t, true)
	from := len(e.fake.Sent())
	reason := "fixing **now** <at>Bob</at> {{DATE(2026-01-01T00:00:00Z)}}"
	r, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "prod-db-admins", Duration: 30 * time.Minute, Reason: reason})
	if err != nil {
		t.Fatal(err)
	}
	e.drain()
	bobActor := bot.Actor{User: bot.User{ID: bobID, Email: "bob@example.com", Name: "Bob"}, Surface: "slack"}
	if _, err := e.eng.Deny(e.ctx, bobActor, r.ID, "not <at>now</at>"); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if err := e.dir.Add(e.ctx, sandbox, eveID, bot.Member); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Reconcile(e.ctx, e.dir); err != nil {
		t.Fatal(err)
	}
	e.drain()

	lines := e.auditLines(t, from)
	wants := [][]string{
		{"2026-11-28 09:00 UTC submitted " + r.ID + ": Alice (alice@example.com) · member of prod-db-admins · for 30m from now", `reason: "` + reason + `"`, "by Alice (alice@example.com) via teams"},
		{"denied " + r.ID, `deny reason: "not <at>now</at>"`, "by Bob (bob@example.com) via slack"},
		{"DRIFT reported: " + eveName + " (eve@example.com) · member of sandbox · without a pimbot grant · by pimbot via reconciler"},
	}
	if len(lines) != len(wants) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(wants), strings.Join(lines, "\n"))
	}
	for i, w := range wants {
		mustContain(t, "audit line", lines[i], w...)
	}
	for _, a := range e.fake.Sent()[from:] {
		if a.ConversationID == auditChannel {
			assertInert(t, a.Card(), "<at>")
		}
	}
}

// When the approvers' card fails and the job is retried, the audit line that went out is not
// posted again; when the audit line fails, the retry posts only it.
func TestAudit_RetriesPostTheLineOnce(t *testing.T) {
	e := newAuditEnv(t, false) // the approval channel is unknown to Teams for now
	from := len(e.fake.Sent())
	r, err := e.eng.Submit(e.ctx, aliceActor(), bot.SubmitInput{Group: "prod-db-admins", Reason: "first"})
	if err != nil {
		t.Fatal(err)
	}
	e.drain()
	if n := postsTo(e.fake.Sent()[from:], approvals); n != 0 {
		t.Fatalf("the approvers' card was posted %d times to an unknown conversation", n)
	}
	if l := e.auditLines(t, from); len(l) != 1 {
		t.Fatalf("audit lines before the retry: %q", l)
	}
	e.fake.AddConversation(approvals)
	e.clock.Advance(bot.Backoff(1) + time.Second)
	e.drain()
	if a, l := postsTo(e.fake.Sent()[from:], approvals), len(e.auditLines(t, from)); a != 1 || l != 1 {
		t.Fatalf("after the retry: %d approvers' cards, %d audit lines; want 1 each", a, l)
	}

	// The audit channel fails; the approvers' card is updated and the line is posted once after.
	e.fake.Down("send", http.StatusServiceUnavailable)
	from = len(e.fake.Sent())
	if _, err := e.eng.Cancel(e.ctx, aliceActor(), r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if l := e.auditLines(t, from); len(l) != 0 {
		t.Fatalf("audit lines while the connector refuses new posts: %q", l)
	}
	e.fake.Down("send", 0)
	e.clock.Advance(bot.Backoff(1) + time.Second)
	e.drain()
	sent := e.fake.Sent()[from:]
	updated := false
	for _, a := range sent {
		updated = updated || (a.ConversationID == approvals && a.Method == http.MethodPut)
	}
	if !updated {
		t.Fatal("the approvers' card was not updated with the cancellation")
	}
	lines := e.auditLines(t, from)
	if len(lines) != 1 || !strings.Contains(lines[0], "canceled "+r.ID) || postsTo(sent, approvals) != 0 {
		t.Fatalf("after the retry: audit lines %q, %d new approvers' cards; want one line and no new card", lines, postsTo(sent, approvals))
	}
}
