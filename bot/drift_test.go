package bot_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

func TestReconcile_ReportsOrRemovesAccessWithoutAGrant(t *testing.T) {
	policy := strings.Replace(testPolicy, "    eligible: [group:engineering@example.com]\n    require_approval: false",
		"    eligible: [group:engineering@example.com]\n    standing_access: remove\n    require_approval: false", 1)
	e := newEnvPolicy(t, policy)
	// A grant through the bot: not drift.
	r := e.submit("alice", "sandbox", bot.SubmitInput{Duration: time.Hour})
	e.drain()
	// Added behind the bot's back: erin to sandbox (remove), mallory to prod (report).
	erin, mallory := e.actor("erin").User, e.actor("mallory").User
	e.dir.Add(e.ctx, "g-sandbox", erin.ID, bot.Member)
	e.dir.Add(e.ctx, "g-prod", mallory.ID, bot.Owner)

	found, err := e.eng.Reconcile(e.ctx, e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 2 {
		t.Fatalf("found %d drifts, want 2: %+v", len(found), found)
	}
	if e.holds("erin@example.com", "g-sandbox", bot.Member) || !e.holds("alice@example.com", "g-sandbox", bot.Member) {
		t.Fatal("standing_access: remove must remove erin and keep alice's grant")
	}
	if !e.holds("mallory@example.com", "g-prod", bot.Owner) {
		t.Fatal("standing_access: report must not remove")
	}
	recs, _ := e.store.AuditSince(e.ctx, time.Time{}, 0)
	var types []string
	for _, a := range recs {
		if strings.HasPrefix(a.Type, "drift") {
			types = append(types, a.Type+" "+a.Subject)
		}
	}
	if got := strings.Join(types, ","); got != "drift mallory@example.com,drift_removed erin@example.com" {
		t.Fatalf("audit: %v", types)
	}
	if got := e.get(r.ID); got.State != bot.StateActive {
		t.Fatalf("the reconciler touched a real grant: %s", got.State)
	}
	// Once alice's grant ends, her membership is gone too: nothing left to find.
	e.clock.Advance(time.Hour)
	e.drain()
	if found, _ := e.eng.Reconcile(e.ctx, e.dir); len(found) != 1 || found[0].User.Email != "mallory@example.com" {
		t.Fatalf("second round: %+v", found)
	}
}
