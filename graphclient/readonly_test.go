package graphclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient"
	"github.com/pimbot/pimbot/graphclient/graphfake"
)

// One group id that checkMemberGroups refuses (here a group deleted after pimbot first asked
// about it) must neither fail nor falsify the answers for the other groups of its batch: the
// batch is checked again group by group, the bad id is dropped from later batches and
// reported, and it answers "not a member".
func TestInGroup_OneBadGroupIDDoesNotSpoilTheBatch(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	const gGone = "7c1e0f8a-0000-4000-8000-0000000000ee"
	f.AddGroup(gGone, "gone@example.com", uErin)
	if in, err := d.InGroup(ctx, uAlice, gGone); err != nil || in {
		t.Fatalf("alice in gone: %v, %v", in, err)
	}
	f.DeleteGroup(gGone) // known to the directory, gone from Entra

	// erin's first question is batched with gGone: Graph refuses the batch.
	in, err := d.InGroup(ctx, uErin, gEng)
	if err != nil || !in {
		t.Fatalf("erin in engineering (nested): %v, %v; want true", in, err)
	}
	refused := d.RefusedGroups()
	if e := refused[gGone]; e == nil || !strings.Contains(e.Error(), "HTTP 400 Request_BadRequest") {
		t.Fatalf("refused groups: %v; want %s with Graph's 400", refused, gGone)
	}
	if in, err := d.InGroup(ctx, uErin, gGone); err != nil || in {
		t.Fatalf("erin in the refused group: %v, %v; want false, nil", in, err)
	}
	// Later batches leave the bad id out, and answer correctly.
	if in, err := d.InGroup(ctx, uErin, gSRE); err != nil || !in {
		t.Fatalf("erin in sre: %v, %v", in, err)
	}
	if in, err := d.InGroup(ctx, uBob, gEng); err != nil || in {
		t.Fatalf("bob in engineering: %v, %v", in, err)
	}
	var last graphfake.Call
	for _, c := range f.Calls() {
		if strings.HasSuffix(c.Path, "/checkMemberGroups") {
			last = c
		}
	}
	if last.Status != 200 || strings.Contains(last.Body, gGone) || !strings.Contains(last.Body, gEng) {
		t.Fatalf("the last batch: %d %s; want 200 without %s", last.Status, last.Body, gGone)
	}
}

// A refusal that is not about one id (the app may not read groups at all) is returned as the
// error it is: no group is dropped, and nobody is reported "not a member" by mistake.
func TestInGroup_ARefusalOfEveryGroupIsAnError(t *testing.T) {
	f, _ := tenant(t)
	d := directory(t, f, f.Mint(graphclient.PermUserRead))
	ctx := context.Background() // the token carries only User.Read.All: checkMemberGroups answers 403
	for _, g := range []string{gProd, gEng, gSRE} {
		_, err := d.InGroup(ctx, uErin, g)
		if !errors.Is(err, bot.ErrForbidden) || !strings.Contains(err.Error(), graphclient.Refused403) {
			t.Fatalf("in %s: %v; want a 403 worded as %q", g, err, graphclient.Refused403)
		}
	}
	if r := d.RefusedGroups(); len(r) != 0 {
		t.Fatalf("groups dropped for a refusal of every group: %v", r)
	}
}

// People are found by UPN, by primary mail, by an alias in proxyAddresses (case aside, as
// Graph compares), and by a UPN that Graph will not take in a path (one starting with $).
func TestResolveUser_ByAliasAndByUPN(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	const uDana, uSvc = "11111111-0000-4000-8000-000000000006", "11111111-0000-4000-8000-000000000007"
	f.AddUser(graphfake.User{ID: uDana, Mail: "dana@example.com", UPN: "dana@contoso.onmicrosoft.com", Name: "Dana",
		ProxyAddresses: []string{"SMTP:dana@example.com", "smtp:dana.alias@contoso.com", "SIP:dana@example.com"}})
	f.AddUser(graphfake.User{ID: uSvc, UPN: "$svc@contoso.onmicrosoft.com", Name: "Service"})
	for _, c := range []struct{ ref, want, how string }{
		{"dana@contoso.onmicrosoft.com", uDana, ""},
		{"dana@example.com", uDana, "mail eq"},
		{"Dana.Alias@Contoso.com", uDana, "proxyAddresses/any(p:p eq 'smtp:dana.alias@contoso.com')"},
		{"$svc@contoso.onmicrosoft.com", uSvc, "userPrincipalName eq"},
	} {
		u, err := d.ResolveUser(ctx, c.ref)
		if err != nil || u.ID != c.want {
			t.Fatalf("%s: %+v, %v; want %s", c.ref, u, err, c.want)
		}
		if c.how == "" {
			continue
		}
		found := false
		for _, call := range f.Calls() {
			q := call.Query
			if call.Path == "/v1.0/users" && call.Status == 200 && strings.Contains(unescape(t, q), c.how) {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: no lookup with %q", c.ref, c.how)
		}
	}
	// An address that is nobody's, not even an alias: not found (and only aliases are
	// searched, not SIP addresses).
	for _, ref := range []string{"nobody@example.com", "dana@example.com.evil", "sip:dana@example.com"} {
		if _, err := d.ResolveUser(ctx, ref); !errors.Is(err, bot.ErrNotFound) {
			t.Fatalf("%s: %v; want ErrNotFound", ref, err)
		}
	}
}

// The groups Graph will not let an app change are told apart by what GET /groups/{id} says,
// and the fake refuses a change of each with Graph's own answer.
func TestGroupsGraphWillNotChange(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	cases := []struct {
		g          graphfake.Group
		status     int
		code, msg  string
		readOnly   string
		restricted bool
	}{
		{graphfake.Group{Name: "mail-enabled security", MailEnabled: true}, 400, "Request_BadRequest", "Cannot Update a mail-enabled security groups and or distribution list.", "mail-enabled security group", false},
		{graphfake.Group{Name: "distribution list", Distribution: true}, 400, "Request_BadRequest", "Cannot Update a mail-enabled security groups and or distribution list.", "distribution list", false},
		{graphfake.Group{Name: "synced", Synced: true}, 400, "Request_BadRequest", "on-premises mastered Directory Sync objects", "synced from on-premises", false},
		{graphfake.Group{Name: "dynamic", Dynamic: true, MembershipRule: `user.department -eq "Sales"`}, 403, "Authorization_RequestDenied", "Insufficient privileges", `dynamic membership (user.department -eq "Sales")`, false},
		{graphfake.Group{Name: "restricted", Restricted: true}, 403, "Authorization_RequestDenied", "Insufficient privileges", "", true},
		{graphfake.Group{Name: "microsoft 365", Unified: true}, 0, "", "", "", false},
	}
	for i, c := range cases {
		t.Run(c.g.Name, func(t *testing.T) {
			c.g.ID = "7c1e0f8a-0000-4000-8000-00000000010" + string(rune('0'+i))
			f.PutGroup(c.g)
			info, err := d.Group(ctx, c.g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if why := info.ReadOnly(); (c.readOnly == "") != (why == "") || !strings.Contains(why, c.readOnly) {
				t.Fatalf("ReadOnly() = %q; want it to say %q", why, c.readOnly)
			}
			if info.Restricted != c.restricted {
				t.Fatalf("Restricted = %v", info.Restricted)
			}
			err = d.Add(ctx, c.g.ID, uAlice, bot.Member)
			var ge *graphclient.Error
			switch {
			case c.status == 0 && err != nil:
				t.Fatalf("add: %v", err)
			case c.status == 0:
			case !errors.As(err, &ge) || ge.Status != c.status || ge.Code != c.code || !strings.Contains(ge.Message, c.msg) || !errors.Is(err, bot.ErrForbidden):
				t.Fatalf("add: %v; want HTTP %d %s %q, final", err, c.status, c.code, c.msg)
			}
		})
	}
	// A role scoped to the restricted unit lets the app in (the fake reads it from wids).
	rd := directory(t, f, f.MintWithDirectoryRoles([]string{graphfake.RoleGroupsAdministrator}, graphclient.PermGroupMemberReadWrite))
	if err := rd.Add(ctx, "7c1e0f8a-0000-4000-8000-000000000104", uAlice, bot.Member); err != nil {
		t.Fatalf("add with a role at the unit's scope: %v", err)
	}
	if got := f.Calls(); got[len(got)-1].Status != http.StatusNoContent {
		t.Fatalf("last call: %+v", got[len(got)-1])
	}
}

func unescape(t *testing.T, q string) string {
	t.Helper()
	s, err := url.QueryUnescape(q)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
