package graphclient_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/graphfake"
	"github.com/pimbot/pimbot/store/storetest"
)

const (
	apOnCall = "a9000000-0000-4000-8000-000000000001" // member of prod
	apOwners = "a9000000-0000-4000-8000-000000000002" // owner of prod
	apEng    = "a9000000-0000-4000-8000-000000000003" // member of eng
)

func accessPackages(f *graphfake.Server) {
	f.PutAccessPackage(graphfake.AccessPackage{ID: apOnCall, Name: "Prod on-call", Roles: []graphfake.AccessPackageRole{{GroupID: gProd}}})
	f.PutAccessPackage(graphfake.AccessPackage{ID: apOwners, Name: "Prod owners", Roles: []graphfake.AccessPackageRole{{GroupID: gProd, Owner: true}}})
	f.PutAccessPackage(graphfake.AccessPackage{ID: apEng, Name: "Eng readers", Roles: []graphfake.AccessPackageRole{{GroupID: gEng}}})
}

// The Graph call: the user's delivered assignments with their access package, then the
// package's resource role scopes, matched on Member_/Owner_<group id> and the group's scope.
func TestAccessPackages_DeliveredAssignmentOfTheGroupsRole(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	accessPackages(f)
	f.AssignAccessPackage(apOnCall, uCarol, "")
	f.AssignAccessPackage(apOwners, uAlice, "delivered")
	f.AssignAccessPackage(apEng, uErin, "")
	f.AssignAccessPackage(apOnCall, uBob, "delivering")

	for _, c := range []struct {
		group, user string
		a           bot.Access
		want        string
	}{
		{gProd, uCarol, bot.Member, "Prod on-call"},
		{gProd, uCarol, bot.Owner, ""}, // the package gives membership, not ownership
		{gProd, uAlice, bot.Owner, "Prod owners"},
		{gProd, uAlice, bot.Member, ""},
		{gProd, uErin, bot.Member, ""}, // erin's package is for another group
		{gEng, uErin, bot.Member, "Eng readers"},
		{gProd, uBob, bot.Member, ""}, // not delivered yet
	} {
		name, ok, err := d.AccessPackages(ctx, c.group, c.user, c.a)
		if err != nil || ok != (c.want != "") || name != c.want {
			t.Errorf("AccessPackages(%s, %s, %s) = %q %v %v, want %q", c.group, c.user, c.a, name, ok, err, c.want)
		}
	}
	var sawList, sawPackage bool
	for _, c := range f.Calls() {
		q, _ := url.ParseQuery(c.Query)
		switch {
		case strings.HasSuffix(c.Path, "/identityGovernance/entitlementManagement/assignments"):
			sawList = true
			if fl := q.Get("$filter"); !strings.HasPrefix(fl, "target/objectId eq '") || !strings.HasSuffix(fl, "' and state eq 'delivered'") || q.Get("$expand") != "accessPackage" {
				t.Errorf("assignments asked with %q", c.Query)
			}
		case strings.Contains(c.Path, "/identityGovernance/entitlementManagement/accessPackages/"):
			sawPackage = true
			if q.Get("$expand") != "resourceRoleScopes($expand=role,scope)" {
				t.Errorf("access package asked with %q", c.Query)
			}
		}
	}
	if !sawList || !sawPackage {
		t.Fatalf("calls: %+v", f.Calls())
	}

	// Without EntitlementManagement.Read.All: 403, ErrForbidden (drift: cannot tell).
	d2 := directory(t, f, f.Mint("GroupMember.ReadWrite.All", "User.Read.All"))
	if _, _, err := d2.AccessPackages(ctx, gProd, uCarol, bot.Member); !errors.Is(err, bot.ErrForbidden) {
		t.Fatalf("without the permission: %v", err)
	}
}

// Drift of a direct group that access packages and PIM also manage: holders through a
// delivered access package assignment and through PIM are reported as managed elsewhere and
// kept, even with standing_access: remove; a standing $ref holder is removed.
func TestDrift_DirectGroupManagedElsewhereByAccessPackage(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	accessPackages(f)
	pol, err := policyfile.Parse("elsewhere.yaml", []byte(elsewherePolicy))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: d, Logger: quiet, Notifiers: []bot.Notifier{rec}})
	now := time.Now()
	f.AssignAccessPackage(apOnCall, uCarol, "") // carol: member of prod through an access package
	f.AssignAccessPackage(apOwners, uAlice, "") // alice: owner of prod through an access package
	f.AssignAccessPackage(apEng, uErin, "")     // erin: member of eng through an access package
	if err := d.AssignUntil(ctx, gProd, uBob, bot.Member, now, now.Add(8*time.Hour), "an administrator in PIM"); err != nil {
		t.Fatal(err)
	}
	f.AssignAccessPackage(apOnCall, uErin, "expired") // an assignment that ended does not count …
	f.Grant(gProd, uErin, false)                      // … for a $ref membership behind pimbot's back

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
		"alice@example.com member of eng elsewhere= removed=no", // a plain $ref member of eng since the fixture (standing_access: report)
		`alice@example.com owner of prod elsewhere=access package "Prod owners" removed=no`,
		"bob@example.com member of prod elsewhere=PIM removed=no",
		`carol@example.com member of prod elsewhere=access package "Prod on-call" removed=no`,
		`erin@example.com member of eng elsewhere=access package "Eng readers" removed=no`,
		"erin@example.com member of prod elsewhere= removed=yes",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("found:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !f.Holds(gProd, uCarol, false) || !f.Holds(gProd, uAlice, true) || !f.Holds(gProd, uBob, false) || !f.Holds(gEng, uErin, false) {
		t.Fatal("a holder through an access package or PIM was removed")
	}
	if f.Holds(gProd, uErin, false) {
		t.Fatal("standing_access: remove left erin's $ref membership of prod")
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
		`drift_elsewhere: carol@example.com holds member of prod through an active access package "Prod on-call" assignment: managed elsewhere (access package "Prod on-call"), not standing access; pimbot leaves it alone (standing_access: remove)`,
		"drift_elsewhere: bob@example.com holds member of prod through an active PIM assignment: managed elsewhere (PIM), not standing access; pimbot leaves it alone (standing_access: remove)",
		"drift_removed: erin@example.com held member of prod without an active grant and was removed (standing_access: remove)",
	} {
		if !slices.Contains(details, w) {
			t.Errorf("approvers were not told %q", w)
		}
	}

	// Once carol's assignment expired and she is a member again behind pimbot's back ($ref),
	// she is standing access, and removed.
	f.AssignAccessPackage(apOnCall, uCarol, "expired")
	f.Grant(gProd, uCarol, false)
	if found, err = eng.Reconcile(ctx, d); err != nil {
		t.Fatal(err)
	}
	if f.Holds(gProd, uCarol, false) {
		t.Fatalf("carol, no longer assigned through an access package, was not removed: %+v", found)
	}
}

// A directory that may not read entitlement management (no permission, no licence: 403)
// keeps drift as it was: a holder through an access package is standing access.
func TestDrift_DirectGroupWithoutAccessPackagePermission(t *testing.T) {
	f, _ := tenant(t)
	d := directory(t, f, f.Mint("GroupMember.ReadWrite.All", "User.Read.All", "PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup"))
	ctx := context.Background()
	accessPackages(f)
	pol, err := policyfile.Parse("elsewhere.yaml", []byte(elsewherePolicy))
	if err != nil {
		t.Fatal(err)
	}
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: d, Logger: quiet})
	f.AssignAccessPackage(apOnCall, uCarol, "")
	found, err := eng.Reconcile(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if f.Holds(gProd, uCarol, false) || len(found) != 2 {
		t.Fatalf("drift without the access package permission: %+v", found)
	}
	for _, x := range found {
		if x.Elsewhere != "" {
			t.Fatalf("managed elsewhere without the permission to tell: %+v", x)
		}
	}
}
