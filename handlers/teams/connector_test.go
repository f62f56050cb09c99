package teams_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

func newConnector(t *testing.T, f *teamsfake.Fake, secret string) *teams.Connector {
	t.Helper()
	c, err := teams.NewConnector(teams.ConnectorConfig{AppID: appID, Password: secret, TokenURL: f.TokenURL()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func card() *teams.Message { return teams.CardMessage(teams.HelpCard(), "help") }

// One token for many concurrent sends (msbotbuilder-go's cache raced here), from the
// tenant's own token endpoint; each send returns the new activity's id.
func TestConnector_TokenCachedUnderConcurrency(t *testing.T) {
	f := teamsfake.New(t, appID, appSecret, tenantID)
	chat := f.Personal(alice)
	c := newConnector(t, f, appSecret)
	var wg sync.WaitGroup
	ids := make(chan string, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := c.Send(context.Background(), f.ServiceURL(), chat.ID, card())
			if err != nil {
				t.Error(err)
			}
			ids <- id
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("activity id %q missing or repeated", id)
		}
		seen[id] = true
	}
	if n := f.Hits("token"); n != 1 {
		t.Fatalf("%d token requests for 20 sends, want 1", n)
	}
}

// An unreachable token endpoint is an error, not a panic (msbotbuilder-go dereferenced nil).
func TestConnector_TokenEndpointUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/t/oauth2/v2.0/token"
	ln.Close()
	c, err := teams.NewConnector(teams.ConnectorConfig{AppID: appID, Password: appSecret, TokenURL: dead})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), "http://127.0.0.1:1/", "a:1", card()); err == nil {
		t.Fatal("no error with an unreachable token endpoint")
	}
}

// A wrong secret says what Entra said (AADSTS code), never the secret.
func TestConnector_WrongSecret(t *testing.T) {
	f := teamsfake.New(t, appID, appSecret, tenantID)
	chat := f.Personal(alice)
	c := newConnector(t, f, "wrong-secret-value")
	_, err := c.Send(context.Background(), f.ServiceURL(), chat.ID, card())
	var ce *teams.ConnectorError
	if !errors.As(err, &ce) || ce.Status != 401 || ce.Code != "invalid_client" || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") || strings.Contains(err.Error(), "Trace ID") {
		t.Fatalf("the error leaks the secret or trace lines: %v", err)
	}
	if len(f.Sent()) != 0 {
		t.Fatal("sent without a token")
	}
}

// A revoked token (401 from the connector) is renewed once and the call goes through.
func TestConnector_RenewsARevokedToken(t *testing.T) {
	f := teamsfake.New(t, appID, appSecret, tenantID)
	chat := f.Personal(alice)
	c := newConnector(t, f, appSecret)
	if _, err := c.Send(context.Background(), f.ServiceURL(), chat.ID, card()); err != nil {
		t.Fatal(err)
	}
	f.RevokeTokens()
	if _, err := c.Send(context.Background(), f.ServiceURL(), chat.ID, card()); err != nil {
		t.Fatal(err)
	}
	if f.Hits("token") != 2 || len(f.Sent()) != 2 {
		t.Fatalf("token requests %d, sent %d; want 2 and 2", f.Hits("token"), len(f.Sent()))
	}
}

// Update is a PUT of the activity; the connector's error body is kept (status and code).
func TestConnector_UpdateAndErrors(t *testing.T) {
	f := teamsfake.New(t, appID, appSecret, tenantID)
	chat := f.Personal(alice)
	c := newConnector(t, f, appSecret)
	ctx := context.Background()
	id, err := c.Send(ctx, f.ServiceURL(), chat.ID, card())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, f.ServiceURL(), chat.ID, id, card()); err != nil {
		t.Fatal(err)
	}
	if last := f.Sent()[1]; last.Method != http.MethodPut || last.ActivityID != id || last.Body["id"] != id {
		t.Fatalf("update sent %s %s (body id %v)", last.Method, last.ActivityID, last.Body["id"])
	}
	var ce *teams.ConnectorError
	err = c.Update(ctx, f.ServiceURL(), chat.ID, "999", card())
	if !errors.As(err, &ce) || ce.Status != 404 || ce.Code != "ActivityNotFoundInConversation" {
		t.Fatalf("update of an unknown activity: %v", err)
	}
	_, err = c.Send(ctx, f.ServiceURL(), "19:not-a-member@thread.tacv2", card())
	if !errors.As(err, &ce) || ce.Code != "ConversationNotFound" {
		t.Fatalf("send to an unknown conversation: %v", err)
	}
	huge := &teams.Message{Type: "message", Text: strings.Repeat("y", 30<<10)}
	_, err = c.Send(ctx, f.ServiceURL(), chat.ID, huge)
	if !errors.As(err, &ce) || ce.Status != 413 || ce.Code != "MessageSizeTooBig" {
		t.Fatalf("send of 30 KB: %v", err)
	}
	if _, err := c.Send(ctx, "http://connector.example/", chat.ID, card()); err == nil {
		t.Fatal("sent to a plain-http service URL")
	}
}

// CreateConversation opens the 1:1 chat (msbotbuilder-go has no such call).
func TestConnector_CreateConversation(t *testing.T) {
	f := teamsfake.New(t, appID, appSecret, tenantID)
	c := newConnector(t, f, appSecret)
	conv, err := c.CreateConversation(context.Background(), f.ServiceURL(), teams.NewConversation{BotID: "28:" + appID, UserID: alice.TeamsID, TenantID: tenantID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), f.ServiceURL(), conv, card()); err != nil {
		t.Fatalf("send to the created chat: %v", err)
	}
	_, err = c.CreateConversation(context.Background(), f.ServiceURL(), teams.NewConversation{BotID: "28:" + appID, UserID: alice.TeamsID, TenantID: "other"})
	var ce *teams.ConnectorError
	if !errors.As(err, &ce) || ce.Status != 403 {
		t.Fatalf("create in another tenant: %v", err)
	}
}

// The environment picks the single-tenant token endpoint from MICROSOFT_APP_TENANT_ID.
func TestSettingsFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if _, ok, err := teams.SettingsFromEnv(env(nil)); ok || err != nil {
		t.Fatalf("no app id: ok=%v err=%v", ok, err)
	}
	if _, _, err := teams.SettingsFromEnv(env(map[string]string{"MICROSOFT_APP_ID": appID})); err == nil {
		t.Fatal("an app id without a password was accepted")
	}
	st, ok, err := teams.SettingsFromEnv(env(map[string]string{"MICROSOFT_APP_ID": appID, "MICROSOFT_APP_PASSWORD": appSecret, "MICROSOFT_APP_TENANT_ID": tenantID}))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if want := "https://login.microsoftonline.com/" + tenantID + "/oauth2/v2.0/token"; st.TokenURL != want || st.MetadataURL != teams.DefaultOpenIDMetadataURL {
		t.Fatalf("token URL %s, metadata %s", st.TokenURL, st.MetadataURL)
	}
	if strings.Contains(st.String(), appSecret) {
		t.Fatal("settings print the secret")
	}
	if _, _, err := teams.SettingsFromEnv(env(map[string]string{"MICROSOFT_APP_ID": appID, "MICROSOFT_APP_PASSWORD": "x", "BOTFRAMEWORK_TOKEN_URL": "http://login.example/token"})); err == nil {
		t.Fatal("a plain-http token URL was accepted")
	}
}
