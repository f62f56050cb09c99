package graphclient_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/store/storetest"
)

var quiet = slog.New(slog.DiscardHandler)

// recorder is a surface that remembers what it was asked to tell people.
type recorder struct {
	mu     sync.Mutex
	events []bot.Event
}

func (r *recorder) Name() string { return "test" }
func (r *recorder) Notify(_ context.Context, ev bot.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) drift() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if bot.IsDrift(ev.Type) {
			out = append(out, ev.Type+" "+ev.Request.Requester.Email+" "+string(ev.Request.Access)+" of "+ev.Request.Group)
		}
	}
	slices.Sort(out)
	return out
}

const driftPolicy = `
settings: {requests_per_minute: 0, max_pending: 0}
groups:
  - {name: prod, id: ` + gProd + `, access: [member, owner], eligible: [group:engineering@example.com], require_approval: false, require_justification: false, standing_access: report}
  - {name: tier0, id: ` + gRole + `, eligible: [group:sre@example.com], require_approval: false, require_justification: false, standing_access: remove}
  - {name: eng, id: ` + gEng + `, eligible: [alice@example.com], require_approval: false, require_justification: false, standing_access: ignore}
`

// Drift against the fake Graph, through the real engine: access added behind the bot's back
// is reported to the approvers (standing_access: report) or removed (remove); a grant made
// by the bot is left alone; a standing finding is not reported again next round.
func TestDrift_ReportAndRemoveAgainstGraph(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	pol, err := policyfile.Parse("drift.yaml", []byte(driftPolicy))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)}
	rec := &recorder{}
	st := storetest.New(t)
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: d, Clock: clk, Logger: quiet, Notifiers: []bot.Notifier{rec}})
	alice, err := d.ResolveUser(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Submit(ctx, bot.Actor{User: alice}, bot.SubmitInput{Group: "prod", Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	eng.RunDue(ctx)
	if !f.Holds(gProd, uAlice, false) {
		t.Fatal("alice's grant did not reach Graph")
	}
	// Behind the bot's back: bob a member and carol an owner of prod (report), erin a member
	// of tier0 (remove), bob a member of eng (ignore).
	f.Grant(gProd, uBob, false)
	f.Grant(gProd, uCarol, true)
	f.Grant(gRole, uErin, false)
	f.Grant(gEng, uBob, false)

	rc := eng.Reconciler(d, time.Minute)
	found, err := rc.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range found {
		got = append(got, x.User.Email+" "+string(x.Access)+" of "+x.Group.Name)
		if !x.Reported {
			t.Fatalf("%s not reported", x.User.Email)
		}
	}
	slices.Sort(got)
	if strings.Join(got, "; ") != "bob@example.com member of prod; carol@example.com owner of prod; erin@example.com member of tier0" {
		t.Fatalf("found: %v", got)
	}
	if f.Holds(gRole, uErin, false) {
		t.Fatal("standing_access: remove left erin in tier0")
	}
	if !f.Holds(gProd, uBob, false) || !f.Holds(gProd, uCarol, true) || !f.Holds(gProd, uAlice, false) || !f.Holds(gEng, uBob, false) {
		t.Fatal("report and ignore must not remove anyone, nor touch a grant")
	}
	eng.RunDue(ctx) // the notify jobs
	want := "drift bob@example.com member of prod|drift carol@example.com owner of prod|drift_removed erin@example.com member of tier0"
	if g := strings.Join(rec.drift(), "|"); g != want {
		t.Fatalf("approvers were told:\n%s\nwant:\n%s", g, want)
	}
	audit, err := st.AuditSince(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, a := range audit {
		if strings.HasPrefix(a.Type, "drift") {
			types = append(types, a.Type+" "+a.Subject)
		}
	}
	slices.Sort(types)
	if strings.Join(types, ",") != "drift bob@example.com,drift carol@example.com,drift_removed erin@example.com" {
		t.Fatalf("audit: %v", types)
	}

	// Next round: the standing holders are found again but not reported again.
	found, err = rc.Once(ctx)
	if err != nil || len(found) != 2 || found[0].Reported || found[1].Reported {
		t.Fatalf("second round: %+v %v", found, err)
	}
	eng.RunDue(ctx)
	if n := len(rec.drift()); n != 3 {
		t.Fatalf("%d drift notifications after the second round, want still 3", n)
	}
}

// Eligibility through a nested group: erin is in engineering through sre.
func TestTransitiveEligibilityThroughTheEngine(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	pol, err := policyfile.Parse("drift.yaml", []byte(driftPolicy))
	if err != nil {
		t.Fatal(err)
	}
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: d, Logger: quiet})
	erin, _ := d.ResolveUser(ctx, "erin@example.com")
	bob, _ := d.ResolveUser(ctx, "bob@example.com")
	if _, err := eng.Submit(ctx, bot.Actor{User: erin}, bot.SubmitInput{Group: "prod", Duration: time.Hour}); err != nil {
		t.Fatalf("erin (engineering through sre): %v", err)
	}
	var fe *bot.FieldError
	if _, err := eng.Submit(ctx, bot.Actor{User: bob}, bot.SubmitInput{Group: "prod", Duration: time.Hour}); !errors.As(err, &fe) || fe.Field != bot.FieldGroup {
		t.Fatalf("bob is in no group of prod's eligible list: %v", err)
	}
	gs, err := eng.EligibleGroups(ctx, erin)
	if err != nil || len(gs) != 2 || gs[0].Name != "prod" || gs[1].Name != "tier0" {
		t.Fatalf("erin's groups: %v %v", gs, err)
	}
	_ = f
}
