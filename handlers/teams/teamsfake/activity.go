package teamsfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// User is a Teams user as activities name them.
type User struct {
	TeamsID     string // 29:...
	AadObjectID string // the Entra object id
	Name        string
}

// Conversation is where an activity happens.
type Conversation struct {
	ID        string
	Type      string // personal or channel
	ChannelID string // for channel conversations
	TeamID    string
}

var activitySeq atomic.Int64

// Personal is the user's 1:1 chat with the bot (known to the connector).
func (f *Fake) Personal(u User) Conversation {
	id := "a:1personal-" + u.TeamsID
	f.AddConversation(id)
	f.mu.Lock()
	f.personal[u.TeamsID] = id
	f.mu.Unlock()
	return Conversation{ID: id, Type: "personal"}
}

// Channel is a thread in a team's channel (the bot is in the team).
func (f *Fake) Channel(channelID, teamID string) Conversation {
	f.AddConversation(channelID)
	id := fmt.Sprintf("%s;messageid=%d", channelID, 1731000000000+activitySeq.Add(1))
	f.AddConversation(id)
	return Conversation{ID: id, Type: "channel", ChannelID: channelID, TeamID: teamID}
}

// Activity builds an inbound activity of any type from u in c, as Teams sends it.
func (f *Fake) Activity(typ string, u User, c Conversation) map[string]any {
	cd := map[string]any{"tenant": map[string]any{"id": f.TenantID}}
	conv := map[string]any{"id": c.ID, "conversationType": c.Type, "tenantId": f.TenantID}
	if c.Type == "channel" {
		conv["isGroup"] = true
		cd["teamsChannelId"], cd["teamsTeamId"] = c.ChannelID, c.TeamID
		cd["channel"] = map[string]any{"id": c.ChannelID}
		cd["team"] = map[string]any{"id": c.TeamID}
	}
	return map[string]any{
		"type":          typ,
		"id":            fmt.Sprintf("f:%d", 1733000000000+activitySeq.Add(1)),
		"timestamp":     time.Now().UTC().Format(time.RFC3339Nano),
		"localTimezone": "Europe/Berlin",
		"serviceUrl":    f.ServiceURL(),
		"channelId":     "msteams",
		"from":          map[string]any{"id": u.TeamsID, "name": u.Name, "aadObjectId": u.AadObjectID},
		"conversation":  conv,
		"recipient":     map[string]any{"id": "28:" + f.AppID, "name": "pimbot"},
		"channelData":   cd,
		"locale":        "en-US",
	}
}

// Message is a text message; in a channel the bot is mentioned first, as Teams writes it.
func (f *Fake) Message(u User, c Conversation, text string) map[string]any {
	a := f.Activity("message", u, c)
	a["textFormat"] = "plain"
	a["text"] = text
	if c.Type == "channel" {
		a["text"] = "<at>pimbot</at> " + text
		a["entities"] = []any{map[string]any{"type": "mention", "text": "<at>pimbot</at>",
			"mentioned": map[string]any{"id": "28:" + f.AppID, "name": "pimbot"}}}
	}
	return a
}

// Execute is the invoke of an Action.Execute click: data holds the action's data merged
// with the card's inputs. replyTo is the card's activity id.
func (f *Fake) Execute(u User, c Conversation, replyTo, verb string, data map[string]any) map[string]any {
	a := f.Activity("invoke", u, c)
	a["name"] = "adaptiveCard/action"
	a["replyToId"] = replyTo
	a["value"] = map[string]any{"action": map[string]any{"type": "Action.Execute", "id": "", "verb": verb, "data": data}, "trigger": "manual"}
	return a
}

// Submit is the message an Action.Submit click sends (older hosts).
func (f *Fake) Submit(u User, c Conversation, replyTo string, data map[string]any) map[string]any {
	a := f.Activity("message", u, c)
	a["replyToId"] = replyTo
	a["value"] = data
	return a
}

// InstallPersonal is the conversationUpdate Teams sends when a user adds the bot.
func (f *Fake) InstallPersonal(u User, c Conversation) map[string]any {
	a := f.Activity("conversationUpdate", u, c)
	a["membersAdded"] = []any{map[string]any{"id": "28:" + f.AppID}}
	return a
}

// InstallTeam is the conversationUpdate Teams sends when the bot is added to a team.
func (f *Fake) InstallTeam(u User, teamID string) map[string]any {
	f.AddConversation(teamID)
	a := f.Activity("conversationUpdate", u, Conversation{ID: teamID, Type: "channel", ChannelID: teamID, TeamID: teamID})
	a["membersAdded"] = []any{map[string]any{"id": "28:" + f.AppID}}
	a["channelData"].(map[string]any)["eventType"] = "teamMemberAdded"
	return a
}

// Post sends an activity to the bot's endpoint with a bearer token ("" sends none).
func Post(t testing.TB, endpoint string, activity any, token string) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(activity)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// Send posts an activity with a valid token for its serviceUrl.
func (f *Fake) Send(t testing.TB, endpoint string, activity map[string]any) (int, []byte) {
	t.Helper()
	su, _ := activity["serviceUrl"].(string)
	return Post(t, endpoint, activity, f.Token(f.Claims(su)))
}
