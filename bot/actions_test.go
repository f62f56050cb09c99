package bot_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
)

// allActions is every action, in the engine's display order.
var allActions = []bot.Action{bot.ActApprove, bot.ActDeny, bot.ActVerify, bot.ActExtend, bot.ActDeactivate, bot.ActCancel}

// actionsPolicy is the test policy with a group that needs MFA and a group whose approvers
// are a directory group (erin, through sre@example.com).
func actionsPolicy(t *testing.T) string {
	t.Helper()
	return edit(t, testPolicy, "directory:\n", `  - name: stepped
    id: g-stepped
    eligible: [alice@example.com]
    approvers: [bob@example.com, carol@example.com]
    require_mfa: true
  - name: via-group
    id: g-via
    eligible: [alice@example.com]
    approvers: [group:sre@example.com]
directory:
`)
}

// downDirectory answers no lookup (errDown), as Graph when it is down.
type downDirectory struct{ bot.Directory }

func (downDirectory) ResolveUser(context.Context, string) (bot.User, error) {
	return bot.User{}, errDown
}
func (downDirectory) InGroup(context.Context, string, string) (bool, error) { return false, errDown }

// world is a request in one state, and the engine that judges it.
type world struct {
	*env
	judge *bot.Engine
	id    string
}

// activeProd is an active prod-db-admins grant of alice's (approved by bob).
func (e *env) activeProd(d time.Duration) string {
	e.t.Helper()
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Duration: d})
	if _, err := e.eng.Approve(e.ctx, e.actor("bob"), r.ID); err != nil {
		e.t.Fatal(err)
	}
	e.drain()
	if got := e.get(r.ID); got.State != bot.StateActive {
		e.t.Fatalf("state %s, want active", got.State)
	}
	return r.ID
}

func (e *env) must(_ *bot.Request, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// States of a request, each built afresh.
var actionStates = map[string]func(e *env) string{
	"verifying": func(e *env) string { return e.submit("alice", "stepped", bot.SubmitInput{}).ID },
	"pending":   func(e *env) string { return e.submit("alice", "prod-db-admins", bot.SubmitInput{}).ID },
	"scheduled": func(e *env) string {
		r := e.submit("alice", "prod-db-admins", bot.SubmitInput{Start: e.clock.Now().Add(time.Hour)})
		e.must(e.eng.Approve(e.ctx, e.actor("bob"), r.ID))
		return r.ID
	},
	"active":                func(e *env) string { return e.activeProd(time.Hour) },
	"active at its maximum": func(e *env) string { return e.activeProd(4 * time.Hour) }, // prod-db-admins allows 4h in all
	"active, being deactivated": func(e *env) string {
		id := e.activeProd(time.Hour)
		e.must(e.eng.Deactivate(e.ctx, e.actor("bob"), id)) // the end job has not run yet: EndReason is set
		return id
	},
	"active, grant being removed": func(e *env) string {
		id := e.activeProd(time.Hour)
		r := e.get(id)
		c := r.Clone()
		c.Grant = bot.GrantRemoving
		if err := e.store.Commit(e.ctx, &bot.Tx{Puts: []bot.Put{{Request: c, Expect: r.Version}}}); err != nil {
			e.t.Fatal(err)
		}
		return id
	},
	"ended": func(e *env) string {
		id := e.activeProd(time.Hour)
		e.must(e.eng.Deactivate(e.ctx, e.actor("alice"), id))
		e.drain()
		return id
	},
	"denied": func(e *env) string {
		r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
		e.must(e.eng.Deny(e.ctx, e.actor("carol"), r.ID, "no"))
		return r.ID
	},
	"extension pending": func(e *env) string {
		id := e.activeProd(time.Hour)
		x, err := e.eng.Extend(e.ctx, e.actor("alice"), id, 30*time.Minute, "")
		e.must(x, err)
		return x.ID
	},
	"extension record marked active": func(e *env) string { // never so: an extension is pending, then applied
		id := e.activeProd(time.Hour)
		x, err := e.eng.Extend(e.ctx, e.actor("alice"), id, 30*time.Minute, "")
		e.must(x, err)
		c := e.get(x.ID).Clone()
		c.State = bot.StateActive
		if err := e.store.Commit(e.ctx, &bot.Tx{Puts: []bot.Put{{Request: c, Expect: c.Version}}}); err != nil {
			e.t.Fatal(err)
		}
		return x.ID
	},
	"self, pending":          func(e *env) string { return e.submit("bob", "self", bot.SubmitInput{}).ID },
	"self-approval, pending": func(e *env) string { return e.submit("bob", "selfok", bot.SubmitInput{}).ID },
	"via a directory group":  func(e *env) string { return e.submit("alice", "via-group", bot.SubmitInput{}).ID },
	"quorum, one approval in": func(e *env) string {
		r := e.submit("alice", "quorum", bot.SubmitInput{})
		e.must(e.eng.Approve(e.ctx, e.actor("bob"), r.ID))
		return r.ID
	},
}

// A world's condition besides the request's state.
type condition int

const (
	healthy      condition = iota
	disabled               // the person's directory account is disabled
	directoryOut           // the directory does not answer
	groupGone              // the request's group is no longer in the policy
	notEligible            // the policy no longer names the requester eligible for the group
)

func (c condition) String() string {
	return [...]string{"", ", account disabled", ", directory down", ", group gone", ", no longer eligible"}[c]
}

func newWorld(t *testing.T, state string, who string, cond condition) world {
	t.Helper()
	e := newEnvPolicy(t, actionsPolicy(t))
	e.eng.SetMFA(&freshLinks{})
	w := world{env: e, judge: e.eng, id: actionStates[state](e)}
	switch cond {
	case disabled:
		if err := e.dir.SetDisabled(who+"@example.com", true); err != nil {
			t.Fatal(err)
		}
	case directoryOut:
		w.judge = bot.New(bot.Config{Policy: e.pol, Store: e.store, Directory: downDirectory{e.dir}, Clock: e.clock})
		w.judge.SetMFA(&freshLinks{})
	case groupGone, notEligible:
		changed := edit(t, actionsPolicy(t), "id: g-prod\n", "id: g-prod-renamed\n")
		if cond == notEligible {
			changed = edit(t, actionsPolicy(t), "eligible: [alice@example.com, group:sre@example.com]", "eligible: [group:sre@example.com]")
		}
		pol, err := policyfile.Parse("test.yaml", []byte(changed))
		if err != nil {
			t.Fatal(err)
		}
		w.judge = bot.New(bot.Config{Policy: pol, Store: e.store, Directory: e.dir, Clock: e.clock})
		w.judge.SetMFA(&freshLinks{})
	}
	return w
}

// take asks the engine to do the action, as a surface does when the person clicks.
func take(w world, act bot.Action, a bot.Actor) error {
	var err error
	switch act {
	case bot.ActApprove:
		_, err = w.judge.Approve(w.ctx, a, w.id)
	case bot.ActDeny:
		_, err = w.judge.Deny(w.ctx, a, w.id, "no")
	case bot.ActVerify:
		_, _, err = w.judge.VerifyAgain(w.ctx, a, w.id)
	case bot.ActExtend:
		_, err = w.judge.Extend(w.ctx, a, w.id, 0, "") // what a button asks: the default, within the room
	case bot.ActDeactivate:
		_, err = w.judge.Deactivate(w.ctx, a, w.id)
	case bot.ActCancel:
		_, err = w.judge.Cancel(w.ctx, a, w.id)
	default:
		err = fmt.Errorf("the test does not know %q", act)
	}
	return err
}

func acts(xs ...bot.Action) []bot.Action { return xs }

// Given a request in a state and a person, when the engine is asked what they may do, then
// it lists exactly the expected actions; and every action listed is one the engine accepts
// when it is taken, every action left out one it refuses (without changing the request).
func TestActions_AreWhatTheEngineAccepts(t *testing.T) {
	cases := []struct {
		state string
		who   string
		cond  condition
		want  []bot.Action
	}{
		{"verifying", "alice", healthy, acts(bot.ActVerify, bot.ActCancel)},
		{"verifying", "carol", healthy, nil},
		{"verifying", "mallory", healthy, nil},
		{"pending", "alice", healthy, acts(bot.ActCancel)},
		{"pending", "carol", healthy, acts(bot.ActApprove, bot.ActDeny)},
		{"pending", "mallory", healthy, nil},
		{"scheduled", "alice", healthy, acts(bot.ActCancel)},
		{"scheduled", "carol", healthy, acts(bot.ActDeactivate)}, // an approver may stop it before it starts
		{"scheduled", "mallory", healthy, nil},
		{"active", "alice", healthy, acts(bot.ActExtend, bot.ActDeactivate)},
		{"active", "carol", healthy, acts(bot.ActDeactivate)},
		{"active", "mallory", healthy, nil},
		{"active", "erin", healthy, nil}, // eligible for the group, but it is not her grant
		{"active at its maximum", "alice", healthy, acts(bot.ActDeactivate)},
		{"active at its maximum", "carol", healthy, acts(bot.ActDeactivate)},
		{"active, being deactivated", "alice", healthy, nil},
		{"active, being deactivated", "carol", healthy, nil},
		{"active, being deactivated", "mallory", healthy, nil},
		{"active, grant being removed", "alice", healthy, nil},
		{"active, grant being removed", "carol", healthy, nil},
		{"active, grant being removed", "mallory", healthy, nil},
		{"ended", "alice", healthy, nil},
		{"ended", "carol", healthy, nil},
		{"ended", "mallory", healthy, nil},
		{"denied", "alice", healthy, nil},
		{"denied", "carol", healthy, nil},
		{"extension pending", "alice", healthy, acts(bot.ActCancel)},
		{"extension pending", "carol", healthy, acts(bot.ActApprove, bot.ActDeny)},
		{"extension pending", "mallory", healthy, nil},
		{"extension record marked active", "alice", healthy, nil}, // only an activation holds a grant
		{"extension record marked active", "carol", healthy, nil},
		// Deciding one's own request: only where the group allows it.
		{"self, pending", "bob", healthy, acts(bot.ActCancel)},
		{"self, pending", "carol", healthy, acts(bot.ActApprove, bot.ActDeny)},
		{"self-approval, pending", "bob", healthy, acts(bot.ActApprove, bot.ActDeny, bot.ActCancel)},
		// One approval per approver; a voter may still deny.
		{"quorum, one approval in", "bob", healthy, acts(bot.ActDeny)},
		{"quorum, one approval in", "carol", healthy, acts(bot.ActApprove, bot.ActDeny)},
		// Approvers named by a directory group.
		{"via a directory group", "erin", healthy, acts(bot.ActApprove, bot.ActDeny)},
		{"via a directory group", "alice", healthy, acts(bot.ActCancel)},
		{"via a directory group", "mallory", healthy, nil},
		// A disabled account may end access, not ask for more or decide.
		{"pending", "carol", disabled, nil},
		{"active", "carol", disabled, acts(bot.ActDeactivate)},
		{"active", "alice", disabled, acts(bot.ActDeactivate)},
		{"verifying", "alice", disabled, acts(bot.ActCancel)},
		// A directory that does not answer: what needs it is not offered.
		{"via a directory group", "erin", directoryOut, nil},
		{"pending", "carol", directoryOut, nil},
		{"active", "alice", directoryOut, acts(bot.ActDeactivate)},
		{"active", "carol", directoryOut, acts(bot.ActDeactivate)},
		{"verifying", "alice", directoryOut, acts(bot.ActCancel)},
		// A group no longer in the policy: its requester may still end what they have.
		{"pending", "alice", groupGone, acts(bot.ActCancel)},
		{"pending", "carol", groupGone, nil},
		{"active", "alice", groupGone, acts(bot.ActDeactivate)},
		{"active", "carol", groupGone, nil},
		// No longer eligible: no more time, but the grant may still end early.
		{"active", "alice", notEligible, acts(bot.ActDeactivate)},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s%s", c.state, c.who, c.cond), func(t *testing.T) {
			w := newWorld(t, c.state, c.who, c.cond)
			a := w.actor(c.who)
			got := w.judge.Actions(w.ctx, a, w.get(w.id))
			if !slices.Equal(got, c.want) {
				t.Fatalf("Actions = %v, want %v", got, c.want)
			}
			for _, act := range allActions {
				w := newWorld(t, c.state, c.who, c.cond)
				before := w.get(w.id)
				err := take(w, act, w.actor(c.who))
				offered := slices.Contains(got, act)
				switch {
				case offered && err != nil:
					t.Errorf("%s is offered, but the engine refuses it: %v", act, err)
				case !offered && err == nil:
					t.Errorf("%s is not offered, but the engine accepts it", act)
				case !offered:
					if after := w.get(w.id); after.Version != before.Version {
						t.Errorf("a refused %s changed the request (v%d -> v%d)", act, before.Version, after.Version)
					}
					if err := w.judge.May(w.ctx, w.actor(c.who), before, act); err == nil {
						t.Errorf("May(%s) is nil for an action not offered", act)
					}
				}
			}
		})
	}
}

// A message shared by all the approvers (a channel post) shows what Actions offers an
// approver who is not the requester and has not voted yet: the decision, and ending the grant.
func TestApproverActions_AreWhatAnotherApproverIsOffered(t *testing.T) {
	for state := range actionStates {
		t.Run(state, func(t *testing.T) {
			e := newEnvPolicy(t, actionsPolicy(t))
			e.eng.SetMFA(&freshLinks{})
			r := e.get(actionStates[state](e))
			// An approver of the group who is not the requester and has not voted.
			approver, ok := map[string]string{"g-prod": "carol", "g-quorum": "carol", "g-self": "carol", "g-stepped": "carol", "g-via": "erin"}[r.GroupID]
			if !ok {
				t.Skip("the group has no approver but the requester")
			}
			var want []bot.Action
			for _, act := range e.eng.Actions(e.ctx, e.actor(approver), r) {
				switch act {
				case bot.ActApprove, bot.ActDeny, bot.ActDeactivate, bot.ActRevoke, bot.ActLooksGood:
					want = append(want, act)
				}
			}
			if got := e.eng.ApproverActions(r); !slices.Equal(got, want) {
				t.Fatalf("ApproverActions = %v, Actions for %s = %v", got, approver, want)
			}
		})
	}
}

// The room an extension may ask for is what Extend accepts: all of it, not a minute more; and
// an extension asked without a duration takes the group's default, within the room.
func TestExtensionRoom_IsWhatExtendAccepts(t *testing.T) {
	for _, c := range []struct {
		name     string
		d        time.Duration // the grant's duration (prod-db-admins: 4h at most, 1h by default)
		room     time.Duration
		ok       bool
		fallback time.Duration
	}{
		{"plenty of room", time.Hour, 3 * time.Hour, true, time.Hour},
		{"less room than the default", 3*time.Hour + 30*time.Minute, 30 * time.Minute, true, 30 * time.Minute},
		{"no room", 4 * time.Hour, 0, false, time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.activeProd(c.d)
			r := e.get(id)
			room, ok := e.eng.ExtensionRoom(r)
			if room != c.room || ok != c.ok {
				t.Fatalf("ExtensionRoom = %s, %v; want %s, %v", room, ok, c.room, c.ok)
			}
			if got := e.eng.ExtensionDefault(r); got != c.fallback {
				t.Fatalf("ExtensionDefault = %s, want %s", got, c.fallback)
			}
			alice := e.actor("alice")
			var fe *bot.FieldError
			if _, err := e.eng.Extend(e.ctx, alice, id, room+time.Minute, ""); !errors.As(err, &fe) || fe.Field != bot.FieldDuration {
				t.Fatalf("a minute more than the room: %v", err)
			}
			if !ok {
				if _, err := e.eng.Extend(e.ctx, alice, id, 0, ""); !errors.As(err, &fe) {
					t.Fatalf("no room, yet: %v", err)
				}
				return
			}
			x, err := e.eng.Extend(e.ctx, alice, id, 0, "")
			if err != nil {
				t.Fatal(err)
			}
			if x.Duration != c.fallback {
				t.Fatalf("an extension without a duration asks for %s, want %s", x.Duration, c.fallback)
			}
			if _, err := e.eng.Cancel(e.ctx, alice, x.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := e.eng.Extend(e.ctx, alice, id, room, ""); err != nil {
				t.Fatalf("all of the room: %v", err)
			}
		})
	}
}

// A surface that asks before opening a form gets the request, or the engine's refusal.
func TestPrecheck_GivesTheRequestOrTheRefusal(t *testing.T) {
	e := newEnvPolicy(t, actionsPolicy(t))
	id := e.submit("alice", "prod-db-admins", bot.SubmitInput{}).ID
	if r, err := e.eng.Precheck(e.ctx, e.actor("carol"), id, bot.ActDeny); err != nil || r.ID != id {
		t.Fatalf("an approver's deny: %v, %v", r, err)
	}
	var pe *bot.PermissionError
	if r, err := e.eng.Precheck(e.ctx, e.actor("mallory"), id, bot.ActDeny); !errors.As(err, &pe) || r != nil {
		t.Fatalf("someone else's deny: %v, %v", r, err)
	}
	var se *bot.StateError
	if _, err := e.eng.Precheck(e.ctx, e.actor("alice"), id, bot.ActExtend); !errors.As(err, &se) {
		t.Fatalf("extending a pending request: %v", err)
	}
	if _, err := e.eng.Precheck(e.ctx, e.actor("alice"), "ZZZZZZZZ", bot.ActCancel); !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("an unknown request: %v", err)
	}
}

// Before a grant starts, deactivating it is the wrong word: the engine says which one is right.
func TestDeactivate_BeforeTheStartSaysCancelOrDeny(t *testing.T) {
	e := newEnv(t)
	r := e.get(e.submit("alice", "prod-db-admins", bot.SubmitInput{}).ID)
	var pe *bot.PermissionError
	if _, err := e.eng.Deactivate(e.ctx, e.actor("alice"), r.ID); !errors.As(err, &pe) || pe.Reason != "it has not started; cancel it instead (cancel "+r.ID+")" {
		t.Fatalf("the requester: %v", err)
	}
	if _, err := e.eng.Deactivate(e.ctx, e.actor("carol"), r.ID); !errors.As(err, &pe) || pe.Reason != "it is not approved yet; deny it instead (deny "+r.ID+")" {
		t.Fatalf("an approver: %v", err)
	}
	if got := e.get(r.ID); got.State != bot.StatePending || got.Version != r.Version {
		t.Fatalf("refusals changed the request: %s v%d", got.State, got.Version)
	}
}

// countingDir counts the directory lookups the engine makes (the local directory answers).
type countingDir struct {
	*local.Directory
	resolves, inGroup atomic.Int64
}

func (d *countingDir) ResolveUser(ctx context.Context, ref string) (bot.User, error) {
	d.resolves.Add(1)
	return d.Directory.ResolveUser(ctx, ref)
}

func (d *countingDir) InGroup(ctx context.Context, userID, groupRef string) (bool, error) {
	d.inGroup.Add(1)
	return d.Directory.InGroup(ctx, userID, groupRef)
}

// Actions asks the directory about the acting person once, however many rules need it.
func TestActions_AskTheDirectoryOnce(t *testing.T) {
	e := newEnvPolicy(t, edit(t, testPolicy, "approvers: [bob@example.com, carol@example.com]\n    max_duration: 4h",
		"approvers: [bob@example.com, group:engineering@example.com]\n    max_duration: 4h"))
	r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
	d := &countingDir{Directory: e.dir}
	eng := bot.New(bot.Config{Policy: e.pol, Store: e.store, Directory: d, Clock: e.clock})
	got := eng.Actions(e.ctx, e.actor("erin"), r) // an approver through a directory group
	if !slices.Contains(got, bot.ActApprove) || !slices.Contains(got, bot.ActDeny) {
		t.Fatalf("actions %v", got)
	}
	if n := d.resolves.Load(); n != 1 {
		t.Fatalf("%d account lookups for one Actions call, want 1", n)
	}
	if n := d.inGroup.Load(); n > 1 {
		t.Fatalf("%d group lookups for one Actions call, want at most 1", n)
	}
}
