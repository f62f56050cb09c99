package conformance_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// role is one column of the authorization matrix: a person and how they stand to the
// request (the quorum group: bob votes first, carol second; erin never votes; dave's
// account is disabled; mallory is in no group of the policy).
type role struct {
	name string
	p    Person
}

var roles = []role{
	{"requester", alice},
	{"approver", erin},
	{"approver_after_a_vote", bob},
	{"stranger", mallory},
	{"disabled_approver", dave},
}

var matrixActions = []bot.Action{bot.ActApprove, bot.ActDeny, bot.ActCancel, bot.ActDeactivate, bot.ActExtend}

// matrixState is a row of the matrix: how the request got where it is.
type matrixState struct {
	name string
	want bot.State
}

var matrixStates = []matrixState{
	{"pending", bot.StatePending}, // bob approved; one more approval needed
	{"active", bot.StateActive},   // bob and carol approved; the directory holds it
}

// matrixRequest makes alice's quorum request and brings it to the state, through the surface.
func matrixRequest(t *testing.T, d Driver, st matrixState) string {
	t.Helper()
	id := d.Request(alice, "quorum", bot.Member, time.Hour, "authorization matrix")
	d.Drain()
	mustSucceed(t, d, bob, bot.ActApprove, id, "")
	d.Drain()
	if st.want == bot.StateActive {
		mustSucceed(t, d, carol, bot.ActApprove, id, "")
		d.Drain()
	}
	wantState(t, d, id, st.want)
	return id
}

// For each request state × person × action: what the surface shows the person is what
// bot.Engine.Actions offers them (no button the engine refuses, none hidden that it allows),
// and the action taken on the surface succeeds exactly when the engine offers it. Each
// cell acts on a request of its own, so that no cell depends on another.
func TestAuthorizationMatrix(t *testing.T) {
	for _, sf := range surfaces {
		t.Run(sf.name, func(t *testing.T) {
			t.Parallel()
			for _, st := range matrixStates {
				t.Run(st.name, func(t *testing.T) {
					shown := sf.start(t)
					id := matrixRequest(t, shown, st)
					for _, r := range roles {
						t.Run(r.name+"/shown", func(t *testing.T) {
							got, want := sorted(shown.Offered(r.p, id)), sorted(shown.World().actions(r.p, id))
							if shown.Shared(r.p, id) {
								// A message every approver reads shows what the engine offers
								// an approver who has not voted; the person is judged on click.
								want = sorted(shown.World().eng.ApproverActions(shown.World().get(id)))
							}
							if !slices.Equal(got, want) {
								t.Errorf("%s (%s) is shown %v; the engine offers %v (shared message: %v)", r.name, r.p.Key, got, want, shown.Shared(r.p, id))
							}
						})
					}
					for _, r := range roles {
						for _, act := range matrixActions {
							t.Run(r.name+"/"+string(act), func(t *testing.T) {
								d := sf.start(t)
								id := matrixRequest(t, d, st)
								w := d.World()
								allowed := slices.Contains(w.actions(r.p, id), act)
								before := snapshot(w, id)
								o := d.Act(r.p, act, id, "matrix "+string(act))
								changed := snapshot(w, id) != before
								t.Logf("%s %s %s: offered by the engine=%v refused=%v changed=%v answer=%.200q", r.p.Key, act, id, allowed, o.Refused, changed, o.Text)
								switch {
								case allowed && (o.Refused || !changed):
									t.Errorf("the engine offers %s to the %s, but the surface refused it: %q", act, r.name, o.Text)
								case !allowed && (!o.Refused || changed):
									t.Errorf("the engine does not offer %s to the %s, but the surface took it: %q", act, r.name, o.Text)
								}
							})
						}
					}
				})
			}
		})
	}
}
