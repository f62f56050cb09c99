package bot_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// The authorization matrix: every action × every role, on every surface. One table; each
// cell is a fresh request in the state the action needs, so only the role decides.
var authzMatrix = []struct {
	action  string
	state   bot.State // what the request must be in for the action to make sense
	allowed map[string]bool
}{
	{"approve", bot.StatePending, map[string]bool{"approver": true}},
	{"deny", bot.StatePending, map[string]bool{"approver": true}},
	{"cancel", bot.StatePending, map[string]bool{"requester": true}},
	{"deactivate", bot.StateActive, map[string]bool{"requester": true, "approver": true}},
	{"extend", bot.StateActive, map[string]bool{"requester": true}},
	{"status", bot.StatePending, map[string]bool{"requester": true, "approver": true}},
}

// Roles for a request by alice for prod-db-admins (approvers bob, carol).
var authzRoles = map[string]string{
	"requester":           "alice",
	"approver":            "bob",
	"approver of another": "dave", // approves the quorum group only
	"anyone else":         "mallory",
}

func TestAuthorizationMatrix(t *testing.T) {
	cells := 0
	for _, surface := range []string{"slack", "teams", "shell"} {
		for _, row := range authzMatrix {
			for role, who := range authzRoles {
				cells++
				t.Run(fmt.Sprintf("%s/%s/%s", surface, row.action, role), func(t *testing.T) {
					e := newEnv(t)
					r := e.submit("alice", "prod-db-admins", bot.SubmitInput{})
					if row.state == bot.StateActive {
						if _, err := e.eng.Approve(e.ctx, e.actor("carol"), r.ID); err != nil {
							t.Fatal(err)
						}
						e.drain()
					}
					before := e.get(r.ID)
					a := e.actor(who)
					a.Surface = surface
					var err error
					switch row.action {
					case "approve":
						_, err = e.eng.Approve(e.ctx, a, r.ID)
					case "deny":
						_, err = e.eng.Deny(e.ctx, a, r.ID, "no")
					case "cancel":
						_, err = e.eng.Cancel(e.ctx, a, r.ID)
					case "deactivate":
						_, err = e.eng.Deactivate(e.ctx, a, r.ID)
					case "extend":
						_, err = e.eng.Extend(e.ctx, a, r.ID, 30*time.Minute, "more")
					case "status":
						_, err = e.eng.Get(e.ctx, a, r.ID)
					}
					var pe *bot.PermissionError
					switch {
					case row.allowed[role] && err != nil:
						t.Fatalf("%s may %s, but: %v", role, row.action, err)
					case !row.allowed[role] && !errors.As(err, &pe):
						t.Fatalf("%s must not %s; got err = %v", role, row.action, err)
					case !row.allowed[role]:
						if after := e.get(r.ID); after.Version != before.Version {
							t.Fatalf("a refused %s changed the request (v%d -> v%d)", row.action, before.Version, after.Version)
						}
						if rs, _ := e.eng.List(e.ctx, e.actor(who), 10); who != "alice" && len(rs) != 0 {
							t.Fatalf("a refused %s created a request", row.action)
						}
					}
				})
			}
		}
	}
	t.Logf("authorization matrix: %d cells (%d actions × %d roles × 3 surfaces)", cells, len(authzMatrix), len(authzRoles))
}
