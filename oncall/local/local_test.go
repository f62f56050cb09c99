package local_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/oncall/local"
)

var nine = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

var rotas = []bot.SeedRota{
	{Name: "db-primary", People: []string{"alice@example.com", "Erin@Example.com"}, Shift: time.Hour, Since: nine},
	{Name: "everyone", People: []string{"bob@example.com", "carol@example.com"}},
	{Name: "epoch", People: []string{"a@example.com", "b@example.com", "c@example.com"}, Shift: 24 * time.Hour},
}

func ask(t *testing.T, p *local.Provider, email string, at time.Time, schedules ...string) bot.OnCallAnswer {
	t.Helper()
	ans, err := p.OnCall(context.Background(), bot.OnCallQuery{Source: bot.OnCallSource{Provider: bot.OnCallLocal, Schedules: schedules},
		Person: bot.User{Email: email}, At: at})
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

func TestTurns(t *testing.T) {
	t.Parallel()
	p := local.New(rotas, func() time.Time { return nine })
	onCall := bot.OnCallAnswer{OnCall: true, Via: `local rota "db-primary"`}
	notOnCall := bot.OnCallAnswer{Why: `not on call for local rota "db-primary"`}
	for _, tc := range []struct {
		name  string
		email string
		at    time.Time
		want  bot.OnCallAnswer
	}{
		{"alice has the first turn", "alice@example.com", nine, onCall},
		{"erin does not", "erin@example.com", nine, notOnCall},
		{"erin's turn starts an hour later, e-mail in any case", "erin@example.com", nine.Add(time.Hour), onCall},
		{"alice's turn ends at 10:00 sharp", "alice@example.com", nine.Add(time.Hour), notOnCall},
		{"turns go round", "alice@example.com", nine.Add(2*time.Hour + 59*time.Minute), onCall},
		{"before Since the turns run backwards", "erin@example.com", nine.Add(-time.Minute), onCall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ask(t, p, tc.email, tc.at, "db-primary"); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWithoutShiftEveryoneIsOnCall(t *testing.T) {
	t.Parallel()
	p := local.New(rotas, func() time.Time { return nine })
	for _, who := range []string{"bob@example.com", "carol@example.com"} {
		if got := ask(t, p, who, nine, "db-primary", "everyone"); !got.OnCall || got.Via != `local rota "everyone"` {
			t.Errorf("%s: %+v", who, got)
		}
	}
	if got := ask(t, p, "dave@example.com", nine, "db-primary", "everyone"); got.OnCall ||
		got.Why != `not on call for local rota "db-primary" or local rota "everyone"` {
		t.Errorf("dave: %+v", got)
	}
}

func TestSinceZeroIsTheUnixEpoch(t *testing.T) {
	t.Parallel()
	p := local.New(rotas, nil)
	day := time.Unix(0, 0).UTC().AddDate(0, 0, 4) // turn 4: 4 mod 3 = 1, b
	if got := ask(t, p, "b@example.com", day.Add(time.Hour), "epoch"); !got.OnCall {
		t.Errorf("b on day 4: %+v", got)
	}
}

func TestMatchedByUPN(t *testing.T) {
	t.Parallel()
	p := local.New(rotas, nil)
	ans, err := p.OnCall(context.Background(), bot.OnCallQuery{Source: bot.OnCallSource{Schedules: []string{"db-primary"}},
		Person: bot.User{Email: "a.admin@corp.example", UPN: "ALICE@example.com"}, At: nine})
	if err != nil || !ans.OnCall {
		t.Errorf("got %+v, %v", ans, err)
	}
}

func TestRequireIncidentIsPagerDutys(t *testing.T) {
	t.Parallel()
	p := local.New(rotas, nil)
	ans, err := p.OnCall(context.Background(), bot.OnCallQuery{Source: bot.OnCallSource{Schedules: []string{"db-primary"}},
		Person: bot.User{Email: "alice@example.com"}, At: nine, RequireIncident: true})
	if err != nil || ans.OnCall || ans.Why != "require_incident needs a PagerDuty service" {
		t.Errorf("got %+v, %v", ans, err)
	}
}

func TestUnknownRotaIsNotFound(t *testing.T) {
	t.Parallel()
	p := local.New(rotas, nil)
	_, err := p.OnCall(context.Background(), bot.OnCallQuery{Source: bot.OnCallSource{Schedules: []string{"nope"}}, At: nine})
	if !errors.Is(err, bot.ErrNotFound) || err.Error() != `local rota "nope" does not exist; add it under directory.on_call in the policy file` {
		t.Errorf("OnCall: %v", err)
	}
	if _, err := p.Now(context.Background(), bot.OnCallSource{Schedules: []string{"nope"}}); !errors.Is(err, bot.ErrNotFound) {
		t.Errorf("Now: %v", err)
	}
}

func TestNowReportsTheTurnAndItsEnd(t *testing.T) {
	t.Parallel()
	p := local.New(rotas, func() time.Time { return nine.Add(90 * time.Minute) })
	got, err := p.Now(context.Background(), bot.OnCallSource{Schedules: []string{"db-primary", "everyone"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %+v", got)
	}
	if s := got[0]; s.Rota != `local rota "db-primary"` || !slices.Equal(s.People, []string{"Erin@Example.com"}) || !s.Until.Equal(nine.Add(2*time.Hour)) {
		t.Errorf("db-primary: %+v", s)
	}
	if s := got[1]; s.Rota != `local rota "everyone"` || !slices.Equal(s.People, []string{"bob@example.com", "carol@example.com"}) || !s.Until.IsZero() {
		t.Errorf("everyone: %+v", s)
	}
}
