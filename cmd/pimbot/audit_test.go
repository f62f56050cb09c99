package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/store/storetest"
)

func testEnv(t *testing.T, extra map[string]string) func(string) string {
	t.Helper()
	storetest.Client(t)
	if storetest.Embedded() {
		t.Skip("needs a Redis shared by two commands (the embedded one lives inside one)")
	}
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	env := map[string]string{"REDIS_URL": url, "PIMBOT_REDIS_PREFIX": storetest.Prefix(t)}
	for k, v := range extra {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// A shell session, then `pimbot audit` exports what happened, as JSON lines and as CSV.
func TestAudit_ExportsTheSession(t *testing.T) {
	getenv := testEnv(t, nil)
	ctx := context.Background()
	script := "/activate prod-db-admins for 2h fixing the outage\nas bob\napprove last\nas alice\ndeactivate last\n"
	var out, errs bytes.Buffer
	if code := run(ctx, []string{"shell"}, getenv, strings.NewReader(script), &out, &errs); code != 0 {
		t.Fatalf("shell exit %d: %s", code, errs.String())
	}
	out.Reset()
	if code := run(ctx, []string{"audit", "--since", "1h"}, getenv, nil, &out, &errs); code != 0 {
		t.Fatalf("audit exit %d: %s", code, errs.String())
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var a bot.AuditRecord
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		types = append(types, a.Type+" by "+a.Actor)
	}
	want := []string{"submitted by alice@example.com", "approved by bob@example.com", "activated by pimbot", "deactivate by alice@example.com", "ended by pimbot"}
	if strings.Join(types, ", ") != strings.Join(want, ", ") {
		t.Fatalf("audit trail:\n %v\nwant\n %v", types, want)
	}
	out.Reset()
	if code := run(ctx, []string{"audit", "--format", "csv"}, getenv, nil, &out, &errs); code != 0 {
		t.Fatalf("audit csv exit %d: %s", code, errs.String())
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) != len(want)+1 || rows[0][1] != "type" || rows[1][7] != "shell" {
		t.Fatalf("csv: %v %v", rows, err)
	}
	errs.Reset()
	if code := run(ctx, []string{"audit", "--format", "xml"}, getenv, nil, &out, &errs); code == 0 || !strings.Contains(errs.String(), "use jsonl or csv") {
		t.Fatalf("bad format accepted: %d %s", code, errs.String())
	}
}

func TestBadPolicyFailsStartWithFileLineField(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/pimbot.yaml"
	os.WriteFile(path, []byte("groups:\n  - name: g\n    id: g1\n    eligible: [a]\n    aprovers: [b]\n"), 0o600)
	getenv := testEnv(t, map[string]string{"PIMBOT_CONFIG": path})
	var out, errs bytes.Buffer
	code := run(context.Background(), []string{"shell"}, getenv, strings.NewReader(""), &out, &errs)
	if code == 0 || !strings.Contains(errs.String(), path+":5: groups[0] (g).aprovers: unknown key") {
		t.Fatalf("exit %d, stderr %q", code, errs.String())
	}
}
