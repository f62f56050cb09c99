package slack

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

const auditChannel = "C0AUDIT"

func newAuditEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvPolicy(t, driftPolicy("audit_channel: {slack: "+auditChannel+"}"))
	e.fake.AddChannel(auditChannel)
	return e
}

// auditLines are the texts posted to the audit channel since mark (failed posts left out).
func (e *env) auditLines(mark int) []string {
	var out []string
	for _, c := range e.fake.Since(mark, "chat.postMessage") {
		if c.Get("channel") == auditChannel && c.Error == "" {
			out = append(out, c.Get("text"))
		}
	}
	return out
}

func postsTo(calls []slackfake.Call, channel string) int {
	n := 0
	for _, c := range calls {
		if c.Get("channel") == channel && c.Error == "" {
			n++
		}
	}
	return n
}

// Each audit-worthy event of a request's life, and a drift finding in a group without a
// Slack approval channel, is one escaped line in the audit channel; reminders are not.
func TestAudit_OneEscapedLinePerEvent(t *testing.T) {
	e := newAuditEnv(t)
	mark := e.fake.Mark()
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Duration: 30 * time.Minute,
		Reason: "<!here> fixing & *restarting*\nthe primary", Ticket: "INC-7"})
	e.drain()
	bob := bot.Actor{User: e.user("bob@example.com"), Surface: Name}
	if _, err := e.eng.Approve(e.ctx, bob, r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	e.clock.Advance(25 * time.Minute) // the reminder: not an audit line
	e.drain()
	if _, err := e.eng.Deactivate(e.ctx, bot.Actor{User: e.user("alice@example.com"), Surface: Name}, r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	eve := e.user("eve@example.com")
	if err := e.dir.Add(e.ctx, "g-dm", eve.ID, bot.Member); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Reconcile(e.ctx, e.dir); err != nil {
		t.Fatal(err)
	}
	e.drain()

	lines := e.auditLines(mark)
	reason := `reason: "&lt;!here&gt; fixing &amp; *restarting* the primary" · ticket: INC-7`
	wants := [][]string{
		{"2026-11-28 09:00 UTC submitted " + r.ID + ": Alice (alice@example.com) · member of prod-db-admins · for 30m from now · awaiting 1 approval(s)", reason, "by Alice (alice@example.com) via slack"},
		{"approved " + r.ID + ": Alice (alice@example.com) · member of prod-db-admins · 1 of 1 approvals", reason, "by Bob (bob@example.com) via slack"},
		{"activated " + r.ID + ": Alice (alice@example.com) · member of prod-db-admins · until 2026-11-28 09:30 UTC", "by pimbot"},
		{"2026-11-28 09:25 UTC ended " + r.ID + ": Alice (alice@example.com)", "deactivated by alice@example.com"},
		{"2026-11-28 09:25 UTC DRIFT reported: &lt;!channel&gt; *Eve* &lt;@UBOB&gt; (eve@example.com) · member of dm-approvers · without a pimbot grant · by pimbot via reconciler"},
	}
	if len(lines) != len(wants) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(wants), strings.Join(lines, "\n"))
	}
	for i, w := range wants {
		for _, part := range w {
			if !strings.Contains(lines[i], part) {
				t.Fatalf("audit line %d does not say %q:\n%s", i, part, lines[i])
			}
		}
		if strings.ContainsAny(lines[i], "<>\n") {
			t.Fatalf("audit line %d is not one escaped line: %q", i, lines[i])
		}
	}
}

// When the approvers' message fails and the job is retried, the audit line that did go out
// is not posted again; when the audit line fails, the retry posts only it.
func TestAudit_RetriesPostTheLineOnce(t *testing.T) {
	e := newAuditEnv(t)

	// The approvers' message is refused once (it is the first post of the event).
	mark := e.fake.Mark()
	e.fake.Fail("chat.postMessage", "ratelimited")
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "first"})
	e.drain()
	if n := postsTo(e.fake.Since(mark, "chat.postMessage"), approvals); n != 0 {
		t.Fatalf("the approvers' message was posted %d times despite the refusal", n)
	}
	if lines := e.auditLines(mark); len(lines) != 1 {
		t.Fatalf("audit lines before the retry: %q", lines)
	}
	e.clock.Advance(bot.Backoff(1) + time.Second)
	e.drain()
	calls := e.fake.Since(mark, "chat.postMessage")
	if a, l, dm := postsTo(calls, approvals), len(e.auditLines(mark)), postsTo(calls, "UALICE"); a != 1 || l != 1 || dm != 1 {
		t.Fatalf("after the retry: %d approvers' messages, %d audit lines, %d DMs; want 1 each", a, l, dm)
	}

	// The audit line is refused once: it is the last post of the event, after the DM.
	var arm sync.Once
	e.fake.OnCall(func(c slackfake.Call) {
		if c.Method == "chat.postMessage" && c.Get("channel") == "UALICE" && c.Error == "" {
			arm.Do(func() { e.fake.Fail("chat.postMessage", "ratelimited") })
		}
	})
	mark = e.fake.Mark()
	if _, err := e.eng.Cancel(e.ctx, bot.Actor{User: e.user("alice@example.com"), Surface: Name}, r.ID); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if l := e.auditLines(mark); len(l) != 0 {
		t.Fatalf("the refused audit line went out: %q", l)
	}
	e.clock.Advance(bot.Backoff(1) + time.Second)
	e.drain()
	calls = e.fake.Since(mark, "chat.postMessage")
	lines := e.auditLines(mark)
	if len(lines) != 1 || !strings.Contains(lines[0], "canceled "+r.ID) || postsTo(calls, "UALICE") != 1 {
		t.Fatalf("after the retry: audit lines %q, %d DMs; want one each", lines, postsTo(calls, "UALICE"))
	}
}
