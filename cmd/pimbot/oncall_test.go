package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/oncall/opsgenie/opsgeniefake"
	"github.com/pimbot/pimbot/oncall/pagerduty/pagerdutyfake"
)

const onCallCheckPolicy = `
groups:
  - name: prod-db-admins
    id: 11111111-1111-1111-1111-111111111111
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    auto_approve:
      on_call:
        pagerduty: {schedules: [P1ABCD2]}
        local: {schedules: [db-primary]}
  - name: web-admins
    id: 22222222-2222-2222-2222-222222222222
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    auto_approve:
      on_call:
        opsgenie: {schedules: [Web, Nightly]}
directory:
  users:
    - {email: alice@example.com}
    - {email: bob@example.com}
  on_call:
    - {name: db-primary, people: [alice@example.com, erin@example.com], shift: 1h}
`

func TestOnCall_ProvidersNeedTheirCredentials(t *testing.T) {
	pol, err := policyfile.Parse("oncall.yaml", []byte(onCallCheckPolicy))
	if err != nil {
		t.Fatal(err)
	}
	_, err = onCallProviders(func(string) string { return "" }, pol, nil, nil)
	if err == nil {
		t.Fatal("no error without PAGERDUTY_TOKEN and OPSGENIE_API_KEY")
	}
	for _, want := range []string{"group prod-db-admins: auto_approve uses pagerduty; set PAGERDUTY_TOKEN",
		"group web-admins: auto_approve uses opsgenie; set OPSGENIE_API_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestOnCall_CheckListsWhoIsOnCallAndFailures(t *testing.T) {
	pol, err := policyfile.Parse("oncall.yaml", []byte(onCallCheckPolicy))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	end := now.Add(3 * time.Hour).Truncate(time.Minute)
	pd := pagerdutyfake.New(t, "pd-token-secret")
	pd.AddUser(pagerdutyfake.User{ID: "PALICE1", Name: "Alice", Email: "alice@example.com"})
	pd.AddSchedule(pagerdutyfake.Schedule{ID: "P1ABCD2", Name: "DB primary"})
	pd.AddOnCall(pagerdutyfake.OnCall{UserID: "PALICE1", ScheduleID: "P1ABCD2", PolicyID: "PEP0001", Start: now.Add(-time.Hour), End: end})
	og := opsgeniefake.New(t, "og-key-secret")
	og.AddSchedule(opsgeniefake.Schedule{ID: "9a9a9a9a-0000-4000-8000-000000000001", Name: "Web"})
	og.AddShift(opsgeniefake.Shift{ScheduleID: "9a9a9a9a-0000-4000-8000-000000000001", Username: "carol@example.com"})
	env := map[string]string{"PAGERDUTY_TOKEN": "pd-token-secret", "PAGERDUTY_URL": pd.URL(),
		"OPSGENIE_API_KEY": "og-key-secret", "OPSGENIE_URL": og.URL()}
	clients := map[string]bool{}
	providers, err := onCallProviders(func(k string) string { return env[k] }, pol, func(service string) *http.Client {
		clients[service] = true
		return &http.Client{Timeout: 5 * time.Second}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(providers) != 3 || !clients["pagerduty"] || !clients["opsgenie"] {
		t.Fatalf("%d providers, clients asked for %v", len(providers), clients)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	r := &checkReport{w: &out}
	checkOnCall(ctx, r, pol, providers)
	text := out.String()
	for _, want := range []string{
		`ok    on call for prod-db-admins: PagerDuty schedule "DB primary" (P1ABCD2): alice@example.com until ` + end.Format("2006-01-02 15:04") + " UTC\n",
		`ok    on call for prod-db-admins: local rota "db-primary": `,
		`FAIL  web-admins: Opsgenie schedule "Nightly" does not exist`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("check output lacks %q:\n%s", want, text)
		}
	}
	if r.problems != 1 {
		t.Errorf("%d problems, want 1 (the unknown Opsgenie schedule):\n%s", r.problems, text)
	}

	// A refused token is a failure line that names the variable, and never shows the token.
	env["PAGERDUTY_TOKEN"] = "pd-token-revoked"
	if providers, err = onCallProviders(func(k string) string { return env[k] }, pol, nil, nil); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	r = &checkReport{w: &out}
	if checkOnCall(ctx, r, pol, providers); r.problems == 0 {
		t.Error("check passed with a refused token")
	}
	if want := "FAIL  prod-db-admins: PagerDuty refused the token (PAGERDUTY_TOKEN)"; !strings.Contains(out.String(), want) {
		t.Errorf("check output lacks %q:\n%s", want, out.String())
	}
	for _, secret := range []string{"pd-token-secret", "pd-token-revoked", "og-key-secret"} {
		if strings.Contains(out.String()+text, secret) {
			t.Errorf("a secret is in the check output:\n%s%s", text, out.String())
		}
	}
}
