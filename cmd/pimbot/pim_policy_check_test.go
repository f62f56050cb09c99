package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/graphclient"
	"github.com/pimbot/pimbot/graphclient/graphfake"
)

const pimPolicyCheckPolicy = `
groups:
  - {name: capped, id: 7c1e0f8a-0000-4000-8000-000000000001, mode: pim, access: [member, owner], max_duration: 12h, eligible: [alice@example.com], approvers: [bob@example.com]}
  - {name: roomy, id: 7c1e0f8a-0000-4000-8000-000000000003, mode: pim, max_duration: 4h, eligible: [alice@example.com], approvers: [bob@example.com]}
  - {name: ticket, id: 7c1e0f8a-0000-4000-8000-000000000004, mode: pim, eligible: [alice@example.com], approvers: [bob@example.com]}
  - {name: fresh, id: 7c1e0f8a-0000-4000-8000-000000000005, mode: pim, eligible: [alice@example.com], approvers: [bob@example.com]}
`

// check reads each pim group's PIM policy and explains its conflicts with pimbot's policy: a
// maximum assignment shorter than max_duration, MFA or a ticket on assignment (fail), a
// justification on assignment (ok: pimbot sends one), no policy yet (not onboarded).
func TestCheck_PIMPolicyConflicts(t *testing.T) {
	f := misconfiguredTenant(t)
	for _, id := range []string{"7c1e0f8a-0000-4000-8000-000000000003", "7c1e0f8a-0000-4000-8000-000000000004", "7c1e0f8a-0000-4000-8000-000000000005"} {
		f.AddGroup(id, id[len(id)-4:]+"@example.com")
	}
	f.SetPIMPolicy("7c1e0f8a-0000-4000-8000-000000000001", "member", graphfake.PIMPolicy{ExpirationRequired: true, MaxDuration: 8 * time.Hour, EnabledRules: []string{"Justification"}})
	f.SetPIMPolicy("7c1e0f8a-0000-4000-8000-000000000001", "owner", graphfake.PIMPolicy{ExpirationRequired: true, MaxDuration: 24 * time.Hour, EnabledRules: []string{"MultiFactorAuthentication", "Justification"}})
	f.SetPIMPolicy("7c1e0f8a-0000-4000-8000-000000000003", "member", graphfake.PIMPolicy{ExpirationRequired: true, MaxDuration: 15 * 24 * time.Hour})
	f.SetPIMPolicy("7c1e0f8a-0000-4000-8000-000000000004", "member", graphfake.PIMPolicy{EnabledRules: []string{"Ticketing"}})
	tok := f.Mint(graphclient.PermGroupMemberReadWrite, graphclient.PermGroupReadWrite, graphclient.PermUserRead, graphclient.PermPIMGroups, graphclient.PermPIMPolicyRead)
	code, out := runCheck(t, f, tok, pimPolicyCheckPolicy)
	t.Logf("pimbot check, PIM policies:\n%s", out)
	if code != 1 || !strings.Contains(out, "3 problem(s) found\n") {
		t.Errorf("exit %d, want 1 with the 3 conflicts as the only problems", code)
	}
	for _, want := range []string{
		`FAIL  group capped (mode: pim): PIM policy for member assignments allows an active assignment of at most 8h (Expiration_Admin_Assignment), shorter than max_duration 12h: Entra refuses a longer grant or an extension past 8h; lower max_duration to 8h or raise "Expire active assignments after" in the group's PIM settings`,
		`ok    group capped (mode: pim): PIM policy for member assignments requires a justification on active assignment (Enablement_Admin_Assignment: Justification): pimbot sends one with every assignment`,
		`ok    group capped (mode: pim): PIM policy for owner assignments allows active assignments of up to 1d (Expiration_Admin_Assignment), at least max_duration 12h`,
		`FAIL  group capped (mode: pim): PIM policy for owner assignments requires multi-factor authentication on active assignment (Enablement_Admin_Assignment: MultiFactorAuthentication), which an app cannot perform: every grant pimbot makes would be refused`,
		`ok    group roomy (mode: pim): PIM policy for member assignments allows active assignments of up to 15d (Expiration_Admin_Assignment), at least max_duration 4h`,
		`ok    group ticket (mode: pim): PIM policy for member assignments sets no maximum duration for active assignments`,
		`FAIL  group ticket (mode: pim): PIM policy for member assignments requires ticket information on active assignment (Enablement_Admin_Assignment: Ticketing), which pimbot does not send`,
		`ok    group fresh (mode: pim): no PIM policy for member assignments yet (the group is not onboarded into PIM)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	if strings.Contains(out, "group roomy (mode: pim): PIM policy for member assignments requires") {
		t.Errorf("roomy requires nothing:\n%s", out)
	}

	// Without the permission to read PIM policies: a warning, not a failure.
	tok = f.Mint(graphclient.PermGroupMemberReadWrite, graphclient.PermUserRead, graphclient.PermPIMGroups)
	_, out = runCheck(t, f, tok, pimPolicyCheckPolicy)
	want := "warn  group capped (mode: pim): cannot compare its PIM policy with pimbot's: the app lacks RoleManagementPolicy.Read.AzureADGroup (only check needs it)"
	if !strings.Contains(out, want) || strings.Contains(out, "PIM policy for member assignments") {
		t.Errorf("without %s:\n%s", graphclient.PermPIMPolicyRead, out)
	}
}
