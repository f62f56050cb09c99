package graphclient_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/graphfake"
	"github.com/pimbot/pimbot/store/storetest"
)

// A group's PIM policy is read through the SDK (roleManagementPolicyAssignments with the
// policy's rules expanded), picking the admin-assignment rules by id; the fake enforces them.
func TestPIMPolicy_ReadAndEnforced(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	f.SetPIMPolicy(gProd, "member", graphfake.PIMPolicy{ExpirationRequired: true, MaxDuration: 8 * time.Hour, EnabledRules: []string{"Justification"}})
	f.SetPIMPolicy(gProd, "owner", graphfake.PIMPolicy{MaxDuration: 36 * time.Hour, EnabledRules: []string{"MultiFactorAuthentication", "Justification"}})
	pols, err := d.PIMPolicies(ctx, gProd)
	if err != nil {
		t.Fatal(err)
	}
	m, o := pols[bot.Member], pols[bot.Owner]
	if len(pols) != 2 || !m.ExpirationRequired || m.MaxDuration != 8*time.Hour || !slices.Equal(m.EnabledRules, []string{"Justification"}) || !m.Requires("justification") || m.Requires("MultiFactorAuthentication") {
		t.Fatalf("member policy: %+v (all: %+v)", m, pols)
	}
	if o.ExpirationRequired || o.MaxDuration != 36*time.Hour || !o.Requires("MultiFactorAuthentication") {
		t.Fatalf("owner policy: %+v", o)
	}
	if pols, err := d.PIMPolicies(ctx, gEng); err != nil || len(pols) != 0 {
		t.Fatalf("a group not onboarded: %+v %v", pols, err)
	}
	if _, err := d.PIMPolicies(ctx, "not-a-guid"); !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("a bad id: %v", err)
	}

	now := time.Now()
	err = d.AssignUntil(ctx, gProd, uAlice, bot.Member, now, now.Add(9*time.Hour), "longer than PIM allows")
	if !errors.Is(err, bot.ErrForbidden) || !strings.Contains(err.Error(), "ExpirationRule") {
		t.Fatalf("9h against an 8h maximum: %v", err)
	}
	if err := d.AssignUntil(ctx, gProd, uAlice, bot.Member, now, now.Add(8*time.Hour), "within PIM's maximum"); err != nil {
		t.Fatal(err)
	}
	if err := d.ExtendUntil(ctx, gProd, uAlice, bot.Member, now.Add(10*time.Hour), "past PIM's maximum"); !errors.Is(err, bot.ErrForbidden) {
		t.Fatalf("an extension past the maximum: %v", err)
	}
	err = d.AssignUntil(ctx, gProd, uBob, bot.Owner, now, now.Add(time.Hour), "MFA on assignment")
	if !errors.Is(err, bot.ErrForbidden) || !strings.Contains(err.Error(), "MfaRule") {
		t.Fatalf("MFA on assignment: %v", err)
	}
	if f.Holds(gProd, uBob, true) {
		t.Fatal("a refused assignment was applied")
	}

	// Without the permission to read PIM policies: 403, worded as Graph's refusal.
	f2, _ := tenant(t)
	d2 := directory(t, f2, f2.Mint("GroupMember.ReadWrite.All", "User.Read.All", "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"))
	if _, err := d2.PIMPolicies(ctx, gProd); !errors.Is(err, bot.ErrForbidden) {
		t.Fatalf("without RoleManagementPolicy.Read.AzureADGroup: %v", err)
	}
}

const elsewherePolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - {name: prod, id: ` + gProd + `, access: [member, owner], eligible: [alice@example.com], require_approval: false, require_justification: false, standing_access: remove}
  - {name: eng, id: ` + gEng + `, access: [member], eligible: [alice@example.com], require_approval: false, require_justification: false, standing_access: report}
`

// Drift of direct groups that PIM also manages: a holder through an active PIM assignment is
// reported as managed elsewhere (PIM), never as standing access, and never removed, even with
// standing_access: remove; a $ref holder behind pimbot's back is still removed.
func TestDrift_DirectGroupManagedElsewhereByPIM(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	pol, err := policyfile.Parse("elsewhere.yaml", []byte(elsewherePolicy))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: d, Logger: quiet, Notifiers: []bot.Notifier{rec}})
	now := time.Now()
	// An administrator in PIM: bob an active member of prod, carol of eng; erin a $ref member of prod.
	if err := d.AssignUntil(ctx, gProd, uBob, bot.Member, now, now.Add(8*time.Hour), "an administrator in PIM"); err != nil {
		t.Fatal(err)
	}
	if err := d.AssignUntil(ctx, gEng, uCarol, bot.Member, now, now.Add(8*time.Hour), "an administrator in PIM"); err != nil {
		t.Fatal(err)
	}
	f.Grant(gProd, uErin, false)

	found, err := eng.Reconcile(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range found {
		got = append(got, x.User.Email+" "+string(x.Access)+" of "+x.Group.Name+" elsewhere="+x.Elsewhere+" removed="+map[bool]string{true: "yes", false: "no"}[x.Removed])
	}
	slices.Sort(got)
	want := []string{
		"alice@example.com member of eng elsewhere= removed=no", // a plain $ref member of eng since the fixture: standing access
		"bob@example.com member of prod elsewhere=PIM removed=no",
		"carol@example.com member of eng elsewhere=PIM removed=no",
		"erin@example.com member of prod elsewhere= removed=yes",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !f.Holds(gProd, uBob, false) || !f.Holds(gEng, uCarol, false) {
		t.Fatal("a holder through PIM was removed")
	}
	if f.Holds(gProd, uErin, false) {
		t.Fatal("standing_access: remove left erin's $ref membership")
	}
	eng.RunDue(ctx) // the notify jobs
	rec.mu.Lock()
	var details []string
	for _, ev := range rec.events {
		if bot.IsDrift(ev.Type) {
			details = append(details, ev.Type+": "+ev.Detail)
		}
	}
	rec.mu.Unlock()
	slices.Sort(details)
	t.Logf("approvers were told:\n%s", strings.Join(details, "\n"))
	for _, w := range []string{
		"drift_elsewhere: bob@example.com holds member of prod through an active PIM assignment: managed elsewhere (PIM), not standing access; pimbot leaves it alone (standing_access: remove)",
		"drift_elsewhere: carol@example.com holds member of eng through an active PIM assignment: managed elsewhere (PIM), not standing access; pimbot leaves it alone (standing_access: report)",
		"drift_removed: erin@example.com held member of prod without an active grant and was removed (standing_access: remove)",
	} {
		if !slices.Contains(details, w) {
			t.Errorf("approvers were not told %q", w)
		}
	}

	// Once the PIM assignment is over and bob is still a member ($ref behind its back), bob is
	// standing access again, and removed.
	f.SetClock(func() time.Time { return now.Add(9 * time.Hour) })
	f.Grant(gProd, uBob, false)
	if found, err = eng.Reconcile(ctx, d); err != nil {
		t.Fatal(err)
	}
	if f.Holds(gProd, uBob, false) {
		t.Fatalf("bob, no longer assigned through PIM, was not removed: %+v", found)
	}
}

// A directory that may not read PIM (no permission, no licence: 403) keeps drift as it was.
func TestDrift_DirectGroupWithoutPIMPermission(t *testing.T) {
	f, _ := tenant(t)
	d := directory(t, f, f.Mint("GroupMember.ReadWrite.All", "User.Read.All"))
	ctx := context.Background()
	pol, err := policyfile.Parse("elsewhere.yaml", []byte(elsewherePolicy))
	if err != nil {
		t.Fatal(err)
	}
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: d, Logger: quiet})
	f.Grant(gProd, uErin, false)
	found, err := eng.Reconcile(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if f.Holds(gProd, uErin, false) || len(found) != 2 {
		t.Fatalf("drift without the PIM permission: %+v", found)
	}
}
