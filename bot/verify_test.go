package bot_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/pimbot/pimbot/bot"
)

// freshLinks stands in for package entra and hands out a new link on every start, so that a
// test can tell a fresh challenge from the one sent with the request.
type freshLinks struct {
	mu     sync.Mutex
	starts int
}

func (f *freshLinks) StartMFA(_ context.Context, r *bot.Request) (bot.Challenge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	return bot.Challenge{URL: fmt.Sprintf("https://login.example.com/authorize?state=%s-%d", r.ID, f.starts)}, nil
}
func (f *freshLinks) AuthContext() string { return "c1" }

func (f *freshLinks) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.starts }

// Verifying again is the requester's own, and only while the request waits for MFA; the
// engine decides, every surface asks it. Asking writes nothing, refused or not.
func TestVerifyAgain_OnlyTheRequesterOnlyWhileVerifying(t *testing.T) {
	policy := edit(t, testPolicy, "    require_approval: false\n    require_justification: false\n    min_duration: 1s",
		"    require_approval: false\n    require_mfa: true\n    require_justification: false\n    min_duration: 1s")
	cases := []struct {
		name   string
		who    string
		before func(e *env, r *bot.Request) string // returns the id to ask for
		check  func(t *testing.T, err error)
	}{
		{"given the requester, then a fresh challenge", "alice", nil, func(t *testing.T, err error) {
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
		}},
		{"given someone else, then a permission error", "bob", nil, func(t *testing.T, err error) {
			var pe *bot.PermissionError
			if !errors.As(err, &pe) || pe.Action != "verify" {
				t.Fatalf("err = %v, want a PermissionError", err)
			}
		}},
		{"given a request no longer verifying, then a state error", "alice", func(e *env, r *bot.Request) string {
			if _, err := e.eng.Cancel(e.ctx, e.actor("alice"), r.ID); err != nil {
				e.t.Fatal(err)
			}
			e.drain()
			return r.ID
		}, func(t *testing.T, err error) {
			var se *bot.StateError
			if !errors.As(err, &se) || se.State != bot.StateCanceled {
				t.Fatalf("err = %v, want a StateError", err)
			}
		}},
		{"given an unknown id, then not found", "alice", func(e *env, r *bot.Request) string { return "ZZZZZZZZ" }, func(t *testing.T, err error) {
			if !errors.Is(err, bot.ErrNotFound) {
				t.Fatalf("err = %v, want ErrNotFound", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvPolicy(t, policy)
			v := &freshLinks{}
			e.eng.SetMFA(v)
			r := e.submit("alice", "sandbox", bot.SubmitInput{})
			if r.State != bot.StateVerifying {
				t.Fatalf("state %s", r.State)
			}
			id := r.ID
			if c.before != nil {
				id = c.before(e, r)
			}
			e.drain()
			before, events, starts := e.get(r.ID), len(e.rec.types(r.ID)), v.count()

			got, ch, err := e.eng.VerifyAgain(e.ctx, e.actor(c.who), id)
			c.check(t, err)
			if err == nil {
				want := fmt.Sprintf("https://login.example.com/authorize?state=%s-%d", r.ID, starts+1)
				if got == nil || got.ID != r.ID || got.State != bot.StateVerifying || ch.URL != want {
					t.Fatalf("got %+v, challenge %q; want request %s verifying, challenge %q", got, ch.URL, r.ID, want)
				}
			} else if v.count() != starts {
				t.Fatal("a refused ask started a sign-in")
			}
			after := e.get(r.ID)
			if after.Version != before.Version || after.State != before.State {
				t.Fatalf("the request changed: version %d→%d, state %s→%s", before.Version, after.Version, before.State, after.State)
			}
			if n, err := e.eng.RunDue(e.ctx); err != nil || n != 0 {
				t.Fatalf("asking scheduled %d jobs (%v)", n, err)
			}
			if len(e.rec.types(r.ID)) != events {
				t.Fatalf("asking told people something: %v", e.rec.types(r.ID))
			}
		})
	}
}
