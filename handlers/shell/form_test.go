package shell_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
)

// The first question of the guided form says how to leave it.
func TestForm_FirstQuestionSaysCancelLeaves(t *testing.T) {
	tm := start(t, pimbot.ExamplePolicy)
	tm.expect(5*time.Second, "You are alice@example.com")
	out := tm.do("/activate", "Group (prod-db-admins, incident-db-admins, sandbox-admins), or cancel to leave the form:")
	if strings.Count(out, "cancel") != 1 {
		t.Fatalf("the first question should mention cancel once:\n%s", out)
	}
	tm.do("cancel", "Nothing was requested.")
}

// Given a group that is not one of the person's, when it is the answer to the group
// question, then it is refused there, with the groups they may activate and a near miss,
// and the question is asked again.
func TestForm_UnknownGroupRefusedAtTheGroupQuestion(t *testing.T) {
	tm := start(t, pimbot.ExamplePolicy)
	tm.expect(5*time.Second, "You are alice@example.com")
	tm.do("/activate", "Group (")
	out := tm.do("groups", `There is no group "groups"; you can activate: prod-db-admins, incident-db-admins, sandbox-admins`, "Group (prod-db-admins, incident-db-admins, sandbox-admins)")
	if strings.Contains(out, "Member or owner") {
		t.Fatalf("an unknown group went on to the next question:\n%s", out)
	}
	tm.do("prod-db-admns", `There is no group "prod-db-admns" (did you mean prod-db-admins?); you can activate: prod-db-admins, incident-db-admins, sandbox-admins`, "Group (")
	tm.do("PROD-DB-ADMINS", "Member or owner [member]")
	tm.do("cancel", "Nothing was requested.")

	tm.do("as bob", "You are now bob@example.com")
	tm.do("/activate", "Group (sandbox-admins) [sandbox-admins]")
	tm.do("prod-db-admins", "You are not eligible for prod-db-admins; you can activate: sandbox-admins", "Group (sandbox-admins)")
	tm.do("cancel", "Nothing was requested.")
}

// Given 0m or -1h at the duration question, then it is refused there with the group's
// range (it used to become the default without a word), and the question is asked again.
func TestForm_ZeroAndNegativeDurationsRefusedWithTheRange(t *testing.T) {
	tm := start(t, pimbot.ExamplePolicy)
	tm.expect(5*time.Second, "You are alice@example.com")
	tm.do("/activate", "Group (")
	tm.do("sandbox-admins", "Duration (1m to 8h) [2m]")
	for _, d := range []string{"0m", "-1h"} {
		out := tm.do(d, d+" is not allowed for sandbox-admins; choose between 1m and 8h", "Duration (1m to 8h) [2m]")
		if strings.Contains(out, "Start (") {
			t.Fatalf("%s went on to the next question:\n%s", d, out)
		}
	}
	tm.do("9h", "9h is not allowed for sandbox-admins; choose between 1m and 8h", "Duration (1m to 8h)")
	tm.do("soon", `"soon" is not a duration`, "sandbox-admins allows 1m to 8h", "Duration (")
	tm.do("5m", "Start (now")
	tm.do("cancel", "Nothing was requested.")
	tm.do("status", "You have no requests.")
}

// Given a start the engine refuses (in the past), when the form is submitted, then only
// that question is asked again, in words people type.
func TestForm_EngineRefusalAsksThatQuestionAgain(t *testing.T) {
	tm := start(t, pimbot.ExamplePolicy)
	tm.expect(5*time.Second, "You are alice@example.com")
	tm.do("/activate", "Group (")
	tm.do("sandbox-admins", "Duration (")
	tm.do("", "Start (now")
	out := tm.do("at noon", `"at noon" is not a time; use 14:30, 2026-12-01 14:30, +30m or an RFC 3339 time`, "Start (now")
	if strings.Contains(out, "15:04") || strings.Contains(out, "2006") {
		t.Fatalf("Go's layout strings shown:\n%s", out)
	}
	tm.do("2020-01-01 09:00", "Reason")
	tm.do("testing", "is in the past", "Start (now")
	tm.do("now", "submitted: member of sandbox-admins for 2m from now; no approval needed")
}

// The shell's quick form keeps a reason that begins with a keyword already used, and
// refuses what it cannot read as one thing.
func TestQuickForm_KeepsEveryWordOrRefuses(t *testing.T) {
	tm := start(t, pimbot.ExamplePolicy)
	tm.expect(5*time.Second, "You are alice@example.com")
	tm.do("/activate prod-db-admins for 2h for the db migration",
		"submitted: member of prod-db-admins for 2h from now, waiting for approval",
		`Reason: "for the db migration"`)
	tm.do("/activate prod-db-admins member owner for 1h x", "Say member or owner, not both", "Usage: /activate")
	tm.do("/activate sandbox-admins for 0m", "The duration must be positive, not 0m")
	tm.do("/activate stauts", `There is no group "stauts" (did you mean the command status?); you can activate: prod-db-admins, incident-db-admins, sandbox-admins`)
}
