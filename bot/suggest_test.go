package bot_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
)

func TestSuggest_NearMissesOnly(t *testing.T) {
	choices := []string{"prod-db-admins", "sandbox-admins", "status", "help", "verify", "pending", "cancel"}
	cases := []struct{ word, want string }{
		{"prod-db-admns", "prod-db-admins"},  // a letter left out
		{"prod-bd-admins", "prod-db-admins"}, // two letters swapped
		{"Prod-DB-Admins", "prod-db-admins"}, // case
		{"sandbox", "sandbox-admins"},        // the start of only one
		{"stauts", "status"},
		{"hlep", "help"},
		{"cancle", "cancel"},
		{"veryfi", "verify"},
		{"pendng", "pending"},
		{"groups", ""}, // no group and no command is near
		{"nope", ""},
		{"x", ""},
		{"", ""},
		{strings.Repeat("a", 5000), ""},
	}
	for _, c := range cases {
		if got := bot.Suggest(c.word, choices); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", truncated(c.word), got, c.want)
		}
	}
	if got := bot.Suggest("pr", []string{"prod-db-admins"}); got != "" {
		t.Errorf("two letters suggest %q", got)
	}
	if got := bot.Suggest("admins", []string{"prod-admins", "sandbox-admins"}); got != "" {
		t.Errorf("no near miss, yet %q", got)
	}
}

func truncated(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// Given a first word that is no group, when it is submitted, then the refusal says what was
// read, which groups the person may activate, and (from the shell and Slack, whose /activate
// also takes commands) the near miss of a group or command.
func TestSubmit_UnknownGroupSaysWhatWasMeant(t *testing.T) {
	e := newEnv(t)
	groups := "; you can activate: prod-db-admins, quorum, sandbox, ticketed"
	cases := []struct{ surface, group, want string }{
		{"shell", "groups", `there is no group "groups"` + groups},
		{"slack", "prod-db-admns", `there is no group "prod-db-admns" (did you mean prod-db-admins?)` + groups},
		{"teams", "prod-db-admns", `there is no group "prod-db-admns" (did you mean prod-db-admins?)` + groups},
		{"shell", "stauts", `there is no group "stauts" (did you mean the command status?)` + groups},
		{"slack", "pendng", `there is no group "pendng" (did you mean the command pending?)` + groups},
		{"teams", "stauts", `there is no group "stauts"` + groups},
	}
	for _, c := range cases {
		a := e.actor("alice")
		a.Surface = c.surface
		_, err := e.eng.Submit(e.ctx, a, bot.SubmitInput{Group: c.group, Reason: "x"})
		var fe *bot.FieldError
		if !errors.As(err, &fe) || fe.Field != bot.FieldGroup || fe.Message != c.want {
			t.Errorf("%s %q: err = %v,\nwant %q", c.surface, c.group, err, c.want)
		}
	}
}
