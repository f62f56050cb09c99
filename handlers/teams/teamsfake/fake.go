// Package teamsfake is a Bot Framework stand-in on loopback for tests: the OpenID metadata
// and its key set (signing with a test RSA key), the Entra ID token endpoint, and the Bot
// Connector service that the activities' serviceUrl points at. It speaks the real wire
// formats, including the real error bodies, and enforces Teams' 28 KB message limit.
package teamsfake

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/golang-jwt/jwt/v4"
)

// MaxMessage is Teams' limit on one activity's size, in UTF-16 code units.
const MaxMessage = 28 << 10

// UTF16Len is the length of UTF-8 text in UTF-16 code units: 1 for each character of the
// Basic Multilingual Plane (whatever its UTF-8 bytes), 2 for the others (most emoji).
func UTF16Len(b []byte) int {
	n := 0
	for _, r := range string(b) {
		n += utf16.RuneLen(r)
	}
	return n
}

// Fake is the Bot Framework on loopback.
type Fake struct {
	Server   *httptest.Server
	AppID    string
	Password string
	TenantID string
	Key      *rsa.PrivateKey
	KeyID    string
	// Endorsements of the signing key in the key set (Teams keys say "msteams"); set it
	// with Endorse once requests may be running.
	Endorsements []string
	// TokenLifetime is the expires_in of issued connector tokens.
	TokenLifetime time.Duration

	mu            sync.Mutex
	tokens        map[string]bool
	conversations map[string]map[string]bool // conversation id -> activity ids the bot posted
	personal      map[string]string          // user id -> personal conversation id
	sent          []Activity
	hits          map[string]int
	nextID        int64
	changed       chan struct{}
	down          map[string]int       // route -> HTTP status to answer instead (0: serve)
	throttles     map[string]*throttle // Throttle, Unavailable (throttle.go)
	throttledN    int
}

// Activity is one call the bot made to the connector.
type Activity struct {
	Method         string // POST (new or reply) or PUT (update)
	ConversationID string
	ActivityID     string // the id assigned (POST) or replaced (PUT)
	ReplyToID      string
	Body           map[string]any
}

// Card returns the first Adaptive Card attachment of the activity (nil if none).
func (a Activity) Card() map[string]any {
	atts, _ := a.Body["attachments"].([]any)
	for _, x := range atts {
		m, _ := x.(map[string]any)
		if m["contentType"] == "application/vnd.microsoft.card.adaptive" {
			c, _ := m["content"].(map[string]any)
			return c
		}
	}
	return nil
}

// Text returns every string in the activity, joined, for assertions on what people see.
func (a Activity) Text() string { return Strings(a.Body) }

// Strings joins every string in a JSON tree with newlines.
func Strings(v any) string {
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			b.WriteString(x)
			b.WriteByte('\n')
		case map[string]any:
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(v)
	return b.String()
}

// New starts a fake for an app registration.
func New(t testing.TB, appID, password, tenantID string) *Fake {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{AppID: appID, Password: password, TenantID: tenantID, Key: key, KeyID: "test-key-1",
		Endorsements: []string{"msteams"}, TokenLifetime: time.Hour,
		tokens: map[string]bool{}, conversations: map[string]map[string]bool{}, personal: map[string]string{},
		hits: map[string]int{}, nextID: 1732000000000, changed: make(chan struct{}), down: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openid", f.metadata)
	mux.HandleFunc("GET /keys", f.keys)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", f.token)
	mux.HandleFunc("POST /v3/conversations", f.createConversation)
	mux.HandleFunc("POST /v3/conversations/{conv}/activities", f.postActivity)
	mux.HandleFunc("POST /v3/conversations/{conv}/activities/{id}", f.postActivity)
	mux.HandleFunc("PUT /v3/conversations/{conv}/activities/{id}", f.putActivity)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Server.Close)
	return f
}

// MetadataURL is the OpenID metadata (BOTFRAMEWORK_OPENID_METADATA_URL).
func (f *Fake) MetadataURL() string { return f.Server.URL + "/openid" }

// TokenURL is the tenant's token endpoint (BOTFRAMEWORK_TOKEN_URL).
func (f *Fake) TokenURL() string { return f.Server.URL + "/" + f.TenantID + "/oauth2/v2.0/token" }

// ServiceURL is the connector's base, as Teams writes it in activities (with a slash).
func (f *Fake) ServiceURL() string { return f.Server.URL + "/" }

// Hits counts requests per route: "metadata", "keys", "token", "send", "update", "create".
func (f *Fake) Hits(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[route]
}

// Down makes a route answer status (0 serves it again).
func (f *Fake) Down(route string, status int) {
	f.mu.Lock()
	f.down[route] = status
	f.mu.Unlock()
}

// AddConversation makes a conversation (a chat or a channel the bot is in) known.
func (f *Fake) AddConversation(id string) {
	f.mu.Lock()
	if f.conversations[id] == nil {
		f.conversations[id] = map[string]bool{}
	}
	f.mu.Unlock()
}

// Sent returns what the bot sent so far, in order.
func (f *Fake) Sent() []Activity {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Activity(nil), f.sent...)
}

// SentTo returns what the bot sent to one conversation.
func (f *Fake) SentTo(conversationID string) []Activity {
	var out []Activity
	for _, a := range f.Sent() {
		if a.ConversationID == conversationID {
			out = append(out, a)
		}
	}
	return out
}

// Wait returns the first activity at or after index from that matches, waiting up to d.
func (f *Fake) Wait(from int, d time.Duration, match func(Activity) bool) (Activity, int, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		for i := from; i < len(f.sent); i++ {
			if match(f.sent[i]) {
				a := f.sent[i]
				f.mu.Unlock()
				return a, i, true
			}
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return Activity{}, 0, false
		}
	}
}

func (f *Fake) hit(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits[route]++
	return f.down[route]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func connectorError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func (f *Fake) metadata(w http.ResponseWriter, r *http.Request) {
	if st := f.hit("metadata"); st != 0 {
		http.Error(w, "unavailable", st)
		return
	}
	writeJSON(w, 200, map[string]any{
		"issuer":                                "https://api.botframework.com",
		"authorization_endpoint":                "https://invalid.botframework.com",
		"jwks_uri":                              f.Server.URL + "/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
	})
}

// JWK is the public part of a key, as the Bot Framework key set lists it.
func JWK(pub *rsa.PublicKey, kid string, endorsements []string) map[string]any {
	return map[string]any{
		"kty": "RSA", "use": "sig", "kid": kid,
		"n":            base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"endorsements": endorsements,
	}
}

func (f *Fake) keys(w http.ResponseWriter, r *http.Request) {
	if st := f.hit("keys"); st != 0 {
		http.Error(w, "unavailable", st)
		return
	}
	f.mu.Lock()
	endorsements := append([]string(nil), f.Endorsements...)
	f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"keys": []any{JWK(&f.Key.PublicKey, f.KeyID, endorsements)}})
}

// Endorse sets the channels the signing key is endorsed for, as the next key fetch lists
// them. The Bot Framework service signs the activities of every channel a bot is connected
// to, Direct Line and Web Chat included, and the endorsement says which channel a key may
// sign for ("For example, if an Activity comes from webchat, that channelId says "webchat"
// and the jwt token endorsement MUST match that": botframework-connector,
// auth/endorsementsValidator.ts): a valid token with an endorsed key proves the relay, not
// that the activity came from Teams.
func (f *Fake) Endorse(channels ...string) {
	f.mu.Lock()
	f.Endorsements = append([]string(nil), channels...)
	f.mu.Unlock()
}

// token is the Entra ID client-credentials endpoint of the bot's tenant.
func (f *Fake) token(w http.ResponseWriter, r *http.Request) {
	if st := f.hit("token"); st != 0 {
		writeJSON(w, st, map[string]string{"error": "temporarily_unavailable", "error_description": "AADSTS50196: The server terminated an operation because it encountered a client request loop.\r\nTrace ID: 0000\r\nCorrelation ID: 0000"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_request", "error_description": "AADSTS900144: The request body must contain the following parameter: 'grant_type'."})
		return
	}
	switch {
	case r.PathValue("tenant") != f.TenantID || r.PostForm.Get("client_id") != f.AppID:
		writeJSON(w, 400, map[string]string{"error": "unauthorized_client", "error_description": fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory '%s'.\r\nTrace ID: 0000\r\nCorrelation ID: 0000", r.PostForm.Get("client_id"), r.PathValue("tenant"))})
		return
	case r.PostForm.Get("client_secret") != f.Password:
		writeJSON(w, 401, map[string]string{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.\r\nTrace ID: 0000\r\nCorrelation ID: 0000"})
		return
	case r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != "https://api.botframework.com/.default":
		writeJSON(w, 400, map[string]string{"error": "invalid_scope", "error_description": "AADSTS70011: The provided request must include a 'scope' input parameter."})
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := "fake-connector-token-" + base64.RawURLEncoding.EncodeToString(b[:])
	f.mu.Lock()
	f.tokens[tok] = true
	f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"token_type": "Bearer", "expires_in": int(f.TokenLifetime / time.Second),
		"ext_expires_in": int(f.TokenLifetime / time.Second), "access_token": tok})
}

// RevokeTokens makes every issued token invalid (the connector then answers 401).
func (f *Fake) RevokeTokens() {
	f.mu.Lock()
	f.tokens = map[string]bool{}
	f.mu.Unlock()
}

func (f *Fake) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	valid := ok && f.tokens[tok]
	f.mu.Unlock()
	if !valid {
		writeJSON(w, 401, map[string]string{"message": "Authorization has been denied for this request."})
	}
	return valid
}

func (f *Fake) readActivity(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		connectorError(w, 400, "BadArgument", "cannot read the body")
		return nil, false
	}
	if UTF16Len(body) > MaxMessage { // Teams measures a message in UTF-16 code units, not bytes
		connectorError(w, 413, "MessageSizeTooBig", "Message size too big.")
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		connectorError(w, 400, "BadSyntax", "Invalid JSON: "+err.Error())
		return nil, false
	}
	if m["type"] != "message" {
		connectorError(w, 400, "BadArgument", "Unknown activity type")
		return nil, false
	}
	return m, true
}

func (f *Fake) record(a Activity) {
	f.mu.Lock()
	f.sent = append(f.sent, a)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func (f *Fake) postActivity(w http.ResponseWriter, r *http.Request) {
	if st := f.hit("send"); st != 0 {
		connectorError(w, st, "ServiceError", "The service is unavailable.")
		return
	}
	if f.throttled(w, "send") {
		return
	}
	if !f.authorized(w, r) {
		return
	}
	m, ok := f.readActivity(w, r)
	if !ok {
		return
	}
	conv := r.PathValue("conv")
	f.mu.Lock()
	acts, known := f.conversations[conv]
	if !known {
		f.mu.Unlock()
		connectorError(w, 404, "ConversationNotFound", "Conversation not found.")
		return
	}
	f.nextID++
	id := fmt.Sprint(f.nextID)
	acts[id] = true
	f.mu.Unlock()
	reply, _ := m["replyToId"].(string)
	if p := r.PathValue("id"); p != "" {
		reply = p
	}
	f.record(Activity{Method: http.MethodPost, ConversationID: conv, ActivityID: id, ReplyToID: reply, Body: m})
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

func (f *Fake) putActivity(w http.ResponseWriter, r *http.Request) {
	if st := f.hit("update"); st != 0 {
		connectorError(w, st, "ServiceError", "The service is unavailable.")
		return
	}
	if f.throttled(w, "update") {
		return
	}
	if !f.authorized(w, r) {
		return
	}
	m, ok := f.readActivity(w, r)
	if !ok {
		return
	}
	conv, id := r.PathValue("conv"), r.PathValue("id")
	f.mu.Lock()
	exists := f.conversations[conv][id]
	f.mu.Unlock()
	if !exists {
		connectorError(w, 404, "ActivityNotFoundInConversation", "The activity was not found in the conversation.")
		return
	}
	f.record(Activity{Method: http.MethodPut, ConversationID: conv, ActivityID: id, Body: m})
	writeJSON(w, http.StatusOK, map[string]string{"id": id})
}

// createConversation opens (or returns) the bot's 1:1 chat with a user.
func (f *Fake) createConversation(w http.ResponseWriter, r *http.Request) {
	if st := f.hit("create"); st != 0 {
		connectorError(w, st, "ServiceError", "The service is unavailable.")
		return
	}
	if f.throttled(w, "create") {
		return
	}
	if !f.authorized(w, r) {
		return
	}
	var p struct {
		IsGroup bool `json:"isGroup"`
		Bot     struct {
			ID string `json:"id"`
		} `json:"bot"`
		Members []struct {
			ID string `json:"id"`
		} `json:"members"`
		TenantID string `json:"tenantId"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil {
		connectorError(w, 400, "BadSyntax", "Invalid JSON")
		return
	}
	switch {
	case p.Bot.ID != "28:"+f.AppID:
		connectorError(w, 400, "BadArgument", "Bot id does not match the token's app id.")
		return
	case p.IsGroup || len(p.Members) != 1 || !strings.HasPrefix(p.Members[0].ID, "29:"):
		connectorError(w, 400, "BadArgument", "A 1:1 conversation needs exactly one user member.")
		return
	case p.TenantID != f.TenantID:
		connectorError(w, 403, "Forbidden", "The user is not in the bot's tenant.")
		return
	}
	f.mu.Lock()
	conv, ok := f.personal[p.Members[0].ID]
	if !ok {
		conv = "a:1" + strings.ReplaceAll(url.QueryEscape(p.Members[0].ID), "%", "")
		f.personal[p.Members[0].ID] = conv
		f.conversations[conv] = map[string]bool{}
	}
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{"id": conv})
}

// Claims are the claims of a valid channel token for a serviceUrl.
func (f *Fake) Claims(serviceURL string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"serviceurl": serviceURL,
		"nbf":        now.Add(-time.Minute).Unix(),
		"exp":        now.Add(time.Hour).Unix(),
		"iss":        "https://api.botframework.com",
		"aud":        f.AppID,
	}
}

// Token signs claims with the fake's key (a valid token when the claims are valid).
func (f *Fake) Token(claims jwt.MapClaims) string { return Sign(f.Key, f.KeyID, claims) }

// Sign signs claims RS256 with any key and key id.
func Sign(key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

// Unsigned is a token with "alg": "none".
func Unsigned(kid string, claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(jwt.SigningMethodNone, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		panic(err)
	}
	return s
}
