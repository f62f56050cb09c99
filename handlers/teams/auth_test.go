package teams_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/infracloudio/msbotbuilder-go/connector/auth"
	"github.com/infracloudio/msbotbuilder-go/core"
	"github.com/infracloudio/msbotbuilder-go/core/activity"
	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/handlers/teams/teamsfake"
)

// Every request's token is checked before anything is read: a bad one gets 401 and changes
// nothing (no request, no reply, no conversation reference kept).
func TestAuth_TokensAcceptedAndRejected(t *testing.T) {
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	su := e.fake.ServiceURL()
	valid := func(mut func(jwt.MapClaims)) string {
		c := e.fake.Claims(su)
		if mut != nil {
			mut(c)
		}
		return e.fake.Token(c)
	}
	hmacWithPublicKey := func() string { // the RS256/HS256 confusion attack
		der, _ := x509.MarshalPKIXPublicKey(&e.fake.Key.PublicKey)
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, e.fake.Claims(su))
		tok.Header["kid"] = e.fake.KeyID
		s, _ := tok.SignedString(der)
		return s
	}
	rs384 := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS384, e.fake.Claims(su))
		tok.Header["kid"] = e.fake.KeyID
		s, _ := tok.SignedString(e.fake.Key)
		return s
	}
	cases := []struct {
		name   string
		header string
		mutate func(map[string]any) // of the activity
		want   int
	}{
		{"valid", "Bearer " + valid(nil), nil, 200},
		{"valid, expired two minutes ago (within the skew)", "Bearer " + valid(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-2 * time.Minute).Unix() }), nil, 200},
		{"valid, not before two minutes from now (within the skew)", "Bearer " + valid(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(2 * time.Minute).Unix() }), nil, 200},
		{"missing", "", nil, 401},
		{"not bearer", "Basic " + valid(nil), nil, 401},
		{"garbage", "Bearer not.a.jwt", nil, 401},
		{"wrong key", "Bearer " + teamsfake.Sign(otherKey, e.fake.KeyID, e.fake.Claims(su)), nil, 401},
		{"unknown key id", "Bearer " + teamsfake.Sign(otherKey, "some-other-kid", e.fake.Claims(su)), nil, 401},
		{"wrong audience", "Bearer " + valid(func(c jwt.MapClaims) { c["aud"] = "another-bot" }), nil, 401},
		{"wrong issuer", "Bearer " + valid(func(c jwt.MapClaims) { c["iss"] = "https://sts.windows.net/x/" }), nil, 401},
		{"expired", "Bearer " + valid(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Minute).Unix() }), nil, 401},
		{"not yet valid", "Bearer " + valid(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Minute).Unix() }), nil, 401},
		{"no expiry", "Bearer " + valid(func(c jwt.MapClaims) { delete(c, "exp") }), nil, 401},
		{"alg none", "Bearer " + teamsfake.Unsigned(e.fake.KeyID, e.fake.Claims(su)), nil, 401},
		{"HS256 keyed with the public key", "Bearer " + hmacWithPublicKey(), nil, 401},
		{"RS384", "Bearer " + rs384(), nil, 401},
		{"wrong serviceUrl claim", "Bearer " + valid(func(c jwt.MapClaims) { c["serviceurl"] = "https://smba.trafficmanager.net/emea/" }), nil, 401},
		{"activity's serviceUrl changed", "Bearer " + valid(nil), func(a map[string]any) { a["serviceUrl"] = "https://evil.example/" }, 401},
		{"key not endorsed for the channel", "Bearer " + valid(nil), func(a map[string]any) { a["channelId"] = "webchat" }, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chat := e.fake.Personal(alice)
			act := e.fake.Message(alice, chat, "activate sandbox for 30m")
			if tc.mutate != nil {
				tc.mutate(act)
			}
			before := len(e.fake.Sent())
			e.store.DeleteValue(e.ctx, "teams:user:"+aliceID)
			reqsBefore := len(e.requests(aliceID))
			status := postRaw(t, e.url, act, tc.header)
			if status != tc.want {
				t.Fatalf("status %d, want %d", status, tc.want)
			}
			_, kept, _ := e.store.GetValue(e.ctx, "teams:user:"+aliceID)
			changed := len(e.fake.Sent()) != before || len(e.requests(aliceID)) != reqsBefore || kept
			if tc.want == 200 && !changed {
				t.Fatal("a valid token did nothing")
			}
			if tc.want != 200 && changed {
				t.Fatalf("a rejected request had an effect: %d activities sent, requests %d→%d, reference kept=%v",
					len(e.fake.Sent())-before, reqsBefore, len(e.requests(aliceID)), kept)
			}
			if tc.want == 200 { // leave no open request behind for the next case
				for _, r := range e.requests(aliceID) {
					if !r.State.Terminal() {
						e.eng.Deactivate(e.ctx, aliceActor(), r.ID)
					}
				}
				e.drain()
			}
		})
	}
}

// The body is never read without a valid token; with one, a body over the limit is 413 and
// one that is not an activity 400; only POST is served.
func TestAuth_BodyLimitsAndMethods(t *testing.T) {
	e := newEnv(t)
	tok := "Bearer " + e.fake.Token(e.fake.Claims(e.fake.ServiceURL()))
	big := e.fake.Message(alice, e.fake.Personal(alice), strings.Repeat("x", teams.MaxBody))
	if s := postRaw(t, e.url, big, tok); s != http.StatusRequestEntityTooLarge {
		t.Fatalf("an oversized activity: %d, want 413", s)
	}
	if s := postRaw(t, e.url, big, ""); s != http.StatusUnauthorized {
		t.Fatalf("an oversized activity without a token: %d, want 401 (the token comes first)", s)
	}
	for _, body := range []string{"{", `"just a string"`, `{"text":"no type"}`} {
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
		req.Header.Set("Authorization", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("body %q: %d, want 400", body, resp.StatusCode)
		}
	}
	resp, err := http.Get(e.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
	if len(e.fake.Sent()) != 0 {
		t.Fatal("a refused request sent something")
	}
}

// The OpenID metadata and keys are fetched once and cached (msbotbuilder-go fetched the
// metadata on every request); an unknown key id refetches at most once per interval.
func TestValidator_CachesKeys(t *testing.T) {
	f := teamsfake.New(t, appID, appSecret, tenantID)
	clock := &fakeClock{t: time.Now()}
	v, err := teams.NewValidator(teams.ValidatorConfig{AppID: appID, MetadataURL: f.MetadataURL(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := "Bearer " + f.Token(f.Claims(f.ServiceURL()))
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), tok); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if f.Hits("metadata") != 1 || f.Hits("keys") != 1 {
		t.Fatalf("metadata fetched %d times, keys %d times; want once each", f.Hits("metadata"), f.Hits("keys"))
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	junk := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := v.Verify(context.Background(), "Bearer "+teamsfake.Sign(other, "rotated", f.Claims(f.ServiceURL()))); !errors.Is(err, teams.ErrUnauthorized) {
				t.Fatalf("unknown key id: %v", err)
			}
		}
	}
	junk(5)
	if f.Hits("keys") != 1 {
		t.Fatalf("keys fetched %d times right after unknown key ids, want 1 (no refetch within the interval)", f.Hits("keys"))
	}
	clock.Advance(6 * time.Minute)
	junk(5)
	if f.Hits("keys") != 2 {
		t.Fatalf("keys fetched %d times after unknown key ids 6 minutes later, want 2 (one refetch)", f.Hits("keys"))
	}
	clock.Advance(25 * time.Hour) // the cache is stale: read again, once
	later := f.Claims(f.ServiceURL())
	later["nbf"], later["exp"] = clock.Now().Add(-time.Minute).Unix(), clock.Now().Add(time.Hour).Unix()
	tok = "Bearer " + f.Token(later)
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if f.Hits("metadata") != 3 || f.Hits("keys") != 3 {
		t.Fatalf("after a day: metadata %d, keys %d fetches; want 3 each", f.Hits("metadata"), f.Hits("keys"))
	}
}

// With no keys to be had, requests are answered 503 (retry later), never accepted.
func TestValidator_NoKeysIs503(t *testing.T) {
	e := newEnv(t)
	e.fake.Down("keys", http.StatusInternalServerError)
	chat := e.fake.Personal(alice)
	status, _ := e.fake.Send(t, e.url, e.fake.Message(alice, chat, "activate sandbox"))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", status)
	}
	if len(e.fake.Sent()) != 0 || len(e.requests(aliceID)) != 0 {
		t.Fatal("a request was handled without checking its token")
	}
	e.fake.Down("keys", 0)
	if status, body := e.fake.Send(t, e.url, e.fake.Message(alice, chat, "help")); status == http.StatusOK {
		t.Fatalf("the keys were fetched again within the hold-off: %s", body) // failedFetchHold
	}
}

// The validator and the connector client stand in msbotbuilder-go's own adapter: its
// ParseRequest then checks tokens our way, and ProcessActivity posts through our client to
// the single-tenant token endpoint's token.
func TestLibraryAdapter_WithOurValidatorAndClient(t *testing.T) {
	f := teamsfake.New(t, appID, appSecret, tenantID)
	v, err := teams.NewValidator(teams.ValidatorConfig{AppID: appID, MetadataURL: f.MetadataURL()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := teams.NewConnector(teams.ConnectorConfig{AppID: appID, Password: appSecret, TokenURL: f.TokenURL()})
	if err != nil {
		t.Fatal(err)
	}
	cred := auth.SimpleCredentialProvider{AppID: appID, Password: appSecret}
	adapter := &core.BotFrameworkAdapter{
		AdapterSetting: core.AdapterSetting{AppID: appID, AppPassword: appSecret, CredentialProvider: cred, ChannelService: auth.ChannelService},
		TokenValidator: v, Client: c,
	}
	chat := f.Personal(alice)
	act := f.Message(alice, chat, "hello")
	body, _ := json.Marshal(act)
	for _, tc := range []struct {
		token string
		ok    bool
	}{{f.Token(f.Claims(f.ServiceURL())), true}, {teamsfake.Unsigned(f.KeyID, f.Claims(f.ServiceURL())), false}} {
		req, _ := http.NewRequest(http.MethodPost, "/api/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tc.token)
		parsed, err := adapter.ParseRequest(context.Background(), req)
		if (err == nil) != tc.ok {
			t.Fatalf("ParseRequest: err=%v, want ok=%v", err, tc.ok)
		}
		if !tc.ok {
			continue
		}
		err = adapter.ProcessActivity(context.Background(), parsed, activity.HandlerFuncs{
			OnMessageFunc: func(turn *activity.TurnContext) (schema.Activity, error) {
				return turn.SendActivity(activity.MsgOptionText("echo: " + turn.Activity.Text))
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	sent := f.SentTo(chat.ID)
	if len(sent) != 1 || sent[0].Body["text"] != "echo: hello" {
		t.Fatalf("the library adapter sent %+v", sent)
	}
}

func postRaw(t testing.TB, url string, act map[string]any, header string) int {
	t.Helper()
	b, _ := json.Marshal(act)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
