package slack

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/slack-go/slack"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares v's JSON with testdata/<TestName>.golden.json.
func golden(t *testing.T, v any) {
	t.Helper()
	buf := readable(t, v, "  ")
	path := filepath.Join("testdata", strings.ReplaceAll(t.Name(), "/", "_")+".golden.json")
	if *update {
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(want, buf) {
		t.Errorf("%s differs from the rendering (run with -update if the change is intended)\n--- got:\n%s", path, buf)
	}
}

// readable is v's JSON as Slack reads it: slack-go's marshalers escape <, > and & as
// \u003c..., which hides what the text says; decode and encode again without that.
func readable(t *testing.T, v any, indent string) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(x); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	t0     = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	alice  = bot.User{ID: "u-alice", Email: "alice@example.com", Name: "Alice"}
	bob    = bot.User{ID: "u-bob", Email: "bob@example.com", Name: "Bob"}
	carol  = bot.User{ID: "u-carol", Email: "carol@example.com", Name: "Carol"}
	slacks = people{"u-alice": "UALICE", "u-bob": "UBOB"}
)

func testGroups(t *testing.T) *bot.Policy {
	t.Helper()
	pol, err := policyfile.Parse("test.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func pendingRequest() *bot.Request {
	return &bot.Request{
		ID: "R7KX2M9Q", Version: 1, Kind: bot.KindActivate, Group: "prod-db-admins", GroupID: "g-prod", Access: bot.Member,
		Requester: alice, Surface: Name, Reason: "fixing the outage <!channel> & <@U123> *now*", Ticket: "INC-1234",
		Duration: 2 * time.Hour, Start: t0, State: bot.StatePending, ApprovalsRequired: 1, CreatedAt: t0,
	}
}

func TestGolden_ActivateModal(t *testing.T) {
	pol := testGroups(t)
	var groups []*bot.Group
	for _, n := range []string{"prod-db-admins", "quorum", "sandbox", "ticketed"} {
		g, _ := pol.Group(n)
		groups = append(groups, g)
	}
	t.Run("prod-db-admins", func(t *testing.T) {
		golden(t, activateModal(activateForm{Groups: groups, Opened: t0.Add(17 * time.Second)}))
	})
	t.Run("ticketed", func(t *testing.T) {
		golden(t, activateModal(activateForm{Groups: groups, Selected: groups[3], Opened: t0}))
	})
	t.Run("not-eligible", func(t *testing.T) {
		golden(t, activateModal(activateForm{Opened: t0}))
	})
}

func TestGolden_ApprovalMessage(t *testing.T) {
	pol := testGroups(t)
	prod, _ := pol.Group("prod-db-admins")
	quorum, _ := pol.Group("quorum")
	decide := []bot.Action{bot.ActApprove, bot.ActDeny}
	render := func(r *bot.Request, g *bot.Group, acts []bot.Action) msg {
		return approvalMessage(approvalView{Req: r, Group: g, Actions: acts, Now: t0.Add(10 * time.Minute), Loc: time.UTC, Who: slacks})
	}
	t.Run("pending", func(t *testing.T) { golden(t, render(pendingRequest(), prod, decide)) })
	t.Run("quorum-progress", func(t *testing.T) {
		r := pendingRequest()
		r.Group, r.GroupID, r.ApprovalsRequired = "quorum", "g-quorum", 2
		r.Approvals = []bot.Decision{{By: bob, At: t0.Add(5 * time.Minute), Surface: Name}}
		golden(t, render(r, quorum, decide))
	})
	t.Run("active", func(t *testing.T) {
		r := pendingRequest()
		r.State, r.ActivatedAt, r.EndsAt = bot.StateActive, t0.Add(5*time.Minute), t0.Add(2*time.Hour+5*time.Minute)
		r.Approvals = []bot.Decision{{By: bob, At: t0.Add(5 * time.Minute), Surface: Name}}
		golden(t, render(r, prod, nil))
	})
	t.Run("denied", func(t *testing.T) {
		r := pendingRequest()
		r.State, r.DecidedAt, r.EndedAt = bot.StateDenied, t0.Add(5*time.Minute), t0.Add(5*time.Minute)
		r.Denial = &bot.Decision{By: carol, At: t0.Add(5 * time.Minute)}
		r.DenyReason = "use the read replica <!here>"
		golden(t, render(r, prod, nil))
	})
	t.Run("extension", func(t *testing.T) {
		r := pendingRequest()
		r.ID, r.Kind, r.ParentID, r.Duration, r.Ticket = "RXT2222Q", bot.KindExtend, "R7KX2M9Q", time.Hour, ""
		golden(t, render(r, prod, decide))
	})
}

func TestGolden_RequesterDMs(t *testing.T) {
	pol := testGroups(t)
	prod, _ := pol.Group("prod-db-admins")
	now := t0.Add(10 * time.Minute)
	active := pendingRequest()
	active.State, active.ActivatedAt, active.EndsAt = bot.StateActive, t0.Add(5*time.Minute), t0.Add(2*time.Hour+5*time.Minute)
	ended := active.Clone()
	ended.State, ended.EndedAt, ended.EndReason = bot.StateEnded, active.EndsAt, "expired"
	denied := pendingRequest()
	denied.State, denied.DenyReason = bot.StateDenied, "not during the freeze <!channel>"
	out := map[string]msg{}
	manage := []bot.Action{bot.ActExtend, bot.ActDeactivate}
	for _, c := range []struct {
		ev   bot.Event
		acts []bot.Action // what the engine offers the requester then
	}{
		{bot.Event{Type: bot.EvSubmitted, Request: pendingRequest(), Actor: &alice}, []bot.Action{bot.ActCancel}},
		{bot.Event{Type: bot.EvDenied, Request: denied, Actor: &bob}, nil},
		{bot.Event{Type: bot.EvActivated, Request: active}, manage},
		{bot.Event{Type: bot.EvReminder, Request: active}, manage},
		{bot.Event{Type: bot.EvEnded, Request: ended}, nil},
	} {
		ev := c.ev
		m, ok := requesterMessage(ev, prod, c.acts, now, time.UTC, slacks)
		if !ok {
			t.Fatalf("no DM for %s", ev.Type)
		}
		out[ev.Type] = m
	}
	golden(t, out)
}

func TestGolden_AppHome(t *testing.T) {
	pol := testGroups(t)
	var groups []*bot.Group
	for _, n := range []string{"prod-db-admins", "sandbox"} {
		g, _ := pol.Group(n)
		groups = append(groups, g)
	}
	active := pendingRequest()
	active.ID, active.State, active.ActivatedAt, active.EndsAt = "RACT1VE2", bot.StateActive, t0, t0.Add(2*time.Hour)
	ended := pendingRequest()
	ended.ID, ended.State, ended.EndedAt = "REND3D22", bot.StateEnded, t0.Add(-time.Hour)
	acts := map[string][]bot.Action{pendingRequest().ID: {bot.ActCancel}, active.ID: {bot.ActExtend, bot.ActDeactivate}}
	golden(t, homeView(groups, []*bot.Request{pendingRequest(), active, ended}, acts, inbox{}, "", t0.Add(10*time.Minute), time.UTC))
}

func TestGolden_DenyAndExtendModals(t *testing.T) {
	pol := testGroups(t)
	prod, _ := pol.Group("prod-db-admins")
	active := pendingRequest()
	active.State, active.ActivatedAt, active.EndsAt = bot.StateActive, t0, t0.Add(2*time.Hour)
	t.Run("deny", func(t *testing.T) { golden(t, denyModal("R7KX2M9Q", pendingRequest(), t0, time.UTC)) })
	t.Run("extend", func(t *testing.T) {
		golden(t, extendModal("R7KX2M9Q", active, &extension{Group: prod, Room: 2 * time.Hour, Default: time.Hour}, t0.Add(time.Hour), time.UTC))
	})
}

// Whatever people type is inert in mrkdwn: no mention, no link, no entity.
func TestEscape(t *testing.T) {
	cases := map[string]string{
		"<!channel>":             "&lt;!channel&gt;",
		"<@U123>":                "&lt;@U123&gt;",
		"<!subteam^S1|@admins>":  "&lt;!subteam^S1|@admins&gt;",
		"<https://evil|click>":   "&lt;https://evil|click&gt;",
		"a &amp; b":              "a &amp;amp; b",
		"plain words, *bold* ok": "plain words, *bold* ok",
	}
	for in, want := range cases {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %q, want %q", in, got, want)
		}
	}
	// Every rendering that shows a reason escapes it.
	r := pendingRequest()
	m := approvalMessage(approvalView{Req: r, Now: t0, Loc: time.UTC, Who: people{}})
	s := string(readable(t, slack.Blocks{BlockSet: m.Blocks}, ""))
	if !strings.Contains(s, "&lt;!channel&gt;") {
		t.Fatalf("the reason is missing: %s", s)
	}
	if strings.Contains(s+m.Text, "<!channel>") || strings.Contains(s+m.Text, "<@U123>") {
		t.Fatalf("unescaped: %s %s", m.Text, s)
	}
}

// A failed request says why, wherever it shows: the engine's reason (escaped), not a fixed
// "the directory refused the grant".
func TestFailed_SaysWhy(t *testing.T) {
	pol := testGroups(t)
	prod, _ := pol.Group("prod-db-admins")
	r := pendingRequest()
	r.State, r.EndedAt = bot.StateFailed, t0.Add(time.Hour)
	r.EndReason = "you already hold member of prod-db-admins outside pimbot <!channel>"
	ev := bot.Event{Type: bot.EvFailed, Request: r, Detail: r.EndReason}
	want := "you already hold member of prod-db-admins outside pimbot &lt;!channel&gt;"
	dm, ok := requesterMessage(ev, prod, nil, t0.Add(time.Hour), time.UTC, slacks)
	if !ok || !strings.Contains(dm.Text, want) || !strings.Contains(dm.Text, "Nothing was granted") || strings.Contains(dm.Text, "<!channel>") {
		t.Fatalf("requester DM: %q", dm.Text)
	}
	if a := alertMessage(ev, slacks); !strings.Contains(a.Text, want) || strings.Contains(a.Text, "the directory refused") {
		t.Fatalf("approvers' alert: %q", a.Text)
	}
	if line := statusLine(r, nil, t0.Add(time.Hour), time.UTC, slacks); !strings.Contains(line, want) {
		t.Fatalf("approval message status: %q", line)
	}
}
