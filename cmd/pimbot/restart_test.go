package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

const restartPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - name: prod-db-admins
    id: g-prod
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    min_duration: 1m
  - name: other
    id: g-other
    eligible: [alice@example.com]
    approvers: [bob@example.com]
directory:
  users:
    - {email: alice@example.com, name: Alice}
    - {email: bob@example.com, name: Bob}
`

// As a person runs it: alice schedules a request and bob approves it in one shell session;
// pimbot is restarted with the policy edited (the group deleted, or alice no longer
// eligible); when the start comes, the request fails, nothing is granted, and both are told
// why.
func TestRestart_ScheduledRequestNoLongerAllowed(t *testing.T) {
	for _, c := range []struct{ name, policy, reason, members string }{
		{"group deleted", strings.Replace(restartPolicy, "  - name: prod-db-admins\n    id: g-prod\n", "  - name: gone\n    id: g-gone\n", 1),
			"the group prod-db-admins is no longer in the policy", "members other"},
		{"no longer eligible", strings.Replace(restartPolicy, "eligible: [alice@example.com]", "eligible: [bob@example.com]", 1),
			"you are no longer eligible for prod-db-admins", "members prod-db-admins"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.policy == restartPolicy {
				t.Fatal("the policy edit did not apply")
			}
			path := t.TempDir() + "/pimbot.yaml"
			write := func(policy string) {
				if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			getenv := testEnv(t, map[string]string{"PIMBOT_CONFIG": path})
			shell := func(script string) string {
				var out, errs bytes.Buffer
				if code := run(context.Background(), []string{"shell"}, getenv, strings.NewReader(script), &out, &errs); code != 0 {
					t.Fatalf("shell exit %d: %s", code, errs.String())
				}
				return out.String()
			}
			write(restartPolicy)
			out := shell("/activate prod-db-admins at +3s for 1m the migration\nas bob\napprove last\n")
			if !strings.Contains(out, "approved by Bob") {
				t.Fatalf("first session:\n%s", out)
			}
			write(c.policy)
			out = shell("wait 5s\nstatus\n" + c.members + "\n")
			for _, want := range []string{
				"→ to alice: request", "failed: " + c.reason, // the requester
				"→ to approvers",     // the approvers
				"failed", "(nobody)", // status, and nothing granted
			} {
				if !strings.Contains(out, want) {
					t.Fatalf("second session lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "is active") || strings.Contains(out, "members: alice") {
				t.Fatalf("granted:\n%s", out)
			}
		})
	}
}
