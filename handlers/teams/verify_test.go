package teams_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// verifier stands in for package entra: every start hands out a new link.
type verifier struct {
	mu     sync.Mutex
	starts int
}

func (v *verifier) StartMFA(_ context.Context, r *bot.Request) (bot.Challenge, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.starts++
	return bot.Challenge{URL: fmt.Sprintf("https://login.example.com/authorize?state=%s-%d", r.ID, v.starts)}, nil
}

func (v *verifier) AuthContext() string { return "c1" }

func (v *verifier) started() int { v.mu.Lock(); defer v.mu.Unlock(); return v.starts }

const mfaGroup = `  - name: secure
    id: 7c1e0f8a-0000-4000-8000-000000000009
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    require_mfa: true
`

// A sign-in that failed or ran out is not a dead end: `verify <id>` and the card's "Verify
// again" give the requester a fresh MFA card; anyone else is refused and nothing changes; in
// a channel the link is not shown.
func TestVerifyAgain_FreshCardForTheRequesterOnly(t *testing.T) {
	e := newEnvWith(t, strings.Replace(testPolicy, "groups:\n", "groups:\n"+mfaGroup, 1), true)
	v := &verifier{}
	e.eng.SetMFA(v)
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "activate secure for 1h rotating keys"))
	rs := e.requests(aliceID)
	if len(rs) != 1 || rs[0].State != bot.StateVerifying {
		t.Fatalf("requests: %+v", rs)
	}
	r := rs[0]
	e.drain()
	first := e.lastTo(chat.ID)
	mustContain(t, "the MFA card", teamsfake.Strings(first.Card()), "verify with Microsoft", "state="+r.ID+"-1", "Verify again")
	if !slices.Contains(verbs(first.Card()), "verify") {
		t.Fatalf("the MFA card has actions %v", verbs(first.Card()))
	}
	version := e.get(r.ID).Version

	// The requester types verify <id>: a fresh card with a fresh link.
	e.send(e.fake.Message(alice, chat, "verify "+r.ID))
	mustContain(t, "the answer to verify", teamsfake.Strings(e.lastTo(chat.ID).Card()), "Request "+r.ID+": verify with Microsoft", "state="+r.ID+"-2")

	// The card's button does the same.
	card := e.invoke(alice, chat, first.ActivityID, "verify", map[string]any{"verb": "verify", "requestId": r.ID}).card(t)
	mustContain(t, "the answer to Verify again", teamsfake.Strings(card), "state="+r.ID+"-3")

	// Someone else, by text or by a click with the id: refused.
	mchat := e.fake.Personal(mallory)
	e.send(e.fake.Message(mallory, mchat, "verify "+r.ID))
	mustContain(t, "the answer to mallory", teamsfake.Strings(e.lastTo(mchat.ID).Card()), "You can't verify this: only the requester (alice@example.com)")
	msg := e.invoke(mallory, mchat, first.ActivityID, "verify", map[string]any{"verb": "verify", "requestId": r.ID}).message(t)
	mustContain(t, "the answer to mallory's click", msg, "You can't verify this")

	// In a channel the link is not shown, to anyone.
	thread := e.fake.Channel("19:ops@thread.tacv2", teamID)
	e.send(e.fake.Message(alice, thread, "verify "+r.ID))
	got := teamsfake.Strings(e.lastTo(thread.ID).Card())
	mustContain(t, "the answer in a channel", got, "personal chat")
	if strings.Contains(got, "login.example.com") {
		t.Fatalf("a sign-in link was posted in a channel: %s", got)
	}

	if n := v.started(); n != 3 {
		t.Fatalf("%d sign-ins started, want 3 (refusals start none)", n)
	}
	if got := e.get(r.ID); got.Version != version || got.State != bot.StateVerifying {
		t.Fatalf("verify changed the request: version %d→%d, state %s", version, got.Version, got.State)
	}
}
