package teams_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

const (
	eveID   = "66666666-6666-4666-8666-666666666666"
	opsID   = "7c1e0f8a-0000-4000-8000-000000000003"
	sandbox = "7c1e0f8a-0000-4000-8000-000000000002"
	// eveName is a display name from the directory with markup in it: markdown, a link, a
	// mention tag and a date function.
	eveName = "**Eve** [x](http://evil.example) <at>Bob</at> {{DATE(2026-01-01T00:00:00Z)}}"
)

// driftPolicy is the test policy with eve in the directory and an ops group that removes
// access without a grant; prod reports it (the default), sandbox has no Teams channel.
func driftPolicy(settings string) string {
	p := strings.Replace(testPolicy, "directory:\n", `  - name: ops
    id: `+opsID+`
    eligible: [alice@example.com]
    approvers: [carol@example.com]
    standing_access: remove
    approval_channel: {teams: "`+approvals+`"}
directory:
`, 1)
	p = strings.Replace(p, "    - {id: 44444444", "    - {id: "+eveID+", email: eve@example.com, name: \""+eveName+"\"}\n    - {id: 44444444", 1)
	if settings != "" {
		p = strings.Replace(p, "settings: {requests_per_minute: 0, max_pending: 0}", "settings: {requests_per_minute: 0, max_pending: 0, "+settings+"}", 1)
	}
	return p
}

// newPolicyEnv is newEnvWith, with the bot installed in the team (so it knows the tenant's
// serviceUrl).
func newPolicyEnv(t *testing.T, policy string, known bool) *env {
	t.Helper()
	e := newEnvWith(t, policy, known)
	e.send(e.fake.InstallTeam(bob, teamID))
	return e
}

// Access found without a grant is told once in the group's Teams approval channel, with the
// holder and the group named and the directory's markup inert; a group without a Teams
// channel hears nothing, and nobody is told in a personal chat.
func TestDrift_ToldInTheApprovalChannelOnly(t *testing.T) {
	e := newPolicyEnv(t, driftPolicy(""), true)
	for _, g := range []string{prodID, opsID, sandbox} {
		if err := e.dir.Add(e.ctx, g, eveID, bot.Member); err != nil {
			t.Fatal(err)
		}
	}
	before := len(e.fake.Sent())
	found, err := e.eng.Reconcile(e.ctx, e.dir)
	if err != nil || len(found) != 3 {
		t.Fatalf("reconcile found %d (%v), want 3", len(found), err)
	}
	e.drain()
	sent := e.fake.Sent()[before:]
	if len(sent) != 2 {
		t.Fatalf("%d activities for drift in prod, ops (channel) and sandbox (none); want 2", len(sent))
	}
	var reported, removed bool
	for _, a := range sent {
		if a.ConversationID != approvals || a.Method != http.MethodPost {
			t.Fatalf("drift went to %s (%s); want a new card in %s only", a.ConversationID, a.Method, approvals)
		}
		text := teamsfake.Strings(a.Card())
		mustContain(t, "the drift card", text, "(eve@example.com)")
		switch {
		case strings.Contains(text, "is member of prod-db-admins without a pimbot grant — reported."):
			reported = true
		case strings.Contains(text, "was member of ops without a pimbot grant — removed."):
			removed = true
		default:
			t.Fatalf("an unexpected drift card:\n%s", text)
		}
		assertInert(t, a.Card(), eveName)
	}
	if !reported || !removed {
		t.Fatalf("reported %v, removed %v; want both", reported, removed)
	}
	if e.holds(eveID, opsID, bot.Member) || !e.holds(eveID, prodID, bot.Member) {
		t.Fatal("ops should have lost eve and prod kept her")
	}
}

// A removal that fails is told with the directory's error; a send that fails is retried
// by the job queue and lands once.
func TestDrift_RemovalFailedAndRetriedSend(t *testing.T) {
	e := newPolicyEnv(t, driftPolicy(""), true)
	if err := e.dir.Add(e.ctx, opsID, eveID, bot.Member); err != nil {
		t.Fatal(err)
	}
	e.dir.SetFault(func(op, groupID, userID string) error {
		if op == "remove" {
			return errors.New("graph: 403 Authorization_RequestDenied <at>x</at>")
		}
		return nil
	})
	e.fake.Down("send", http.StatusServiceUnavailable)
	before := len(e.fake.Sent())
	if _, err := e.eng.Reconcile(e.ctx, e.dir); err == nil {
		t.Fatal("the failed removal is not named")
	}
	e.drain()
	if n := len(e.fake.Sent()) - before; n != 0 {
		t.Fatalf("%d activities while the connector is down", n)
	}
	e.fake.Down("send", 0)
	e.clock.Advance(bot.Backoff(1) + 1)
	e.drain()
	sent := e.fake.Sent()[before:]
	if len(sent) != 1 || sent[0].ConversationID != approvals {
		t.Fatalf("%d activities after the connector is back; want one in the approval channel", len(sent))
	}
	text := teamsfake.Strings(sent[0].Card())
	mustContain(t, "the drift card", text, "is member of ops without a pimbot grant — removal failed, retrying next round.", "403 Authorization_RequestDenied")
	assertInert(t, sent[0].Card(), eveName)
}
