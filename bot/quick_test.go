package bot_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Given a reason that begins with an option's keyword once that option was used, when the
// quick form is read, then the whole rest of the line is the reason: nothing is lost.
func TestParseQuick_ReasonMayBeginWithAUsedKeyword(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	at1430 := time.Date(2026, 11, 28, 14, 30, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want bot.Quick
	}{
		{"prod-db-admins for 2h for the db migration", bot.Quick{Group: "prod-db-admins", Duration: 2 * time.Hour, Reason: "for the db migration"}},
		{"sandbox-admins for 10m for the deploy", bot.Quick{Group: "sandbox-admins", Duration: 10 * time.Minute, Reason: "for the deploy"}},
		{"g for 2 hours for real", bot.Quick{Group: "g", Duration: 2 * time.Hour, Reason: "for real"}},
		{"g at 14:30 at the office", bot.Quick{Group: "g", Start: at1430, Reason: "at the office"}},
		{"g ticket INC-1 ticket was reopened", bot.Quick{Group: "g", Ticket: "INC-1", Reason: "ticket was reopened"}},
		{"g owner for 1h owner asked me", bot.Quick{Group: "g", Access: bot.Owner, Duration: time.Hour, Reason: "owner asked me"}},
		{"g member for 1h member of on-call", bot.Quick{Group: "g", Access: bot.Member, Duration: time.Hour, Reason: "member of on-call"}},
		{"g for 1h FOR the record", bot.Quick{Group: "g", Duration: time.Hour, Reason: "FOR the record"}},
		// The forms that worked before still do (the README's example among them).
		{"prod-db-admins for 2h at 14:30 ticket INC-42 fixing the outage", bot.Quick{Group: "prod-db-admins", Duration: 2 * time.Hour, Start: at1430, Ticket: "INC-42", Reason: "fixing the outage"}},
		{"g fixing for real at last", bot.Quick{Group: "g", Reason: "fixing for real at last"}},
		{"g ticket INC-1 for 1h member x", bot.Quick{Group: "g", Access: bot.Member, Duration: time.Hour, Ticket: "INC-1", Reason: "x"}},
	}
	for _, c := range cases {
		got, err := bot.ParseQuick(c.in, now, time.UTC)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got.Group != c.want.Group || got.Access != c.want.Access || got.Duration != c.want.Duration ||
			!got.Start.Equal(c.want.Start) || got.Ticket != c.want.Ticket || got.Reason != c.want.Reason {
			t.Errorf("%q:\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

// Given input that could mean two things, when the quick form is read, then it is refused
// with a FieldError that says what to do, rather than one meaning being picked.
func TestParseQuick_RefusesWhatIsAmbiguousOrNoTime(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	cases := []struct{ in, field, words string }{
		{"g member owner", bot.FieldAccess, "say member or owner, not both"},
		{"g owner member fixing", bot.FieldAccess, "say member or owner, not both"},
		{"g for 2h member owner", bot.FieldAccess, "say member or owner, not both"},
		{"g for 0m", bot.FieldDuration, "the duration must be positive, not 0m"},
		{"g for -1h", bot.FieldDuration, "the duration must be positive, not -1h"},
		{"g at in", bot.FieldStart, "say when after at"},
	}
	for _, c := range cases {
		_, err := bot.ParseQuick(c.in, now, time.UTC)
		var fe *bot.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Message, c.words) {
			t.Errorf("%q: err = %v, want %s: %q", c.in, err, c.field, c.words)
		}
	}
}

// Time refusals name the forms people type, never Go's layout strings.
func TestParseTime_RefusalsSpeakToPeople(t *testing.T) {
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	for _, in := range []string{"soon", "+soon", "in a bit", "25:99", "2026-13-01", "14h30"} {
		_, err := bot.ParseTime(in, now, time.UTC)
		if err == nil {
			t.Errorf("%q accepted", in)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "use 14:30, 2026-12-01 14:30, +30m or an RFC 3339 time") {
			t.Errorf("%q: %q does not say what to type", in, msg)
		}
		for _, layout := range []string{"15:04", "2006-01-02", "2006"} {
			if strings.Contains(msg, layout) {
				t.Errorf("%q: %q shows Go's layout %s", in, msg, layout)
			}
		}
	}
	_, err := bot.ParseQuick("g at soon", now, time.UTC)
	if err == nil || strings.Contains(err.Error(), "15:04") || !strings.Contains(err.Error(), bot.TimeUsage) {
		t.Errorf("quick form: err = %v, want %q", err, bot.TimeUsage)
	}
}

// Where a duration is asked for a group, what is no duration, zero, negative or out of the
// group's range is refused with that range; an empty answer is the group's default.
func TestGroupReadDuration(t *testing.T) {
	g := &bot.Group{Name: "prod-db-admins", MinDuration: 5 * time.Minute, DefaultDuration: time.Hour, MaxDuration: 4 * time.Hour}
	for in, want := range map[string]time.Duration{"": time.Hour, "2h": 2 * time.Hour, "5m": 5 * time.Minute, "4 hours": 4 * time.Hour} {
		if got, err := g.ReadDuration(in); err != nil || got != want {
			t.Errorf("%q = %s, %v; want %s", in, got, err, want)
		}
	}
	for in, words := range map[string]string{
		"0m":     "0m is not allowed for prod-db-admins; choose between 5m and 4h",
		"-1h":    "-1h is not allowed for prod-db-admins; choose between 5m and 4h",
		"12h":    "12h is not allowed for prod-db-admins; choose between 5m and 4h",
		"1m":     "1m is not allowed for prod-db-admins; choose between 5m and 4h",
		"twelve": `"twelve" is not a duration; use e.g. 30m, 2h or 1d; prod-db-admins allows 5m to 4h`,
	} {
		_, err := g.ReadDuration(in)
		var fe *bot.FieldError
		if !errors.As(err, &fe) || fe.Field != bot.FieldDuration || fe.Message != words {
			t.Errorf("%q: err = %v, want %q", in, err, words)
		}
	}
}
