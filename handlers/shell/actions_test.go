package shell_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
)

// hintsFor are the commands a line of output suggests for a request, in order.
func hintsFor(line, id string) []bot.Action {
	var out []bot.Action
	re := regexp.MustCompile(`\b(approve|deny|verify|extend|deactivate|cancel) ` + id + `\b`)
	for _, m := range re.FindAllStringSubmatch(line, -1) {
		out = append(out, bot.Action(m[1]))
	}
	return out
}

// lineOf is the line of out that names the request with the given prefix before its id.
func lineOf(t *testing.T, out, prefix, id string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, prefix+id) {
			return l
		}
	}
	t.Fatalf("no line names %s%s:\n%s", prefix, id, out)
	return ""
}

// The shell suggests the commands the engine offers, nothing else: in what the requester is
// told, and in the status lines of the requester and of an approver.
func TestShell_HintsAreWhatTheEngineOffers(t *testing.T) {
	policy := strings.Replace(string(pimbot.ExamplePolicy), "  - name: sandbox-admins\n", `  - name: stepped
    id: 7c1e0f8a-0000-4000-8000-000000000003
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    require_mfa: true
  - name: sandbox-admins
`, 1)
	var eng *bot.Engine
	tm := start(t, []byte(policy), func(e *bot.Engine) { eng = e; e.SetMFA(&verifier{}) })
	tm.expect(5*time.Second, "You are alice@example.com (Alice)")
	ctx := context.Background()
	actor := func(who string) bot.Actor {
		u, err := tm.dir.ResolveUser(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		return bot.Actor{User: u, Surface: "shell"}
	}
	alice, bob := actor("alice@example.com"), actor("bob@example.com")
	submitted := regexp.MustCompile(`Request ([A-Z0-9]{8}) submitted`)
	newest := func(out string) *bot.Request {
		t.Helper()
		m := submitted.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("nothing submitted:\n%s", out)
		}
		r, err := eng.Get(ctx, alice, m[1])
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	get := func(id string) *bot.Request {
		r, err := eng.Get(ctx, alice, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	same := func(what string, shown, offered []bot.Action) {
		t.Helper()
		if !slices.Equal(shown, offered) {
			t.Errorf("%s suggests %v; the engine offers %v", what, shown, offered)
		}
	}

	out := tm.do("/activate stepped for 1h keys", "needs MFA")
	verifying := newest(out)
	same("the MFA line", hintsFor(lineOf(t, out, "→ to alice: request ", verifying.ID), verifying.ID), eng.Actions(ctx, alice, get(verifying.ID)))

	out = tm.do("/activate prod-db-admins for 1h fixing the outage", "→ to alice: request", "waiting for approval by")
	pending := newest(out)
	same("the pending line", hintsFor(lineOf(t, out, "→ to alice: request ", pending.ID), pending.ID), eng.Actions(ctx, alice, get(pending.ID)))
	same("the approvers' line", hintsFor(lineOf(t, out, "→ to approvers", ""), pending.ID), eng.ApproverActions(get(pending.ID)))

	out = tm.do("/activate sandbox-admins for 30m", "is active")
	active := newest(out)
	same("the activation line", hintsFor(lineOf(t, out, "→ to alice: request ", active.ID+" is active"), active.ID), eng.Actions(ctx, alice, get(active.ID)))

	out = tm.do("status", "request "+active.ID, "request "+pending.ID, "request "+verifying.ID)
	for _, r := range []*bot.Request{verifying, pending, active} {
		same("alice's status line of "+r.Group, hintsFor(lineOf(t, out, "request ", r.ID), r.ID), eng.Actions(ctx, alice, get(r.ID)))
	}
	tm.do("as bob", "You are now bob@example.com")
	out = tm.do("status "+pending.ID, "request "+pending.ID)
	same("bob's status line", hintsFor(lineOf(t, out, "request ", pending.ID), pending.ID), eng.Actions(ctx, bob, get(pending.ID)))
	if len(eng.Actions(ctx, bob, get(pending.ID))) == 0 {
		t.Fatal("bob is offered nothing on a pending request he may decide")
	}
}
