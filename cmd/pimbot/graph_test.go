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
`

func TestCheck_GoodAndBrokenGraphSetup(t *testing.T) {
	f := graphfake.New()
	defer f.Close()
	f.Token = "good-token"
	f.AddUser(graphfake.User{ID: "11111111-0000-4000-8000-000000000001", Mail: "alice@example.com", UPN: "alice@example.com"})
	f.AddUser(graphfake.User{ID: "11111111-0000-4000-8000-000000000002", Mail: "bob@example.com", UPN: "bob@example.com"})
	f.AddGroup("7c1e0f8a-0000-4000-8000-000000000001", "prod-db-admins@example.com")
	f.AddGroup("7c1e0f8a-0000-4000-8000-0000000000a1", "sre@example.com")
	path := t.TempDir() + "/pimbot.yaml"
	os.WriteFile(path, []byte(checkPolicy), 0o600)

	check := func(token string, policy string) (int, string) {
		if policy != "" {
			os.WriteFile(path, []byte(policy), 0o600)
		}
		getenv := testEnv(t, map[string]string{"PIMBOT_CONFIG": path, "GRAPH_API_URL": f.BaseURL(), "GRAPH_ACCESS_TOKEN": token})
		var out, errs bytes.Buffer
		code := run(context.Background(), []string{"check"}, getenv, nil, &out, &errs)
		return code, out.String() + errs.String()
	}
	code, out := check("good-token", "")
	if code != 0 || !strings.Contains(out, "all checks passed") || !strings.Contains(out, `graph: group prod-db-admins (7c1e0f8a-0000-4000-8000-000000000001) is "prod-db-admins@example.com"`) {
		t.Fatalf("good setup: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "good-token") {
		t.Fatal("check printed the token")
	}
	code, out = check("expired-token", "")
	if code == 0 || !strings.Contains(out, "FAIL  graph: group prod-db-admins: refused (HTTP 401") || !strings.Contains(out, "GroupMember.ReadWrite.All") {
		t.Fatalf("bad token: exit %d\n%s", code, out)
	}
	code, out = check("good-token", strings.Replace(checkPolicy, "bob@example.com", "nobody@example.com", 1))
	if code == 0 || !strings.Contains(out, "FAIL  user nobody@example.com (named in prod-db-admins)") {
		t.Fatalf("unknown approver: exit %d\n%s", code, out)
	}
	code, out = check("good-token", strings.Replace(checkPolicy, "000000000001\n", "0000000000ff\n", 1))
	if code == 0 || !strings.Contains(out, "no group with id 7c1e0f8a-0000-4000-8000-0000000000ff") {
		t.Fatalf("unknown group: exit %d\n%s", code, out)
	}
}
