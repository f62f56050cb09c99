package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient"
	"github.com/pimbot/pimbot/graphclient/graphfake"
)

// A tenant with each mistake `pimbot check` knows about, against the real Graph rules the
// fake keeps: every managed group Graph will not let the app change fails check, and the
// fake refuses a change of each one (so check says what Graph would do); group: entries that
// match nothing fail; a managed group named in another group's approvers or eligible is a
// warning; a person named by an alias address resolves.
const misconfiguredPolicy = `
groups:
  - name: good
    id: 7c1e0f8a-0000-4000-8000-000000000001
    eligible: [dana.alias@contoso.com, group:sre@example.com]
    approvers: [bob@example.com, group:good-approvers@example.com]
  - name: mail-sec
    id: 7c1e0f8a-0000-4000-8000-000000000011
    eligible: [group:nobody-has-this@example.com]
    approvers: [bob@example.com]
  - name: dist-list
    id: 7c1e0f8a-0000-4000-8000-000000000012
    eligible: [group:7c1e0f8a-0000-4000-8000-0000000000ff]
    approvers: [bob@example.com]
  - name: dynamic
    id: 7c1e0f8a-0000-4000-8000-000000000013
    eligible: [group:7c1e0f8a-0000-4000-8000-000000000001]
    approvers: [bob@example.com]
  - name: synced
    id: 7c1e0f8a-0000-4000-8000-000000000014
    eligible: [alice@example.com]
    approvers: [group:7c1e0f8a-0000-4000-8000-000000000001]
  - name: restricted
    id: 7c1e0f8a-0000-4000-8000-000000000015
    eligible: [alice@example.com]
    approvers: [bob@example.com]
  - name: tier0
    id: 7c1e0f8a-0000-4000-8000-000000000016
    eligible: [alice@example.com]
    approvers: [group:tier0@example.com]
`

func misconfiguredTenant(t *testing.T) *graphfake.Server {
	f := graphfake.Start(t)
	f.AddUser(graphfake.User{ID: "11111111-0000-4000-8000-000000000001", Mail: "alice@example.com", UPN: "alice@example.com"})
	f.AddUser(graphfake.User{ID: "11111111-0000-4000-8000-000000000002", Mail: "bob@example.com", UPN: "bob@example.com"})
	f.AddUser(graphfake.User{ID: "11111111-0000-4000-8000-000000000006", Mail: "dana@example.com", UPN: "dana@contoso.onmicrosoft.com",
		ProxyAddresses: []string{"SMTP:dana@example.com", "smtp:dana.alias@contoso.com"}})
	f.AddGroup("7c1e0f8a-0000-4000-8000-000000000001", "good@example.com")
	f.AddGroup("7c1e0f8a-0000-4000-8000-0000000000a1", "sre@example.com", "11111111-0000-4000-8000-000000000006")
	f.AddGroup("7c1e0f8a-0000-4000-8000-0000000000a2", "good-approvers@example.com", "11111111-0000-4000-8000-000000000002")
	f.PutGroup(graphfake.Group{ID: "7c1e0f8a-0000-4000-8000-000000000011", Name: "Mail-enabled admins", Mail: "mailsec@example.com", MailEnabled: true})
	f.PutGroup(graphfake.Group{ID: "7c1e0f8a-0000-4000-8000-000000000012", Name: "All staff", Mail: "staff@example.com", Distribution: true})
	f.PutGroup(graphfake.Group{ID: "7c1e0f8a-0000-4000-8000-000000000013", Name: "Sales", Dynamic: true, MembershipRule: `user.department -eq "Sales"`})
	f.PutGroup(graphfake.Group{ID: "7c1e0f8a-0000-4000-8000-000000000014", Name: "AD admins", Synced: true})
	f.PutGroup(graphfake.Group{ID: "7c1e0f8a-0000-4000-8000-000000000015", Name: "Executives", Restricted: true})
	f.PutGroup(graphfake.Group{ID: "7c1e0f8a-0000-4000-8000-000000000016", Name: "Tier 0", Mail: "tier0@example.com", RoleAssignable: true})
	return f
}

func runCheck(t *testing.T, f *graphfake.Server, token, policy string) (int, string) {
	t.Helper()
	path := t.TempDir() + "/pimbot.yaml"
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := testEnv(t, map[string]string{"PIMBOT_CONFIG": path, "GRAPH_API_URL": f.BaseURL(), "GRAPH_ACCESS_TOKEN": token})
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"check"}, getenv, nil, &out, &errs)
	return code, out.String() + errs.String()
}

func TestCheck_MisconfiguredTenant(t *testing.T) {
	f := misconfiguredTenant(t)
	token := f.Mint(graphclient.PermGroupMemberReadWrite, graphclient.PermUserRead)
	code, out := runCheck(t, f, token, misconfiguredPolicy)
	t.Log("\n" + out)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, w := range []string{
		`ok    user dana.alias@contoso.com resolves to 11111111-0000-4000-8000-000000000006`,
		`ok    group sre@example.com (named in eligible of good) is "sre@example.com" (7c1e0f8a-0000-4000-8000-0000000000a1, security group)`,
		`FAIL  group nobody-has-this@example.com (named in eligible of mail-sec): no directory group has that mail or id, so nobody is eligible through it`,
		`FAIL  group 7c1e0f8a-0000-4000-8000-0000000000ff (named in eligible of dist-list): no directory group has that mail or id, so nobody is eligible through it`,
		`warn  group 7c1e0f8a-0000-4000-8000-000000000001 (named in eligible of dynamic) is good, which pimbot also manages: activating good makes its holder eligible for dynamic`,
		`warn  group 7c1e0f8a-0000-4000-8000-000000000001 (named in approvers of synced) is good, which pimbot also manages: activating good makes its holder an approver of synced`,
		`warn  group tier0@example.com (named in approvers of tier0) is tier0 itself: activating it makes its holder an approver of the requests for it`,
		`ok    graph: group good (7c1e0f8a-0000-4000-8000-000000000001) is "good@example.com" (security group)`,
		`FAIL  graph: group mail-sec (7c1e0f8a-0000-4000-8000-000000000011) "Mail-enabled admins" is a mail-enabled security group: Graph cannot change the members of mail-enabled security groups and distribution lists`,
		`FAIL  graph: group dist-list (7c1e0f8a-0000-4000-8000-000000000012) "All staff" is a distribution list: Graph cannot change`,
		`FAIL  graph: group dynamic (7c1e0f8a-0000-4000-8000-000000000013) "Sales" has dynamic membership (user.department -eq "Sales"): its members come from the rule`,
		`FAIL  graph: group synced (7c1e0f8a-0000-4000-8000-000000000014) "AD admins" is synced from on-premises Active Directory`,
		`FAIL  graph: group restricted (7c1e0f8a-0000-4000-8000-000000000015) "Executives" is in a restricted management administrative unit: Graph refuses changes by apps unless the app's service principal holds a role such as Groups Administrator assigned at the scope of that unit`,
		`FAIL  graph: group tier0 (7c1e0f8a-0000-4000-8000-000000000016) "Tier 0" is role-assignable: the app also needs RoleManagement.ReadWrite.Directory`,
		"8 problem(s) found, 3 warning(s)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q", w)
		}
	}

	// What check says is what Graph does: the app (with the same token) can change only the
	// group check passed.
	d, err := graphclient.New(graphclient.Config{BaseURL: f.BaseURL(), AccessToken: token})
	if err != nil {
		t.Fatal(err)
	}
	for id, name := range map[string]string{"01": "good", "11": "mail-sec", "12": "dist-list", "13": "dynamic", "14": "synced", "15": "restricted", "16": "tier0"} {
		err := d.Add(context.Background(), "7c1e0f8a-0000-4000-8000-0000000000"+id, "11111111-0000-4000-8000-000000000001", bot.Member)
		if failed := strings.Contains(out, "FAIL  graph: group "+name+" "); (err != nil) != failed || (err != nil && !errors.Is(err, bot.ErrForbidden)) {
			t.Errorf("%s: check failed it: %v; Graph's answer to an add: %v", name, failed, err)
		}
	}
}

// A group in a restricted management administrative unit, with an app whose token names a
// group-managing directory role (wids): a warning (the token cannot say the role is scoped to
// the unit), and the role is shown next to the permissions.
func TestCheck_RestrictedUnitWithADirectoryRole(t *testing.T) {
	f := misconfiguredTenant(t)
	token := f.MintWithDirectoryRoles([]string{graphfake.RoleGroupsAdministrator}, graphclient.PermGroupMemberReadWrite, graphclient.PermUserRead)
	policy := `
groups:
  - name: restricted
    id: 7c1e0f8a-0000-4000-8000-000000000015
    eligible: [alice@example.com]
    approvers: [bob@example.com]
`
	code, out := runCheck(t, f, token, policy)
	t.Log("\n" + out)
	for _, w := range []string{
		"directory roles (wids): Groups Administrator)",
		`warn  graph: group restricted (7c1e0f8a-0000-4000-8000-000000000015) "Executives" is in a restricted management administrative unit`,
		"the token carries the directory role Groups Administrator (wids): Entra honours it here only if it is assigned at the scope of that unit",
		"all checks passed, 1 warning(s)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q", w)
		}
	}
	if code != 0 {
		t.Fatalf("exit %d, want 0 (a warning)", code)
	}
}
