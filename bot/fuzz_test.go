package bot_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
)

// The quick-form parser never panics, and every refusal is a FieldError naming a form field.
func FuzzParseQuick(f *testing.F) {
	for _, s := range []string{"prod-db-admins for 2h fixing the outage", "g owner for 90m at 14:30 ticket INC-1 x", "g at 2026-12-01 09:00", "g for 2 hours", "g at in 30m", "g for -1h", "g ticket", "", "g for for for", "<!channel> for 1d"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := bot.ParseQuick(s, now, time.UTC)
		if err != nil {
			var fe *bot.FieldError
			if !errors.As(err, &fe) || fe.Message == "" {
				t.Fatalf("%q: refusal %v is not a FieldError with a message", s, err)
			}
			return
		}
		if q.Group == "" || strings.ContainsAny(q.Group, " \t\n") {
			t.Fatalf("%q: group %q", s, q.Group)
		}
		if q.Duration < 0 {
			t.Fatalf("%q: negative duration %s", s, q.Duration)
		}
	})
}

func FuzzParseDurationAndTime(f *testing.F) {
	for _, s := range []string{"2h", "1d", "90 minutes", "0s", "-1h", "9999h", "14:30", "+30m", "2026-12-01 09:00", "2026-11-28T09:00:00Z", "now", "in 5m"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := bot.ParseDuration(s); err == nil && d < 0 && !strings.HasPrefix(strings.TrimSpace(s), "-") {
			t.Fatalf("%q parsed to a negative %s", s, d)
		} else if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
		if _, err := bot.ParseTime(s, now, time.UTC); err != nil && !utf8.ValidString(err.Error()) {
			t.Fatal("error is not text")
		}
	})
}

// The policy loader never panics, and every refusal names the file.
func FuzzParsePolicy(f *testing.F) {
	f.Add(string(pimbot.ExamplePolicy))
	f.Add("groups:\n  - {name: g, id: g1, eligible: [a], require_approval: false}\n")
	f.Add("defaults: {max_duration: 1h}\ngroups: [{name: g, id: '1', eligible: [x], approvers: [y]}]\n")
	f.Add("groups: [\n")
	f.Add("settings: {timezone: 5}\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := policyfile.Parse("fuzz.yaml", []byte(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, g := range p.Groups {
			if g.MinDuration <= 0 || g.MinDuration > g.MaxDuration || len(g.Access) == 0 || len(g.Eligible) == 0 ||
				(g.RequireApproval && len(g.Approvers) == 0) {
				t.Fatalf("accepted an invalid group: %+v", g)
			}
		}
	})
}
