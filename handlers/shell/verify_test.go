package shell_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
)

// verifier stands in for package entra: every start hands out a new link.
type verifier struct {
	mu     sync.Mutex
	starts int
}

func (v *verifier) StartMFA(context.Context, *bot.Request) (bot.Challenge, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.starts++
	return bot.Challenge{URL: fmt.Sprintf("https://login.example.com/authorize?state=s%d", v.starts)}, nil
}

func (v *verifier) AuthContext() string { return "c1" }

func (v *verifier) count() int { v.mu.Lock(); defer v.mu.Unlock(); return v.starts }

// A sign-in that failed is not a dead end: `verify` gives the requester a fresh link, and
// nobody else gets one.
func TestShell_VerifyAgain(t *testing.T) {
	policy := strings.Replace(string(pimbot.ExamplePolicy), "    require_approval: false\n", "    require_approval: false\n    require_mfa: true\n", 1)
	v := &verifier{}
	tm := start(t, []byte(policy), func(e *bot.Engine) { e.SetMFA(v) })
	tm.expect(5*time.Second, "You are alice@example.com (Alice)")
	tm.do("/activate sandbox-admins for 2m", "first, verify with Microsoft (MFA)",
		"→ to alice: request", "needs MFA. Verify with Microsoft: https://login.example.com/authorize?state=s1", "(if the sign-in fails or runs out: verify ")
	tm.do("verify last", "→ to alice: request", "sandbox-admins needs MFA. Verify with Microsoft: https://login.example.com/authorize?state=s2")
	tm.do("status", "waiting for MFA", "verify ")

	tm.do("as bob", "You are now bob@example.com")
	tm.do("verify last", "You can't verify this: only the requester (alice@example.com) may verify it.")
	if n := v.count(); n != 2 {
		t.Fatalf("%d sign-ins started; a refused verify must start none", n)
	}
	tm.do("as alice", "You are now alice@example.com")
	tm.do("cancel last", "canceled")
	tm.do("verify last", "is canceled; it can no longer be")
	tm.do("verify R0000000", "No such request.")
	tm.do("verify", "Usage: verify <id>")
	if n := v.count(); n != 2 {
		t.Fatalf("%d sign-ins started, want 2", n)
	}
}
