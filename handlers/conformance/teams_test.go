package conformance_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

const (
	teamsAppID    = "00000000-0000-4000-8000-00000000a99d"
	teamsSecret   = "s3cret-value~never-logged"
	teamsTenantID = "72f988bf-0000-4000-8000-000000000001"
	teamsTeamID   = "19:team-general@thread.tacv2"
)

// teamsDriver drives the Teams surface through POST /api/messages with activities signed
// as the Bot Framework signs them; the surface answers through teamsfake's connector.
type teamsDriver struct {
	t      testing.TB
	w      *world
	fake   *teamsfake.Fake
	url    string
	seen   []teamsSeen // what was shown, oldest first: connector activities and invoke answers
	synced int         // connector activities already in seen
	told   map[string]int
}

// teamsSeen is one thing Teams showed: an activity the bot sent to a conversation (conv),
// or the answer to one person's click (to).
type teamsSeen struct {
	conv, to   string
	activityID string
	method     string
	body       any // the activity, or the invoke answer's card or message
}

func teamsUser(p Person) teamsfake.User {
	return teamsfake.User{TeamsID: "29:1" + p.Key, AadObjectID: p.ID, Name: p.Key}
}

var teamsChannel = teamsfake.Conversation{ID: teamsApprovals, Type: "channel", ChannelID: teamsApprovals, TeamID: teamsTeamID}

func newTeamsDriver(t *testing.T) *teamsDriver {
	w := newWorld(t)
	d := &teamsDriver{t: t, w: w, fake: teamsfake.New(t, teamsAppID, teamsSecret, teamsTenantID), told: map[string]int{}}
	d.fake.AddConversation(teamsApprovals)
	env := map[string]string{
		"MICROSOFT_APP_ID": teamsAppID, "MICROSOFT_APP_PASSWORD": teamsSecret, "MICROSOFT_APP_TENANT_ID": teamsTenantID,
		"BOTFRAMEWORK_OPENID_METADATA_URL": d.fake.MetadataURL(), "BOTFRAMEWORK_TOKEN_URL": d.fake.TokenURL(),
	}
	st, ok, err := teams.SettingsFromEnv(func(k string) string { return env[k] })
	if err != nil || !ok {
		t.Fatalf("teams settings: ok=%v err=%v", ok, err)
	}
	s, err := st.Build(w.eng, w.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	w.eng.AddNotifier(s)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	d.url = srv.URL + "/api/messages"
	d.send(d.fake.InstallTeam(teamsUser(bob), teamsTeamID)) // the bot learns the tenant's serviceUrl
	for _, p := range everyone {                            // everyone has added the app: a personal chat
		u := teamsUser(p)
		d.send(d.fake.InstallPersonal(u, d.fake.Personal(u)))
	}
	return d
}

func (d *teamsDriver) World() *world { return d.w }

func (d *teamsDriver) send(act map[string]any) []byte {
	d.t.Helper()
	status, body := d.fake.Send(d.t, d.url, act)
	if status != http.StatusOK {
		d.t.Fatalf("POST /api/messages: %d %s", status, body)
	}
	return body
}

func (d *teamsDriver) chat(p Person) teamsfake.Conversation { return d.fake.Personal(teamsUser(p)) }

// sync appends the connector's new activities to what was shown.
func (d *teamsDriver) sync() {
	sent := d.fake.Sent()
	for _, a := range sent[min(d.synced, len(sent)):] {
		d.seen = append(d.seen, teamsSeen{conv: a.ConversationID, activityID: a.ActivityID, method: a.Method, body: a.Body})
	}
	d.synced = len(sent)
}

// inChannel: the approval channel is where the approvers of every group are.
func (d *teamsDriver) inChannel(p Person) bool {
	for _, g := range d.w.pol.Groups {
		if slices.Contains(g.Approvers, p.Email) {
			return true
		}
	}
	return false
}

// shown lists, oldest first, what the person sees: their personal chat, the approval
// channel if they are in it, and the answers to their clicks. posted: new messages only
// (no updates of a card in place).
func (d *teamsDriver) shown(p Person, from int, posted bool) []teamsSeen {
	d.sync()
	chat := d.chat(p).ID
	var out []teamsSeen
	for _, s := range d.seen[min(from, len(d.seen)):] {
		switch {
		case s.to == p.Key:
		case s.to != "":
			continue
		case s.conv == chat, s.conv == teamsApprovals && d.inChannel(p):
			if posted && s.method != http.MethodPost {
				continue
			}
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

func (d *teamsDriver) latest(p Person, id string) (teamsSeen, bool) {
	ss := d.shown(p, 0, false)
	for i := len(ss) - 1; i >= 0; i-- {
		if strings.Contains(teamsfake.Strings(ss[i].body), id) {
			return ss[i], true
		}
	}
	return teamsSeen{}, false
}

var teamsVerbs = map[string]bot.Action{
	"approve": bot.ActApprove, "deny": bot.ActDeny, "cancel": bot.ActCancel, "deactivate": bot.ActDeactivate,
	"extend": bot.ActExtend, "verify": bot.ActVerify, "revoke": bot.ActRevoke, "looks_good": bot.ActLooksGood,
}

// executes lists the Action.Execute buttons for the request (in show-cards too), with their data.
func executes(v any, id string) []map[string]any {
	var out []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if data, _ := x["data"].(map[string]any); x["type"] == "Action.Execute" && data["requestId"] == id {
				out = append(out, x)
			}
			for k, y := range x {
				if k != "fallback" {
					walk(y)
				}
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(v)
	return out
}

func (d *teamsDriver) Offered(p Person, id string) []bot.Action {
	s, ok := d.latest(p, id)
	if !ok {
		return nil
	}
	var out []bot.Action
	for _, x := range executes(s.body, id) {
		if a, ok := teamsVerbs[fmt.Sprint(x["verb"])]; ok {
			out = append(out, a)
		}
	}
	return out
}

func (d *teamsDriver) Shared(p Person, id string) bool {
	s, ok := d.latest(p, id)
	return ok && s.conv == teamsApprovals
}

func (d *teamsDriver) Told(p Person) []string {
	d.sync()
	var out []string
	for _, s := range d.shown(p, d.told[p.Key], true) {
		out = append(out, teamsfake.Strings(s.body))
	}
	d.told[p.Key] = len(d.seen)
	return out
}

// say sends a text message in the person's personal chat and returns the bot's reply.
func (d *teamsDriver) say(p Person, text string) string {
	d.t.Helper()
	before := len(d.fake.SentTo(d.chat(p).ID))
	d.send(d.fake.Message(teamsUser(p), d.chat(p), text))
	xs := d.fake.SentTo(d.chat(p).ID)
	if len(xs) == before {
		d.t.Fatalf("no reply to %q", text)
	}
	return teamsfake.Strings(xs[len(xs)-1].Body)
}

func (d *teamsDriver) Request(p Person, group string, access bot.Access, dur time.Duration, reason string) string {
	d.t.Helper()
	return submittedID(d.t, d.say(p, fmt.Sprintf("activate %s %s for %s %s", group, access, bot.FormatDuration(dur), reason)))
}

func (d *teamsDriver) Pending(p Person) []string {
	d.t.Helper()
	return knownIDs(d.w, d.say(p, "pending"))
}

func (d *teamsDriver) Drain() { d.w.runDue() }

func (d *teamsDriver) Advance(dur time.Duration) { d.w.clock.Advance(dur); d.Drain() }

// Act clicks the action's button on the latest card the person sees about the request,
// filling in the card's inputs (a deny reason). Without such a button, the person clicks the
// verb on the approvers' card as someone in the channel could (Teams sends any verb the
// client names), or, for their own request, types the command in their personal chat.
func (d *teamsDriver) Act(p Person, act bot.Action, id, reason string) Outcome {
	d.t.Helper()
	verb := string(act)
	for v, a := range teamsVerbs {
		if a == act {
			verb = v
		}
	}
	conv, replyTo, data := teamsfake.Conversation{}, "", map[string]any(nil)
	if s, ok := d.latest(p, id); ok {
		for _, x := range executes(s.body, id) {
			if x["verb"] == verb {
				data, replyTo = x["data"].(map[string]any), s.activityID
				conv = d.chat(p)
				if s.conv == teamsApprovals {
					conv = teamsChannel
				}
			}
		}
	}
	if data == nil {
		if card := d.card(id); card != "" && !slices.Contains([]bot.Action{bot.ActCancel, bot.ActDeactivate, bot.ActExtend}, act) {
			conv, replyTo, data = teamsChannel, card, map[string]any{"verb": verb, "requestId": id}
		} else {
			text := d.say(p, strings.TrimSpace(fmt.Sprintf("%s %s %s", verb, id, reason)))
			return Outcome{Text: text, Refused: strings.Contains(text, "That did not work") || strings.Contains(text, "did not understand")}
		}
	}
	data = maps.Clone(data)
	data["verb"] = verb
	if act == bot.ActDeny {
		data["denyReason"] = reason
	}
	d.sync()
	body := d.send(d.fake.Execute(teamsUser(p), conv, replyTo, verb, data))
	var a struct {
		StatusCode int             `json:"statusCode"`
		Type       string          `json:"type"`
		Value      json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.StatusCode != http.StatusOK {
		d.t.Fatalf("invoke answer %s: %v", body, err)
	}
	var v any
	_ = json.Unmarshal(a.Value, &v)
	d.seen = append(d.seen, teamsSeen{to: p.Key, activityID: replyTo, body: v})
	if a.Type == "application/vnd.microsoft.activity.message" {
		return Outcome{Text: fmt.Sprint(v), Refused: true}
	}
	return Outcome{Text: teamsfake.Strings(v)}
}

// card is the activity id of the approvers' card of the request in the approval channel.
func (d *teamsDriver) card(id string) string {
	for _, a := range d.fake.SentTo(teamsApprovals) {
		if a.Method == http.MethodPost && strings.Contains(a.Text(), id) {
			return a.ActivityID
		}
	}
	return ""
}
