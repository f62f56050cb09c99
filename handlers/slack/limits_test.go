package slack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pimbot/pimbot/bot"
)

func TestCutText_NeverCutsAnEntityOrALink(t *testing.T) {
	for _, tc := range []struct{ in string }{
		{strings.Repeat("&amp;", 700)},
		{strings.Repeat("a&lt;", 700)},
		{strings.Repeat("x", 2990) + "<https://example.com|a link>" + strings.Repeat("y", 100)},
		{strings.Repeat("é", 3100)},
	} {
		got := cutText(tc.in, limitSectionText)
		if n := utf8.RuneCountInString(got); n > limitSectionText {
			t.Fatalf("%d runes, want at most %d", n, limitSectionText)
		}
		if !strings.HasSuffix(got, "…") {
			t.Fatalf("no mark of the cut: %q", got[len(got)-20:])
		}
		if brokenEntity.MatchString(got) {
			t.Fatalf("an entity was cut: …%q", got[len(got)-20:])
		}
		if i := strings.LastIndexByte(got, '<'); i >= 0 && !strings.Contains(got[i:], ">") {
			t.Fatalf("a link was cut: …%q", got[i:])
		}
	}
	if got := cutText("short &amp; sweet", 3000); got != "short &amp; sweet" {
		t.Fatalf("short text changed: %q", got)
	}
}

// brokenEntity finds an entity cut short by "…".
var brokenEntity = regexp.MustCompile(`&(a|am|amp|l|lt|g|gt)?…`)

// Long policy data (100 approvers, a long group name and description, a 1,000-character
// reason full of "&") degrades into messages and views Slack accepts: the fake checks
// Block Kit's limits and refuses what breaks them.
func TestLimits_LongPolicyDataDegradesGracefully(t *testing.T) {
	long := "platform-" + strings.Repeat("very-long-group-name-", 8) // ~180 characters
	var approvers, users []string
	for i := 0; i < 100; i++ {
		approvers = append(approvers, fmt.Sprintf("approver%03d@example.com", i))
		users = append(users, fmt.Sprintf("    - {email: approver%03d@example.com, name: Approver %03d & Co}", i, i))
	}
	policy := `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - name: ` + long + `
    id: g-long
    description: "` + strings.Repeat("R&D <ops> & more ", 30) + `"
    access: [member, owner]
    eligible: [alice@example.com]
    approvers: [` + strings.Join(approvers, ", ") + `]
    approval_channel: {slack: C0APPROVE}
directory:
  users:
    - {email: alice@example.com, name: Alice}
` + strings.Join(users, "\n") + "\n"
	e := newEnvPolicy(t, policy)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: long, Reason: strings.Repeat("a&b ", 250)})
	e.approvalPosted(approvals, r.ID)
	// The form, with its long name and description.
	mark := e.fake.Mark()
	e.command("UALICE", "")
	e.fake.Wait(t, mark, "views.open", nil)
	var formView map[string]any
	e.pump("the activation form", func() bool {
		for _, c := range e.fake.Since(mark, "") {
			if strings.HasPrefix(c.Method, "views.") && c.Error == "" && strings.Contains(c.Raw, `"callback_id":"activate"`) {
				formView = openedView(c)
				return true
			}
		}
		return false
	})
	// The long group's option value (a digest: values hold 150 characters) maps back.
	if a := e.submitView("UALICE", formView, map[string]any{"reason": "again & again", "access": "owner"}); !strings.Contains(a.Body, `"response_action":"update"`) {
		t.Fatalf("submitting the form for the long group: %s", a.Body)
	}
	for _, c := range e.fake.Calls("") {
		if c.Error == "invalid_blocks" || c.Error == "msg_too_long" || c.Error == "invalid_arguments" {
			t.Fatalf("Slack refused %s: %s\n%.2000s", c.Method, c.Error, c.Raw)
		}
		if brokenEntity.MatchString(c.Raw) {
			t.Fatalf("%s cut an entity: %.300s", c.Method, brokenEntity.FindString(c.Raw))
		}
	}
}

// Someone eligible for more groups than a select holds (100) is offered every one of them,
// in option groups, and the last one can be chosen and requested.
func TestForm_OffersEveryEligibleGroupPastAHundred(t *testing.T) {
	var groups []string
	for i := range 150 {
		groups = append(groups, fmt.Sprintf("  - {name: team-%03d, id: g-%03d, eligible: [alice@example.com], require_approval: false, require_justification: false}", i, i))
	}
	policy := "settings: {requests_per_minute: 0, max_pending: 0}\ngroups:\n" + strings.Join(groups, "\n") + `
directory:
  users:
    - {email: alice@example.com, name: Alice}
`
	e := newEnvPolicy(t, policy)
	mark := e.fake.Mark()
	e.command("UALICE", "")
	var form map[string]any
	e.pump("the activation form", func() bool {
		for _, c := range e.fake.Since(mark, "") {
			if strings.HasPrefix(c.Method, "views.") && c.Error == "" && strings.Contains(c.Raw, `"callback_id":"activate"`) && strings.Contains(c.Raw, "option_groups") {
				form = openedView(c)
				return true
			}
		}
		return false
	})
	raw, _ := json.Marshal(form)
	for _, name := range []string{"team-000", "team-099", "team-100", "team-149"} {
		if !strings.Contains(string(raw), `"text":"`+name+`"`) {
			t.Fatalf("the form does not offer %s", name)
		}
	}
	if a := e.submitView("UALICE", form, map[string]any{"group": groupValue("team-149")}); !strings.Contains(a.Body, `"response_action":"update"`) {
		t.Fatalf("choosing team-149: %s", a.Body)
	}
	e.pump("the grant of team-149", func() bool { return e.holds("alice@example.com", "g-149", bot.Member) })
}
