package bot_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// stepUp stands in for package entra's sign-in: the engine's decision is under test.
type stepUp struct{ context string }

func (s stepUp) StartMFA(context.Context, *bot.Request) (bot.Challenge, error) {
	return bot.Challenge{URL: "https://login.example.com/authorize"}, nil
}
func (s stepUp) AuthContext() string { return s.context }

// Whether a sign-in proves the step-up is the engine's decision: the requester's own, the
// configured authentication context satisfied (amr alone never counts), and at a time
// between the request and its MFA timeout, within one clock-skew allowance.
func TestStepUp_TheEngineDecides(t *testing.T) {
	policy := edit(t, testPolicy, "    require_approval: false\n    require_justification: false\n    min_duration: 1s",
		"    require_approval: false\n    require_mfa: true\n    require_justification: false\n    min_duration: 1s")
	alice := func(e *env) string { return e.actor("alice").User.ID }
	cases := []struct {
		name  string
		proof func(e *env, made time.Time) bot.StepUpProof
		why   string // "" means: verified
	}{
		{"the requester, context satisfied, just now", func(e *env, made time.Time) bot.StepUpProof {
			return bot.StepUpProof{UserID: alice(e), AuthTime: made.Add(time.Minute), ACRS: []string{"c1"}}
		}, ""},
		{"within the clock skew before the request", func(e *env, made time.Time) bot.StepUpProof {
			return bot.StepUpProof{UserID: alice(e), AuthTime: made.Add(-bot.ClockSkew + time.Second), ACRS: []string{"c1"}}
		}, ""},
		{"someone else", func(e *env, made time.Time) bot.StepUpProof {
			return bot.StepUpProof{UserID: e.actor("bob").User.ID, AuthTime: made.Add(time.Minute), ACRS: []string{"c1"}}
		}, "someone else than the requester"},
		{"amr says mfa, no context", func(e *env, made time.Time) bot.StepUpProof {
			return bot.StepUpProof{UserID: alice(e), AuthTime: made.Add(time.Minute), AMR: []string{"pwd", "mfa"}}
		}, "did not satisfy the authentication context c1"},
		{"another context", func(e *env, made time.Time) bot.StepUpProof {
			return bot.StepUpProof{UserID: alice(e), AuthTime: made.Add(time.Minute), ACRS: []string{"c2"}}
		}, "did not satisfy the authentication context c1"},
		{"no auth_time", func(e *env, made time.Time) bot.StepUpProof {
			return bot.StepUpProof{UserID: alice(e), ACRS: []string{"c1"}}
		}, "did not say when you authenticated"},
		{"an old sign-in", func(e *env, made time.Time) bot.StepUpProof {
			return bot.StepUpProof{UserID: alice(e), AuthTime: made.Add(-bot.ClockSkew - time.Second), ACRS: []string{"c1"}}
		}, "older than the request"},
		{"in the future", func(e *env, made time.Time) bot.StepUpProof {
			return bot.StepUpProof{UserID: alice(e), AuthTime: made.Add(time.Minute + bot.ClockSkew + time.Second), ACRS: []string{"c1"}}
		}, "in the future"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvPolicy(t, policy)
			e.eng.SetMFA(stepUp{context: "c1"})
			r := e.submit("alice", "sandbox", bot.SubmitInput{})
			if r.State != bot.StateVerifying {
				t.Fatalf("state %s", r.State)
			}
			e.clock.Advance(time.Minute)
			got, err := e.eng.MFAVerified(e.ctx, r.ID, c.proof(e, r.CreatedAt))
			if c.why == "" {
				if err != nil || got.State == bot.StateVerifying || got.MFAVerifiedAt.IsZero() {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var pe *bot.PermissionError
			if !errors.As(err, &pe) || !strings.Contains(pe.Reason, c.why) {
				t.Fatalf("err = %v, want %q", err, c.why)
			}
			if e.get(r.ID).State != bot.StateVerifying {
				t.Fatal("a refused sign-in moved the request")
			}
		})
	}
}
