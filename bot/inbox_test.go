package bot_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// inboxWorld holds requests in every state that matters to an approver, each made a minute
// after the one before: what each person's inbox should list is known by name.
type inboxWorld struct {
	*env
	ids map[string]string // name -> request id
}

func newInboxWorld(t *testing.T) inboxWorld {
	t.Helper()
	e := newEnvPolicy(t, actionsPolicy(t))
	e.eng.SetMFA(&freshLinks{})
	w := inboxWorld{env: e, ids: map[string]string{}}
	next := func(name string, id string) {
		w.ids[name] = id
		e.clock.Advance(time.Minute)
	}
	grant := e.activeProd(time.Hour) // alice's active prod-db-admins membership
	x, err := e.eng.Extend(e.ctx, e.actor("alice"), grant, 30*time.Minute, "")
	e.must(x, err)
	next("extension", x.ID)
	next("prod owner", e.submit("alice", "prod-db-admins", bot.SubmitInput{Access: bot.Owner}).ID)
	quorum := e.submit("alice", "quorum", bot.SubmitInput{})
	e.must(e.eng.Approve(e.ctx, e.actor("bob"), quorum.ID)) // one of two
	next("quorum, bob voted", quorum.ID)
	next("bob's own", e.submit("bob", "self", bot.SubmitInput{}).ID)
	next("bob's own, self-approval", e.submit("bob", "selfok", bot.SubmitInput{}).ID)
	next("via sre", e.submit("alice", "via-group", bot.SubmitInput{}).ID)
	denied := e.submit("erin", "prod-db-admins", bot.SubmitInput{})
	e.must(e.eng.Deny(e.ctx, e.actor("carol"), denied.ID, "no"))
	next("denied", denied.ID)
	next("verifying", e.submit("alice", "stepped", bot.SubmitInput{}).ID)
	scheduled := e.submit("bob", "quorum", bot.SubmitInput{Start: e.clock.Now().Add(time.Hour)})
	e.must(e.eng.Approve(e.ctx, e.actor("carol"), scheduled.ID))
	e.must(e.eng.Approve(e.ctx, e.actor("dave"), scheduled.ID))
	next("scheduled", scheduled.ID)
	return w
}

func (w inboxWorld) names(rs []*bot.Request) []string {
	byID := map[string]string{}
	for name, id := range w.ids {
		byID[id] = name
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = byID[r.ID]
		if out[i] == "" {
			out[i] = "unknown " + r.ID
		}
	}
	return out
}

// Given requests in every state, when each person asks for their inbox, then it lists the
// pending requests of the groups they approve that wait for their vote, oldest first: not
// another group's, not their own (unless the group allows self-approval), not a decided one,
// not one they approved already in a quorum group; and nothing for someone who approves nothing.
func TestInbox_ListsWhatWaitsForThePersonsDecision(t *testing.T) {
	w := newInboxWorld(t)
	for _, c := range []struct {
		who  string
		want []string
	}{
		{"carol", []string{"extension", "prod owner", "quorum, bob voted", "bob's own"}},
		{"bob", []string{"extension", "prod owner", "bob's own, self-approval"}},
		{"dave", []string{"quorum, bob voted"}},
		{"erin", []string{"via sre"}},
		{"alice", []string{}},
		{"mallory", []string{}},
	} {
		t.Run(c.who, func(t *testing.T) {
			rs, err := w.eng.Inbox(w.ctx, w.actor(c.who))
			if err != nil {
				t.Fatal(err)
			}
			if got := w.names(rs); !slices.Equal(got, c.want) {
				t.Fatalf("Inbox = %q, want %q", got, c.want)
			}
		})
	}
}

// The inbox is what the engine offers: a pending request is in it exactly when Actions
// offers the person Approve on it, and only pending requests are.
func TestInbox_IsWhatActionsOffers(t *testing.T) {
	w := newInboxWorld(t)
	for _, who := range []string{"alice", "bob", "carol", "dave", "erin", "mallory"} {
		a := w.actor(who)
		rs, err := w.eng.Inbox(w.ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, r := range rs {
			listed[r.ID] = true
			if r.State != bot.StatePending {
				t.Errorf("%s's inbox lists %s, which is %s", who, r.ID, r.State)
			}
		}
		for name, id := range w.ids {
			offered := slices.Contains(w.eng.Actions(w.ctx, a, w.get(id)), bot.ActApprove)
			if listed[id] != offered {
				t.Errorf("%s, %s: listed %v, Approve offered %v", who, name, listed[id], offered)
			}
		}
	}
}

// A disabled account decides nothing, so nothing waits for it.
func TestInbox_DisabledApproverSeesNone(t *testing.T) {
	w := newInboxWorld(t)
	if err := w.dir.SetDisabled("carol@example.com", true); err != nil {
		t.Fatal(err)
	}
	rs, err := w.eng.Inbox(w.ctx, w.actor("carol"))
	if err != nil || len(rs) != 0 {
		t.Fatalf("Inbox = %q, %v; want none", w.names(rs), err)
	}
}

// faultyStore fails the calls the inbox makes, as Redis does when it is down.
type faultyStore struct {
	bot.Store
	openErr, getErr error
}

func (s faultyStore) OpenRequests(ctx context.Context) (map[string]string, error) {
	if s.openErr != nil {
		return nil, s.openErr
	}
	return s.Store.OpenRequests(ctx)
}

func (s faultyStore) Get(ctx context.Context, id string) (*bot.Request, error) {
	if s.getErr != nil {
		return nil, s.getErr
	}
	return s.Store.Get(ctx, id)
}

// When the store or the directory does not answer, the inbox says so: never a list that
// may be missing what waits.
func TestInbox_UnavailableIsAnErrorNotAShortList(t *testing.T) {
	w := newInboxWorld(t)
	errRedis := errors.New("redis: connection refused")
	for _, c := range []struct {
		name  string
		store bot.Store
		dir   bot.Directory
		cause error
	}{
		{"directory down", w.store, downDirectory{w.dir}, errDown},
		{"open requests unreadable", faultyStore{Store: w.store, openErr: errRedis}, w.dir, errRedis},
		{"a request unreadable", faultyStore{Store: w.store, getErr: errRedis}, w.dir, errRedis},
	} {
		t.Run(c.name, func(t *testing.T) {
			eng := bot.New(bot.Config{Policy: w.pol, Store: c.store, Directory: c.dir, Clock: w.clock})
			rs, err := eng.Inbox(w.ctx, w.actor("carol"))
			if !errors.Is(err, bot.ErrUnavailable) || !errors.Is(err, c.cause) || rs != nil {
				t.Fatalf("Inbox = %d requests, %v; want an unavailable error wrapping %v", len(rs), err, c.cause)
			}
		})
	}
}

// With nothing open, the inbox is empty (and asks the directory nothing).
func TestInbox_EmptyWhenNothingIsOpen(t *testing.T) {
	e := newEnv(t)
	eng := bot.New(bot.Config{Policy: e.pol, Store: e.store, Directory: downDirectory{e.dir}, Clock: e.clock})
	rs, err := eng.Inbox(e.ctx, e.actor("carol"))
	if err != nil || len(rs) != 0 {
		t.Fatalf("Inbox = %d requests, %v", len(rs), err)
	}
}
