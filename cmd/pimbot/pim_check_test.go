package main

import (
	"os"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/graphclient"
)

const pimCheckPolicy = `
groups:
  - {name: good, id: 7c1e0f8a-0000-4000-8000-000000000001, mode: pim, min_duration: 1m, eligible: [alice@example.com], approvers: [bob@example.com]}
  - {name: plain, id: 7c1e0f8a-0000-4000-8000-000000000002, eligible: [alice@example.com], approvers: [bob@example.com]}
  - {name: dynamic, id: 7c1e0f8a-0000-4000-8000-000000000013, mode: pim, eligible: [alice@example.com], approvers: [bob@example.com]}
  - {name: synced, id: 7c1e0f8a-0000-4000-8000-000000000014, mode: pim, eligible: [alice@example.com], approvers: [bob@example.com]}
  - {name: restricted, id: 7c1e0f8a-0000-4000-8000-000000000015, mode: pim, eligible: [alice@example.com], approvers: [bob@example.com]}
`

// check names the mode of each group, and refuses mode: pim for the groups PIM cannot manage
// and without the PIM permission.
func TestCheck_PIMGroups(t *testing.T) {
	f := misconfiguredTenant(t)
	f.AddGroup("7c1e0f8a-0000-4000-8000-000000000002", "plain@example.com")
	tok := f.Mint(graphclient.PermGroupMemberReadWrite, graphclient.PermUserRead)
	code, out := runCheck(t, f, tok, pimCheckPolicy)
	t.Logf("pimbot check, PIM groups misconfigured:\n%s", out)
	if code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		"ok    mode: direct ($ref membership): plain; pim (PIM for Groups, Entra also ends the access at the expiration): good, dynamic, synced, restricted",
		"FAIL  graph: the app lacks the application permission PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup",
		"warn  group good (mode: pim): min_duration 1m is shorter than the 5m PIM for Groups assigns for at least",
		"ok    group good (mode: pim): PIM for Groups can manage it",
		"FAIL  group dynamic (7c1e0f8a-0000-4000-8000-000000000013) cannot be in mode: pim: PIM for Groups cannot manage it (it has dynamic membership)",
		"FAIL  group synced (7c1e0f8a-0000-4000-8000-000000000014) cannot be in mode: pim: PIM for Groups cannot manage it (it is synced from on-premises Active Directory)",
		"FAIL  group restricted (7c1e0f8a-0000-4000-8000-000000000015) cannot be in mode: pim: PIM for Groups cannot manage it (it is in a restricted management administrative unit)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	tok = f.Mint(graphclient.PermGroupMemberReadWrite, graphclient.PermUserRead, graphclient.PermPIMGroups)
	if _, out = runCheck(t, f, tok, pimCheckPolicy); strings.Contains(out, "lacks the application permission "+graphclient.PermPIMGroups) {
		t.Errorf("the PIM permission is there:\n%s", out)
	}
}

// A group in mode: pim with the local directory (which cannot assign through PIM) is refused
// by check (and serve) with a clear message.
func TestCheck_PIMNeedsGraph(t *testing.T) {
	path := t.TempDir() + "/pimbot.yaml"
	policy := `
directory:
  users: [{email: alice@example.com, name: Alice}]
groups:
  - {name: prod, id: 7c1e0f8a-0000-4000-8000-000000000001, mode: pim, eligible: [alice@example.com], require_approval: false}
`
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	code := run(t.Context(), []string{"check"}, testEnv(t, map[string]string{"PIMBOT_CONFIG": path, "PIMBOT_DIRECTORY": "local"}), nil, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "prod: mode: pim needs Microsoft Graph (PIM for Groups)") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
}
