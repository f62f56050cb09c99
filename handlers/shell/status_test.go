package shell_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
)

// status tells the truth: the real length of an extended grant, who denied a request and
// why, a start hours away as a time (not "soon"); a requester who approves the group is
// not told to wait for themselves.
func TestShell_StatusTellsTheTruth(t *testing.T) {
	policy := strings.Replace(string(pimbot.ExamplePolicy),
		"eligible: [alice@example.com, group:sre@example.com]", "eligible: [alice@example.com, bob@example.com, group:sre@example.com]", 1)
	tm := start(t, []byte(policy))
	tm.expect(5*time.Second, "You are alice@example.com (Alice)")

	tm.do("/activate prod-db-admins for 2h fixing the outage", "waiting for approval")
	tm.do("as bob", "You are now bob@example.com")
	tm.do("approve last", "is active: you are a member of prod-db-admins until")
	tm.do("as alice", "You are now alice@example.com")
	tm.do("extend last for 1h still fixing", "Extension")
	tm.do("as bob", "You are now bob@example.com")
	tm.do("approve last", "now ends at")
	tm.do("/activate prod-db-admins for 1h checking", "waiting for approval by carol@example.com.")
	tm.do("as alice", "You are now alice@example.com")
	tm.do("/activate prod-db-admins owner for 1h schema change", "waiting for approval")
	tm.do("as bob", "You are now bob@example.com")
	tm.do("deny last not during the freeze", "denied")
	tm.do("as alice", "You are now alice@example.com")
	tm.do("/activate sandbox-admins for 1h at +3h", "no approval needed")

	out := tm.do("status", "request")
	for _, want := range []string{
		"member of prod-db-admins for 3h, until",
		"owner of prod-db-admins for 1h from now; denied by Bob: not during the freeze",
		"approved, scheduled",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range []string{"for 2h, until", "starts soon", "(yourself)"} {
		if strings.Contains(tm.out.String(), bad) {
			t.Errorf("output says %q:\n%s", bad, tm.out.String())
		}
	}
}
