package teams_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// walkCard calls f on every object of a card's JSON tree, with the key it sits under.
func walkCard(v any, key string, f func(x map[string]any, key string)) {
	switch x := v.(type) {
	case map[string]any:
		f(x, key)
		for k, y := range x {
			walkCard(y, k, f)
		}
	case []any:
		for _, y := range x {
			walkCard(y, key, f)
		}
	}
}

// goldenCards are the cards of every golden file, by file name.
func goldenCards(t *testing.T) map[string]map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	out := map[string]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = c
	}
	return out
}

// Text is readable on every Teams theme: no card colours its text. In Teams' light host
// config `warning` is 1.47:1 on white and `good` 2.07:1, and `attention` is 3.24:1 on the
// dark theme's card, all under WCAG's 4.5:1; `default` is 15.5:1 (light) and 13.9:1 (dark).
// State is a label, and every required input says what is missing.
func TestCard_TextIsReadableAndInputsSayWhatIsMissing(t *testing.T) {
	for name, card := range goldenCards(t) {
		walkCard(card, "", func(x map[string]any, _ string) {
			typ, _ := x["type"].(string)
			if c, ok := x["color"].(string); ok && (typ == "TextBlock" || typ == "TextRun") && !strings.EqualFold(c, "default") {
				t.Errorf("%s: a %s in the colour %q: %v", name, typ, c, x["text"])
			}
			if strings.HasPrefix(typ, "Input.") && x["isRequired"] == true {
				if m, _ := x["errorMessage"].(string); m == "" {
					t.Errorf("%s: the required input %v has no errorMessage", name, x["id"])
				}
			}
			if typ == "Action.ShowCard" && !strings.Contains(x["title"].(string), "reason") {
				t.Errorf("%s: the button %q opens a reason box without saying so", name, x["title"])
			}
		})
	}
}

// The approvers' card leads with a state label and a real headline, puts the reason near
// the top, shows one When line, and names the request once, in the small print at the end.
func TestCard_ApprovalReadsAtAGlance(t *testing.T) {
	g := testGroups(t)[0]
	card := teams.ApprovalCard(view, pending(g), g, decide)
	body := card["body"].([]any)
	if s := teamsfake.Strings(body[0]); !strings.Contains(s, "Pending approval") {
		t.Errorf("the card does not start with its state: %q", s)
	}
	h := body[1].(map[string]any)
	if h["text"] != "Alice requests prod-db-admins (member) · 2h" || h["size"] != "Large" || h["weight"] != "Bolder" || h["style"] != "heading" {
		t.Errorf("the headline is %v", h)
	}
	if s := teamsfake.Strings(body[2]); !strings.Contains(s, "fixing the outage") {
		t.Errorf("the reason is not right under the headline: %q", s)
	}
	text := teamsfake.Strings(body)
	if n := strings.Count(text, "R7KX2M9Q"); n != 1 {
		t.Errorf("the request id is shown %d times, want once:\n%s", n, text)
	}
	last := body[len(body)-1].(map[string]any)
	if last["isSubtle"] != true || last["size"] != "Small" || !strings.Contains(last["text"].(string), "R7KX2M9Q") {
		t.Errorf("the id is not in the small print at the end: %v", last)
	}
	if !strings.Contains(text, "09:00–11:00 UTC") || strings.Count(text, "2h") != 1 {
		t.Errorf("want one When line and the duration once:\n%s", text)
	}
}

// The MFA card's next step is its positive button; the engine's actions follow.
func TestCard_MFAVerifyIsThePositiveAction(t *testing.T) {
	g := testGroups(t)[0]
	r := pending(g)
	r.State = bot.StateVerifying
	card := teams.MFACard(view, r, bot.Challenge{URL: "https://login.microsoftonline.com/t/oauth2/v2.0/authorize?state=s"}, []bot.Action{bot.ActVerify, bot.ActCancel})
	first := card["actions"].([]any)[0].(map[string]any)
	if first["type"] != "Action.OpenUrl" || first["title"] != "Verify with Microsoft" || first["style"] != "positive" {
		t.Errorf("the first action is %v", first)
	}
}

// The form reads a duration as the group does: 0m, a negative one and one out of the range
// are refused with the group's range, never turned into the default.
func TestForm_ReadsTheDurationForTheGroup(t *testing.T) {
	g := testGroups(t)[0] // prod-db-admins: 5m to 4h
	for in, words := range map[string]string{
		"0m":  "0m is not allowed for prod-db-admins; choose between 5m and 4h",
		"-1h": "-1h is not allowed for prod-db-admins; choose between 5m and 4h",
		"9h":  "9h is not allowed for prod-db-admins; choose between 5m and 4h",
		"x":   `"x" is not a duration; use e.g. 30m, 2h or 1d; prod-db-admins allows 5m to 4h`,
	} {
		_, err := teams.Form{Group: g.Name, Duration: in}.Input(now, time.UTC, g)
		var fe *bot.FieldError
		if !errors.As(err, &fe) || fe.Field != bot.FieldDuration || fe.Message != words {
			t.Errorf("%q: err = %v, want %q", in, err, words)
		}
	}
	in, err := teams.Form{Group: g.Name, Duration: "2h"}.Input(now, time.UTC, g)
	if err != nil || in.Duration != 2*time.Hour {
		t.Errorf("2h: %v, %v", in.Duration, err)
	}
	// A refused duration comes back unchosen, with the refusal under the field.
	card := teams.FormCard(view, []*bot.Group{g}, teams.Form{Group: g.Name, Duration: "0m"}, &bot.FieldError{Field: bot.FieldDuration, Message: "0m is not allowed"}, "")
	walkCard(card, "", func(x map[string]any, _ string) {
		if x["id"] == "duration" {
			if v, _ := x["value"].(string); v != "" {
				t.Errorf("the refused duration is chosen as %q", v)
			}
			if strings.Contains("\n"+teamsfake.Strings(x["choices"]), "\n0m\n") {
				t.Error("0m is offered")
			}
		}
	})
}

// Through Teams: a form submitted with 0m is refused with the range, and makes no request.
func TestForm_TeamsRefusesZeroDuration(t *testing.T) {
	e := newEnv(t)
	chat := e.fake.Personal(alice)
	e.send(e.fake.Message(alice, chat, "activate"))
	form := e.lastTo(chat.ID)
	for _, d := range []string{"0m", "-30m"} {
		refused := e.invoke(alice, chat, form.ActivityID, "submit", map[string]any{"verb": "submit", "group": "prod-db-admins", "duration": d, "reason": "x"}).card(t)
		mustContain(t, "the refused form", teamsfake.Strings(refused), d+" is not allowed for prod-db-admins; choose between 5m and 4h")
	}
	if rs := e.requests(aliceID); len(rs) != 0 {
		t.Fatalf("a refused form made requests: %+v", rs)
	}
}

// However many requests a person has and however long their words, the status card stays
// within Teams' message limit, each deny reason input has its own id, and the requests not
// shown are counted.
func TestCard_StatusStaysSmall(t *testing.T) {
	g := testGroups(t)[0]
	var rs []*bot.Request
	acts := map[string][]bot.Action{}
	for i := range 20 {
		r := pending(g)
		r.ID = fmt.Sprintf("R%07d", i)
		r.Group = strings.Repeat("g", 120)
		r.State, r.DenyReason = bot.StateDenied, strings.Repeat("why ", bot.MaxReasonLen/4)
		r.Denial = &bot.Decision{By: bot.User{ID: carolID, Name: strings.Repeat("N", 300)}, At: now}
		rs = append(rs, r)
		acts[r.ID] = []bot.Action{bot.ActApprove, bot.ActDeny, bot.ActVerify, bot.ActExtend, bot.ActDeactivate, bot.ActCancel}
	}
	card := teams.StatusCard(view, rs, acts)
	b, err := json.Marshal(card)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 28<<10 {
		t.Fatalf("the card is %d bytes; Teams refuses messages over 28 KB", len(b))
	}
	ids := inputIDs(card)
	if len(ids) == 0 || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Fatalf("deny reason inputs %q: want each its own", ids)
	}
	if !strings.Contains(string(b), fmt.Sprintf("and %d more", 20-len(ids))) {
		t.Fatalf("the requests not shown are not counted (%d shown)", len(ids))
	}
}
