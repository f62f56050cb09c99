package policyfile_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot/policyfile"
)

func TestPolicy_ExampleLoadsWithDefaultsInherited(t *testing.T) {
	p, err := policyfile.Parse("pimbot.example.yaml", pimbot.ExamplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	prod, ok := p.Group("prod-db-admins")
	if !ok {
		t.Fatal("prod-db-admins missing")
	}
	if prod.MaxDuration != 4*time.Hour || prod.MinDuration != 5*time.Minute || prod.PendingTimeout != 24*time.Hour {
		t.Fatalf("prod durations: min %s max %s timeout %s", prod.MinDuration, prod.MaxDuration, prod.PendingTimeout)
	}
	if !prod.RequireApproval || !prod.RequireJustification || len(prod.Approvers) != 2 || prod.ApprovalChannel["slack"] != "C0APPROVALS" {
		t.Fatalf("prod policy: %+v", prod)
	}
	sb, _ := p.Group("SANDBOX-ADMINS") // case-insensitive
	if sb == nil || sb.RequireApproval || sb.MinDuration != time.Minute || sb.RequireJustification {
		t.Fatalf("sandbox policy: %+v", sb)
	}
	if byID, _ := p.Group(prod.ID); byID != prod {
		t.Fatal("lookup by object id failed")
	}
	// The file in the repository is the one embedded.
	onDisk, err := os.ReadFile("../../pimbot.example.yaml")
	if err != nil || string(onDisk) != string(pimbot.ExamplePolicy) {
		t.Fatal("embedded example differs from pimbot.example.yaml")
	}
}

func TestPolicy_BadFilesNameFileLineAndField(t *testing.T) {
	base := "groups:\n  - name: g\n    id: g1\n    eligible: [a@example.com]\n    approvers: [b@example.com]\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "grops: []\n", "bad.yaml:1: grops: unknown key; allowed here: settings, defaults, groups, directory"},
		{"unknown group key", base + "    max_duraton: 1h\n", "bad.yaml:6: groups[0] (g).max_duraton: unknown key"},
		{"unknown defaults key", "defaults: {colour: red}\n" + base, "bad.yaml:1: defaults.colour: unknown key"},
		{"bad duration", base + "    max_duration: 4x\n", `bad.yaml:6: groups[0] (g).max_duration: "4x" is not a duration`},
		{"min over max", base + "    min_duration: 9h\n", "groups[0] (g).min_duration: 9h is longer than max_duration 8h"},
		{"default outside bounds", base + "    default_duration: 10h\n    max_duration: 9h\n", "default_duration: 10h is outside"},
		{"approval without approvers", "groups:\n  - name: g\n    id: g1\n    eligible: [a@example.com]\n", "bad.yaml:2: groups[0] (g).approvers: require_approval is true but no approvers are listed"},
		{"quorum larger than approvers", base + "    approvals_required: 3\n", "approvals_required: 3 approvals required but only 1 approvers listed"},
		{"access kind", base + "    access: [admin]\n", `access: "admin" is not an access kind; use member, owner or both`},
		{"bool", base + "    require_ticket: sometimes\n", `require_ticket: "sometimes" is not true or false`},
		{"missing id", "groups:\n  - name: g\n    eligible: [a]\n    require_approval: false\n", "bad.yaml:2: groups[0].id: missing"},
		{"duplicate name", base + "  - name: g\n    id: g2\n    eligible: [a]\n    require_approval: false\n", `group "g" is named twice`},
		{"nobody eligible", "groups:\n  - name: g\n    id: g1\n    require_approval: false\n", "eligible: nobody is eligible"},
		{"name with spaces", "groups:\n  - name: my group\n    id: g1\n    eligible: [a]\n    require_approval: false\n", "a group name is one word"},
		{"standing access", base + "    standing_access: shout\n", `standing_access: "shout" is not allowed; use ignore, report or remove`},
		{"mode", base + "    mode: entra\n", `mode: "entra" is not allowed; use direct ($ref membership) or pim`},
		{"not yaml", "groups: [\n", "bad.yaml: not valid YAML"},
		{"empty", "", "the file is empty"},
		{"no groups", "settings: {retention: 48h}\n", "groups: at least one group is needed"},
		{"directory user key", base + "directory:\n  users:\n    - {mail: x@example.com}\n", "directory.users[0].mail: unknown key"},
		{"retention too short", "settings: {retention: 5m}\n" + base, "settings.retention: must be at least 1h"},
		{"bad timezone", "settings: {timezone: Mars/Olympus}\n" + base, `unknown time zone "Mars/Olympus"`},
		{"channel surface", base + "    approval_channel: {irc: '#ops'}\n", "approval_channel.irc: unknown key; allowed here: slack, teams, shell"},
		{"audit channel surface", "settings:\n  audit_channel:\n    slack: C0AUDIT\n    irc: '#audit'\n" + base, "bad.yaml:4: settings.audit_channel.irc: unknown key; allowed here: slack, teams"},
		{"audit channel not a mapping", "settings:\n  audit_channel: C0AUDIT\n" + base, "bad.yaml:2: settings.audit_channel: expected a mapping"},
		{"audit channel a list", "settings:\n  audit_channel: {slack: [C1, C2]}\n" + base, "bad.yaml:2: settings.audit_channel.slack: expected a single value"},
		{"audit channel empty", "settings:\n  audit_channel:\n    teams: ''\n" + base, "bad.yaml:3: settings.audit_channel.teams: must not be empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := policyfile.Parse("bad.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("accepted; want error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !policyfile.IsError(err) {
				t.Fatalf("error %q\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestPolicy_DefaultsApplyToEveryGroupAndGroupsOverride(t *testing.T) {
	p, err := policyfile.Parse("p.yaml", []byte(`
defaults: {max_duration: 2h, require_ticket: true, approvers: [boss@example.com], approval_channel: {slack: C1}}
groups:
  - {name: a, id: "1", eligible: [x]}
  - {name: b, id: "2", eligible: [x], max_duration: 30m, default_duration: 15m, require_ticket: false, approval_channel: {teams: T1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Group("a")
	b, _ := p.Group("b")
	if a.MaxDuration != 2*time.Hour || !a.RequireTicket || a.Approvers[0] != "boss@example.com" || a.ApprovalChannel["slack"] != "C1" {
		t.Fatalf("a did not inherit: %+v", a)
	}
	if b.MaxDuration != 30*time.Minute || b.RequireTicket || b.ApprovalChannel["slack"] != "C1" || b.ApprovalChannel["teams"] != "T1" {
		t.Fatalf("b did not override: %+v", b)
	}
	if a.ApprovalChannel["teams"] != "" {
		t.Fatal("b's channel leaked into a")
	}
}

func TestPolicy_AuditChannelPerSurfaceIsOptional(t *testing.T) {
	base := "groups:\n  - {name: g, id: g1, eligible: [a@example.com], require_approval: false}\n"
	p, err := policyfile.Parse("p.yaml", []byte("settings:\n  audit_channel: {slack: C0AUDIT, teams: \"19:audit@thread.tacv2\"}\n"+base))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Settings.AuditChannel; len(got) != 2 || got["slack"] != "C0AUDIT" || got["teams"] != "19:audit@thread.tacv2" {
		t.Fatalf("audit channels: %v", got)
	}
	p, err = policyfile.Parse("p.yaml", []byte("settings:\n  audit_channel: {teams: \"19:audit@thread.tacv2\"}\n"+base))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Settings.AuditChannel; len(got) != 1 || got["slack"] != "" {
		t.Fatalf("teams only: %v", got)
	}
	p, err = policyfile.Parse("p.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Settings.AuditChannel) != 0 {
		t.Fatalf("no audit_channel set, yet: %v", p.Settings.AuditChannel)
	}
}

// mode: pim per group, inherited from defaults; direct when nobody says.
func TestPolicy_Mode(t *testing.T) {
	pol, err := policyfile.Parse("p.yaml", []byte("defaults: {mode: pim}\ngroups:\n  - {name: a, id: g1, eligible: [x], require_approval: false}\n  - {name: b, id: g2, eligible: [x], require_approval: false, mode: direct}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := pol.Group("a"); !a.PIM() {
		t.Errorf("a: mode %q, want pim from defaults", a.Mode)
	}
	if b, _ := pol.Group("b"); b.PIM() || b.Mode != "direct" {
		t.Errorf("b: mode %q, want direct", b.Mode)
	}
}
