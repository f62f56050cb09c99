package conformance_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// story is one lifecycle story; it runs on every surface with the same expectations.
type story struct {
	name string
	run  func(t *testing.T, d Driver)
}

var stories = []story{
	{"grant_approved_then_expires", grantApprovedThenExpires},
	{"deny_with_reason", denyWithReason},
	{"cancel_by_requester_only", cancelByRequesterOnly},
	{"extension_moves_the_end", extensionMovesTheEnd},
	{"quorum_of_two", quorumOfTwo},
	{"on_call_auto_approval_reviewed_and_revoked", onCallAutoApproval},
}

func TestConformance(t *testing.T) {
	for _, st := range stories {
		t.Run(st.name, func(t *testing.T) {
			for _, sf := range surfaces {
				t.Run(sf.name, func(t *testing.T) {
					t.Parallel()
					st.run(t, sf.start(t))
				})
			}
		})
	}
}

// mustSucceed takes an action that the story needs to succeed.
func mustSucceed(t *testing.T, d Driver, p Person, act bot.Action, id, reason string) Outcome {
	t.Helper()
	o := d.Act(p, act, id, reason)
	if o.Refused {
		t.Fatalf("%s's %s of %s was refused: %s", p.Key, act, id, o.Text)
	}
	return o
}

func wantState(t *testing.T, d Driver, id string, want bot.State) *bot.Request {
	t.Helper()
	r := d.World().get(id)
	if r.State != want {
		t.Fatalf("request %s is %s, want %s", id, r.State, want)
	}
	return r
}

// Given a pending request, when an approver approves it, then the directory holds the
// access until its end and no longer after; the requester is told submitted, approved,
// active and ended, in that order.
func grantApprovedThenExpires(t *testing.T, d Driver) {
	w := d.World()
	id := d.Request(alice, "prod-db", bot.Member, time.Hour, "db migration")
	d.Drain()
	wantState(t, d, id, bot.StatePending)
	mustSucceed(t, d, bob, bot.ActApprove, id, "")
	d.Drain()
	wantState(t, d, id, bot.StateActive)
	if !w.holds(alice, prodID, bot.Member) {
		t.Fatal("active, but the directory does not hold the grant")
	}
	d.Advance(time.Hour)
	wantState(t, d, id, bot.StateEnded)
	if w.holds(alice, prodID, bot.Member) {
		t.Fatal("ended, but the directory still holds the grant")
	}
	told := about(d.Told(alice), id)
	if got, want := steps(told), []string{"submitted", "approved", "active", "ended"}; !slices.Equal(got, want) {
		t.Errorf("the requester was told %v, want %v; the messages:\n%s", got, want, strings.Join(told, "\n---\n"))
	}
}

// Given a pending request, when an approver denies it with a reason, then the requester
// is told who denied it and why, and nothing is granted.
func denyWithReason(t *testing.T, d Driver) {
	w := d.World()
	id := d.Request(alice, "prod-db", bot.Member, time.Hour, "db migration")
	d.Drain()
	d.Told(alice)
	const why = "use the read replica instead"
	mustSucceed(t, d, carol, bot.ActDeny, id, why)
	d.Drain()
	r := wantState(t, d, id, bot.StateDenied)
	if r.DenyReason != why {
		t.Errorf("deny reason %q, want %q", r.DenyReason, why)
	}
	if w.holds(alice, prodID, bot.Member) {
		t.Error("denied, but the directory holds the grant")
	}
	told := about(d.Told(alice), id)
	var said bool
	for _, m := range told {
		l := strings.ToLower(m)
		said = said || (kind(m) == "denied" && strings.Contains(l, "carol") && strings.Contains(m, why))
	}
	if !said {
		t.Errorf("the requester was not told that carol denied it and why; told:\n%s", strings.Join(told, "\n---\n"))
	}
}

// Given a pending request, a cancel by someone else is refused and changes nothing; the
// requester's own cancel ends it, and nothing is granted.
func cancelByRequesterOnly(t *testing.T, d Driver) {
	w := d.World()
	id := d.Request(alice, "prod-db", bot.Member, time.Hour, "db migration")
	d.Drain()
	before := snapshot(w, id)
	if o := d.Act(bob, bot.ActCancel, id, ""); !o.Refused || snapshot(w, id) != before {
		t.Errorf("bob's cancel of alice's request was not refused (answer %q)", o.Text)
	}
	wantState(t, d, id, bot.StatePending)
	mustSucceed(t, d, alice, bot.ActCancel, id, "")
	d.Drain()
	wantState(t, d, id, bot.StateCanceled)
	if w.holds(alice, prodID, bot.Member) {
		t.Error("canceled, but the directory holds the grant")
	}
}

// Given an active grant, when its requester asks for more time and an approver approves the
// extension, then the end moves and the approvers are told when it takes effect.
func extensionMovesTheEnd(t *testing.T, d Driver) {
	w := d.World()
	id := d.Request(alice, "prod-db", bot.Member, time.Hour, "db migration")
	d.Drain()
	mustSucceed(t, d, bob, bot.ActApprove, id, "")
	d.Drain()
	end := wantState(t, d, id, bot.StateActive).EndsAt
	mustSucceed(t, d, alice, bot.ActExtend, id, "still migrating")
	d.Drain()
	rs, err := w.store.ListByUser(w.ctx, alice.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ext string
	for _, r := range rs {
		if r.Kind == bot.KindExtend && r.ParentID == id {
			ext = r.ID
		}
	}
	if ext == "" {
		t.Fatal("no extension request was made")
	}
	wantState(t, d, ext, bot.StatePending)
	for _, p := range []Person{bob, carol} {
		d.Told(p)
	}
	mustSucceed(t, d, carol, bot.ActApprove, ext, "")
	d.Drain()
	if got := wantState(t, d, id, bot.StateActive).EndsAt; !got.After(end) {
		t.Fatalf("the grant still ends at %s (it ended at %s before the extension)", got, end)
	}
	for _, p := range []Person{bob, carol} {
		told := d.Told(p)
		var said bool
		for _, m := range told {
			l := strings.ToLower(m)
			said = said || ((strings.Contains(m, id) || strings.Contains(m, ext)) && (strings.Contains(l, "now ends") || strings.Contains(l, "extended") || strings.Contains(l, "applied")))
		}
		if !said {
			t.Errorf("approver %s was not told that the extension took effect; told since it was approved:\n%s", p.Key, strings.Join(told, "\n---\n"))
		}
	}
}

// Given a group that needs two approvals, one approval leaves the request pending (the same
// approver cannot approve twice), and a second approver's makes it active.
func quorumOfTwo(t *testing.T, d Driver) {
	w := d.World()
	id := d.Request(alice, "quorum", bot.Member, time.Hour, "rotate keys")
	d.Drain()
	mustSucceed(t, d, bob, bot.ActApprove, id, "")
	d.Drain()
	if r := wantState(t, d, id, bot.StatePending); len(r.Approvals) != 1 {
		t.Fatalf("%d approvals after one", len(r.Approvals))
	}
	before := snapshot(w, id)
	if o := d.Act(bob, bot.ActApprove, id, ""); !o.Refused || snapshot(w, id) != before {
		t.Errorf("bob's second approval was not refused (answer %q)", o.Text)
	}
	mustSucceed(t, d, carol, bot.ActApprove, id, "")
	d.Drain()
	wantState(t, d, id, bot.StateActive)
	if !w.holds(alice, quorumID, bot.Member) {
		t.Fatal("active, but the directory does not hold the grant")
	}
}

// Given a requester on call in a group with auto_approve, the request is approved at once;
// the approvers see Revoke and Looks good (as the engine offers them); Looks good by one
// approver takes it out of their inbox; Revoke ends the grant.
func onCallAutoApproval(t *testing.T, d Driver) {
	w := d.World()
	id := d.Request(alice, "oncall-db", bot.Member, time.Hour, "paged: replica lag")
	d.Drain()
	r := wantState(t, d, id, bot.StateActive)
	if r.AutoApproval == nil || !w.holds(alice, oncallID, bot.Member) {
		t.Fatalf("not approved automatically (auto approval %v, held %v)", r.AutoApproval, w.holds(alice, oncallID, bot.Member))
	}
	for _, p := range []Person{bob, carol} {
		want := w.actions(p, id)
		if !slices.Contains(want, bot.ActRevoke) || !slices.Contains(want, bot.ActLooksGood) {
			t.Fatalf("the engine offers %s %v, want revoke and looks_good among them", p.Key, want)
		}
		if got := sorted(d.Offered(p, id)); !slices.Equal(got, sorted(want)) {
			t.Errorf("%s is shown %v, the engine offers %v", p.Key, got, want)
		}
	}
	if !slices.Contains(d.Pending(carol), id) {
		t.Fatalf("the automatic approval is not in carol's inbox")
	}
	mustSucceed(t, d, carol, bot.ActLooksGood, id, "")
	d.Drain()
	for _, p := range []Person{carol, bob} {
		if slices.Contains(d.Pending(p), id) {
			t.Errorf("reviewed, the automatic approval is still in %s's inbox", p.Key)
		}
	}
	mustSucceed(t, d, bob, bot.ActRevoke, id, "")
	d.Drain()
	wantState(t, d, id, bot.StateEnded)
	if w.holds(alice, oncallID, bot.Member) {
		t.Error("revoked, but the directory still holds the grant")
	}
}
