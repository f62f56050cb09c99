// Package entrafake is a fake Microsoft Entra authority for tests: authorize (which signs the
// configured person in at once and redirects back), token (authorization code with PKCE, and
// device code), devicecode, and the signing keys, with ID tokens signed by a test RSA key.
//
// Its ID tokens are shaped like Entra's v2.0 ones: no amr claim (Microsoft's ID token
// claims reference lists none for v2.0; MicrosoftDocs/azure-docs#46953, #85021), acrs only
// when the claims parameter asked for an authentication context and the person satisfied
// it, and auth_time only when asked for (claims parameter or max_age).
package entrafake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// Person is who signs in next, and how the token about them is made.
type Person struct {
	OID  string
	UPN  string
	AMR  []string // methods used, e.g. ["pwd","mfa"]: in the token only with EmitAMR
	ACRS []string // authentication contexts the sign-in satisfies (e.g. ["c1"] after MFA)

	// EmitAMR puts amr in the ID token, which Entra's v2.0 tokens never do: to prove that
	// pimbot does not take amr for proof.
	EmitAMR bool

	// Tampering, to prove the verifier refuses it.
	WrongNonce    bool
	Expired       bool
	OtherKey      bool // signed by a key the tenant does not publish
	WrongAudience bool
	WrongIssuer   bool
	AuthTime      time.Time // zero: now
}

// Server is the fake authority.
type Server struct {
	*httptest.Server
	Tenant   string
	ClientID string

	key, other *rsa.PrivateKey
	mu         sync.Mutex
	next       Person
	codes      map[string]grant
	devices    map[string]*device
	Authorized int // authorize calls seen
	Redeemed   int // successful token answers
	failToken  int // the next n token calls answer 503, as Entra does in an outage
}

// FailToken makes the next n token calls answer 503 temporarily_unavailable.
func (s *Server) FailToken(n int) { s.mu.Lock(); s.failToken = n; s.mu.Unlock() }

type grant struct {
	nonce, challenge, redirect string
	person                     Person
	asked                      asked
}

type device struct {
	approved bool
	person   Person
	asked    asked
}

// asked is what the sign-in request asked the ID token to carry.
type asked struct {
	acrs     string // the authentication context asked for with the claims parameter
	authTime bool   // auth_time asked for (claims parameter, or max_age)
}

func askedFor(claims, maxAge string) asked {
	var c struct {
		IDToken struct {
			ACRS *struct {
				Value string `json:"value"`
			} `json:"acrs"`
			AuthTime *struct{} `json:"auth_time"`
		} `json:"id_token"`
	}
	_ = json.Unmarshal([]byte(claims), &c)
	a := asked{authTime: c.IDToken.AuthTime != nil || maxAge != ""}
	if c.IDToken.ACRS != nil {
		a.acrs = c.IDToken.ACRS.Value
	}
	return a
}

// New starts a fake authority for tenant and client id.
//
// tenant is the tenant's id (a GUID); domains are names the tenant also answers to (e.g.
// contoso.onmicrosoft.com). As Entra does, the discovery document at
// /<tenant or domain>/v2.0/.well-known/openid-configuration names the GUID form in its
// issuer and endpoints, whichever name was used to find it.
func New(tenant, clientID string, domains ...string) *Server {
	s := &Server{Tenant: tenant, ClientID: clientID, codes: map[string]grant{}, devices: map[string]*device{}}
	s.key, _ = rsa.GenerateKey(rand.Reader, 2048)
	s.other, _ = rsa.GenerateKey(rand.Reader, 2048)
	mux := http.NewServeMux()
	for _, name := range append([]string{tenant}, domains...) {
		p := "/" + name
		mux.HandleFunc("GET "+p+"/v2.0/.well-known/openid-configuration", s.discovery)
		mux.HandleFunc("GET "+p+"/oauth2/v2.0/authorize", s.authorize)
		mux.HandleFunc("POST "+p+"/oauth2/v2.0/token", s.token)
		mux.HandleFunc("POST "+p+"/oauth2/v2.0/devicecode", s.deviceCode)
		mux.HandleFunc("GET "+p+"/discovery/v2.0/keys", s.keys)
	}
	s.Server = httptest.NewServer(mux)
	return s
}

// Issuer is the iss of the tenant's tokens: the authority, the tenant's GUID, /v2.0.
func (s *Server) Issuer() string { return s.URL + "/" + s.Tenant + "/v2.0" }

// discovery answers the OpenID configuration, shaped like Entra's (the fields pimbot uses).
func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	base := s.URL + "/" + s.Tenant
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                s.Issuer(),
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"tenant_region_scope":                   "EU",
	})
}

// SignIn sets who signs in next.
func (s *Server) SignIn(p Person) { s.mu.Lock(); s.next = p; s.mu.Unlock() }

// ApproveDevice completes every pending device sign-in as the person set by SignIn.
func (s *Server) ApproveDevice() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		d.approved, d.person = true, s.next
	}
}

func random() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "AADSTS900144: bad authorize request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.Authorized++
	code := random()
	s.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), person: s.next,
		asked: askedFor(q.Get("claims"), q.Get("max_age"))}
	s.mu.Unlock()
	back, _ := url.Parse(q.Get("redirect_uri"))
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func oauthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	fail := s.failToken > 0
	if fail {
		s.failToken--
	}
	s.mu.Unlock()
	if fail {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error has occurred. Please try again."})
		return
	}
	if r.PostForm.Get("client_id") != s.ClientID {
		oauthError(w, "invalid_client", "AADSTS700016: Application not found in the directory.")
		return
	}
	var person Person
	var want asked
	nonce := ""
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		s.mu.Lock()
		g, ok := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code"))
		s.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok:
			oauthError(w, "invalid_grant", "AADSTS70008: The provided authorization code or refresh token has expired or was already redeemed.")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			oauthError(w, "invalid_grant", "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.")
			return
		case r.PostForm.Get("redirect_uri") != g.redirect:
			oauthError(w, "invalid_grant", "AADSTS50148: The redirect_uri does not match.")
			return
		}
		person, nonce, want = g.person, g.nonce, g.asked
	case "urn:ietf:params:oauth:grant-type:device_code":
		s.mu.Lock()
		d, ok := s.devices[r.PostForm.Get("device_code")]
		s.mu.Unlock()
		if !ok {
			oauthError(w, "expired_token", "AADSTS70019: Verification code expired.")
			return
		}
		if !d.approved {
			oauthError(w, "authorization_pending", "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.")
			return
		}
		s.mu.Lock()
		delete(s.devices, r.PostForm.Get("device_code"))
		s.mu.Unlock()
		person, want = d.person, d.asked
	default:
		oauthError(w, "unsupported_grant_type", "AADSTS70003: unsupported grant type")
		return
	}
	tok, err := s.idToken(person, nonce, want)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	s.mu.Lock()
	s.Redeemed++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "id_token": tok, "access_token": "unused", "expires_in": 3600})
}

// idToken signs an ID token about p the way Entra does (v2.0 issuer, RS256, kid header),
// with the optional claims the sign-in asked for.
func (s *Server) idToken(p Person, nonce string, want asked) (string, error) {
	now := time.Now()
	auth := p.AuthTime
	if auth.IsZero() {
		auth = now
	}
	claims := jwt.MapClaims{
		"iss": s.Issuer(), "aud": s.ClientID, "tid": s.Tenant, "oid": p.OID,
		"preferred_username": p.UPN, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"nonce": nonce,
	}
	if want.authTime {
		claims["auth_time"] = auth.Unix()
	}
	if p.EmitAMR && len(p.AMR) > 0 {
		claims["amr"] = p.AMR
	}
	if want.acrs != "" && slices.Contains(p.ACRS, want.acrs) {
		claims["acrs"] = []string{want.acrs}
	}
	if p.WrongNonce {
		claims["nonce"] = "not-the-nonce"
	}
	if p.Expired {
		claims["exp"] = now.Add(-time.Hour).Unix()
	}
	if p.WrongAudience {
		claims["aud"] = "another-app"
	}
	if p.WrongIssuer {
		claims["iss"] = "https://login.microsoftonline.com/another-tenant/v2.0"
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = "test-key"
	key := s.key
	if p.OtherKey {
		key = s.other
	}
	return t.SignedString(key)
}

func (s *Server) deviceCode(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	if r.PostForm.Get("client_id") != s.ClientID {
		oauthError(w, "invalid_client", "AADSTS700016: Application not found in the directory.")
		return
	}
	dc := random()
	s.mu.Lock()
	s.devices[dc] = &device{asked: askedFor(r.PostForm.Get("claims"), "")}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"device_code": dc, "user_code": "F7K2QX9PM", "verification_uri": "https://microsoft.com/devicelogin",
		"expires_in": 900, "interval": 5,
		"message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code F7K2QX9PM to authenticate.",
	})
}

func (s *Server) keys(w http.ResponseWriter, r *http.Request) {
	pub := s.key.PublicKey
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"keys":[{"kty":"RSA","use":"sig","kid":"test-key","n":%q,"e":%q}]}`,
		base64.RawURLEncoding.EncodeToString(pub.N.Bytes()), base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()))
}

// Path is a helper for tests that need the tenant-relative URL of an endpoint.
func (s *Server) Path(p string) string {
	return s.URL + "/" + s.Tenant + "/" + strings.TrimPrefix(p, "/")
}
