package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/graphclient/graphfake"
)

const checkPolicy = `
groups:
  - name: prod-db-admins
    id: 7c1e0f8a-0000-4000-8000-000000000001
    eligible: [alice@example.com, group:sre@example.com]
    approvers: [bob@example.com]
  - name: tier0
    id: 7c1e0f8a-0000-4000-8000-000000000002
    access: [member, owner]
    eligible: [alice@example.com]
    approvers: [bob@example.com]
`

// `pimbot check` against the fake Graph: a good setup passes; each broken one fails with a
// line that says what to fix (which permission, which group, which person).
func TestCheck_GoodAndBrokenGraphSetup(t *testing.T) {
	f := graphfake.Start(t)
	f.Token = "opaque-dev-token"
	f.AddUser(graphfake.User{ID: "11111111-0000-4000-8000-000000000001", Mail: "alice@example.com", UPN: "alice@example.com"})
	f.AddUser(graphfake.User{ID: "11111111-0000-4000-8000-000000000002", Mail: "bob@example.com", UPN: "bob@contoso.onmicrosoft.com"})
	f.AddGroup("7c1e0f8a-0000-4000-8000-000000000001", "prod-db-admins@example.com")
	f.PutGroup(graphfake.Group{ID: "7c1e0f8a-0000-4000-8000-000000000002", Mail: "tier0@example.com", Name: "Tier 0 admins", RoleAssignable: true})
	f.AddGroup("7c1e0f8a-0000-4000-8000-0000000000a1", "sre@example.com")
	path := t.TempDir() + "/pimbot.yaml"
	all := f.Mint("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "User.Read.All", "RoleManagement.ReadWrite.Directory")

	check := func(t *testing.T, token, policy string) (int, string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
			t.Fatal(err)
		}
		getenv := testEnv(t, map[string]string{"PIMBOT_CONFIG": path, "GRAPH_API_URL": f.BaseURL(), "GRAPH_ACCESS_TOKEN": token})
		var out, errs bytes.Buffer
		code := run(context.Background(), []string{"check"}, getenv, nil, &out, &errs)
		s := out.String() + errs.String()
		if strings.Contains(s, token) {
			t.Fatalf("check printed the token:\n%s", s)
		}
		return code, s
	}
	cases := []struct {
		name, token, policy string
		ok                  bool
		want                []string
	}{
		{"good", all, checkPolicy, true, []string{
			"ok    graph: token for " + f.BaseURL() + " (application permissions: GroupMember.ReadWrite.All, Group.ReadWrite.All, User.Read.All, RoleManagement.ReadWrite.Directory)",
			`ok    graph: group prod-db-admins (7c1e0f8a-0000-4000-8000-000000000001) is "prod-db-admins@example.com" (security group)`,
			`ok    graph: group tier0 (7c1e0f8a-0000-4000-8000-000000000002) is "Tier 0 admins" (security group, role-assignable)`,
			"ok    user bob@example.com resolves to 11111111-0000-4000-8000-000000000002",
			"all checks passed",
		}},
		{"a development token (not a JWT)", "opaque-dev-token", checkPolicy, true, []string{
			"(not a JWT: its permissions are judged by the calls below)",
			`is "Tier 0 admins" (security group, role-assignable: the app also needs RoleManagement.ReadWrite.Directory)`,
		}},
		{"no consent for group permissions", f.Mint("User.Read.All"), checkPolicy, false, []string{
			"FAIL  graph: the app lacks the application permission GroupMember.ReadWrite.All",
			"FAIL  graph: the app lacks the application permission Group.ReadWrite.All (add and remove owners",
			"FAIL  graph: group prod-db-admins: Graph refused (permission, group type, role-assignable group, restricted administrative unit or guest policy): HTTP 403 Authorization_RequestDenied reading it; reading groups needs GroupMember.ReadWrite.All",
		}},
		{"role-assignable group without RoleManagement", f.Mint("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "User.Read.All"), checkPolicy, false, []string{
			`FAIL  graph: group tier0 (7c1e0f8a-0000-4000-8000-000000000002) "Tier 0 admins" is role-assignable: the app also needs RoleManagement.ReadWrite.Directory`,
		}},
		{"no User.Read.All", f.Mint("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "RoleManagement.ReadWrite.Directory"), checkPolicy, false, []string{
			"FAIL  graph: the app lacks the application permission User.Read.All",
			"FAIL  user alice@example.com (named in eligible of prod-db-admins): look up user: HTTP 403 Authorization_RequestDenied",
			"Graph refused (permission, group type, role-assignable group, restricted administrative unit or guest policy); this call needs the application permission User.Read.All",
		}},
		{"a token Graph refuses", "expired-token", checkPolicy, false, []string{
			"FAIL  graph: group prod-db-admins: the token was refused (HTTP 401 InvalidAuthenticationToken)",
		}},
		{"unknown approver", all, strings.Replace(checkPolicy, "bob@example.com", "nobody@example.com", 1), false, []string{
			"FAIL  user nobody@example.com (named in approvers of prod-db-admins)",
		}},
		{"unknown group", all, strings.Replace(checkPolicy, "000000000001\n", "0000000000ff\n", 1), false, []string{
			"FAIL  graph: group prod-db-admins: no group with id 7c1e0f8a-0000-4000-8000-0000000000ff in this tenant",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := check(t, c.token, c.policy)
			t.Log(out)
			if (code == 0) != c.ok {
				t.Fatalf("exit %d, want ok=%v\n%s", code, c.ok, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Fatalf("missing %q in:\n%s", w, out)
				}
			}
		})
	}
}

func TestGraphConfigured(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"GRAPH_ACCESS_TOKEN": "x"}, true},
		{map[string]string{"AZURE_CLIENT_ID": "a", "AZURE_TENANT_ID": "t"}, true},
		{map[string]string{"AZURE_CLIENT_ID": "a", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"}, true},
		{map[string]string{"AZURE_CLIENT_ID": "a"}, false}, // a user-assigned identity on a VM: say PIMBOT_DIRECTORY=graph
		{map[string]string{"IDENTITY_ENDPOINT": "http://localhost:42356/msi/token"}, true},
		{map[string]string{"PIMBOT_DIRECTORY": "graph"}, true},
		{map[string]string{"PIMBOT_DIRECTORY": "local", "GRAPH_ACCESS_TOKEN": "x"}, false},
	}
	for _, c := range cases {
		if got := graphConfigured(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: %v, want %v", c.env, got, c.want)
		}
	}
}
