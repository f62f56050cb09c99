package teams

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/infracloudio/msbotbuilder-go/connector/auth"
	"github.com/infracloudio/msbotbuilder-go/schema"
)

// The validator replaces msbotbuilder-go's JwtTokenValidator, which hard-codes its OpenID
// metadata URL, fetches the metadata on every request, accepts RS384/RS512, allows no clock
// skew (its issue #33, "Token is not valid yet") and ignores the keys' channel endorsements.

// Validation defaults.
const (
	DefaultOpenIDMetadataURL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	BotFrameworkIssuer       = "https://api.botframework.com"
	DefaultClockSkew         = 5 * time.Minute
	keysTTL                  = 24 * time.Hour   // metadata and keys are re-read this often
	keyRefetchEvery          = 5 * time.Minute  // an unknown key id triggers a re-read at most this often
	keyFetchTimeout          = 10 * time.Second // one fetch of the metadata or the keys
	failedFetchHold          = 5 * time.Second  // after a failed fetch, the next waits this long
	maxKeysDocument          = 1 << 20
	minRSABits               = 2048
)

var (
	// ErrUnauthorized: the request's token is missing or not valid; answer 401 and do nothing.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrKeysUnavailable: no signing keys could be fetched, so no token can be checked yet.
	ErrKeysUnavailable = errors.New("bot framework signing keys unavailable")
)

func unauthorized(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnauthorized, fmt.Sprintf(format, args...))
}

// ValidatorConfig configures a Validator.
type ValidatorConfig struct {
	AppID       string           // the expected audience (MICROSOFT_APP_ID)
	MetadataURL string           // default DefaultOpenIDMetadataURL (BOTFRAMEWORK_OPENID_METADATA_URL)
	HTTP        *http.Client     // default: keyFetchTimeout
	Now         func() time.Time // default time.Now
	Skew        time.Duration    // default DefaultClockSkew
}

// Validator checks the Bot Framework JWT of incoming requests.
type Validator struct {
	cfg    ValidatorConfig
	http   *http.Client
	parser *jwt.Parser

	mu        sync.RWMutex
	keys      map[string]signingKey // by kid
	fetchedAt time.Time
	triedAt   time.Time
	lastErr   error
	fetch     sync.Mutex // one fetch at a time
}

type signingKey struct {
	pub          *rsa.PublicKey
	endorsements []string
}

// Claims are what a valid token says.
type Claims struct {
	ServiceURL   string
	Audience     string
	ExpiresAt    time.Time
	Endorsements []string // channels the signing key is endorsed for (empty: not stated)
}

// Endorses reports whether the signing key may sign for the channel (e.g. "msteams").
func (c *Claims) Endorses(channelID string) bool {
	return len(c.Endorsements) == 0 || slices.Contains(c.Endorsements, channelID)
}

var _ auth.TokenValidator = (*Validator)(nil)

// NewValidator builds a validator; keys are fetched on first use and cached.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	if cfg.AppID == "" {
		return nil, errors.New("the Bot Framework app id is required (MICROSOFT_APP_ID)")
	}
	if cfg.MetadataURL == "" {
		cfg.MetadataURL = DefaultOpenIDMetadataURL
	}
	if u, err := url.Parse(cfg.MetadataURL); err != nil || u.Host == "" || !allowedURL(u) {
		return nil, fmt.Errorf("OpenID metadata URL %q: want an https URL", cfg.MetadataURL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Skew <= 0 {
		cfg.Skew = DefaultClockSkew
	}
	v := &Validator{cfg: cfg, http: cfg.HTTP, keys: map[string]signingKey{},
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation())}
	if v.http == nil {
		v.http = &http.Client{Timeout: keyFetchTimeout}
	}
	return v, nil
}

type botClaims struct {
	jwt.RegisteredClaims
	ServiceURL string `json:"serviceurl"`
}

// Verify checks the Authorization header: an RS256 signature by a current key, the issuer,
// the audience and the validity window (with the configured skew). The serviceUrl claim and
// the endorsements are checked against the activity by the caller (Check).
func (v *Validator) Verify(ctx context.Context, authHeader string) (*Claims, error) {
	raw, ok := bearer(authHeader)
	if !ok {
		return nil, unauthorized("no bearer token")
	}
	var used signingKey
	var c botClaims
	_, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, unauthorized("no key id in the token header")
		}
		k, err := v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		used = k
		return k.pub, nil
	})
	if err != nil {
		if errors.Is(err, ErrKeysUnavailable) {
			return nil, err
		}
		if errors.Is(err, ErrUnauthorized) {
			return nil, err
		}
		return nil, unauthorized("%v", err)
	}
	now := v.cfg.Now()
	switch {
	case c.Issuer != BotFrameworkIssuer:
		return nil, unauthorized("issuer %q", truncateRunes(c.Issuer, 80))
	case !slices.Contains([]string(c.Audience), v.cfg.AppID):
		return nil, unauthorized("the token is for another audience")
	case c.ExpiresAt == nil:
		return nil, unauthorized("the token has no expiry")
	case now.After(c.ExpiresAt.Add(v.cfg.Skew)):
		return nil, unauthorized("the token expired at %s", c.ExpiresAt.UTC().Format(time.RFC3339))
	case c.NotBefore != nil && now.Before(c.NotBefore.Add(-v.cfg.Skew)):
		return nil, unauthorized("the token is not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	case c.ServiceURL == "":
		return nil, unauthorized("the token has no serviceurl claim")
	}
	return &Claims{ServiceURL: c.ServiceURL, Audience: v.cfg.AppID, ExpiresAt: c.ExpiresAt.Time, Endorsements: used.endorsements}, nil
}

// Check verifies the claims against the activity they came with: the serviceUrl must be the
// one the token was issued for, and the key must be endorsed for the activity's channel.
func (c *Claims) Check(act *schema.Activity) error {
	if act.ServiceURL == "" || act.ServiceURL != c.ServiceURL {
		return unauthorized("the activity's serviceUrl is not the token's")
	}
	if !c.Endorses(act.ChannelID) {
		return unauthorized("the signing key is not endorsed for channel %q", truncateRunes(act.ChannelID, 40))
	}
	return nil
}

// AuthenticateRequest implements msbotbuilder-go's auth.TokenValidator, so the validator can
// stand in a core.BotFrameworkAdapter.
func (v *Validator) AuthenticateRequest(ctx context.Context, act schema.Activity, authHeader string, _ auth.CredentialProvider, _ string) (auth.ClaimsIdentity, error) {
	c, err := v.Verify(ctx, authHeader)
	if err != nil {
		return nil, err
	}
	if err := c.Check(&act); err != nil {
		return nil, err
	}
	return auth.NewClaimIdentity(map[string]any{
		auth.IssuerClaim: BotFrameworkIssuer, auth.AudienceClaim: c.Audience, auth.ServiceURLClaim: c.ServiceURL,
	}, true), nil
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "" && len(tok) < 16<<10
}

// key finds a signing key by id, reading the metadata and keys when they are stale or the
// id is new (at most every keyRefetchEvery, so junk key ids cannot make us fetch per request).
func (v *Validator) key(ctx context.Context, kid string) (signingKey, error) {
	v.mu.RLock()
	k, ok := v.keys[kid]
	have := len(v.keys) > 0
	stale := v.cfg.Now().Sub(v.fetchedAt) > keysTTL
	mayTry := v.cfg.Now().Sub(v.triedAt) > keyRefetchEvery
	v.mu.RUnlock()
	if ok && !stale {
		return k, nil
	}
	if have && !stale && !mayTry {
		return signingKey{}, unauthorized("unknown signing key %q", truncateRunes(kid, 60))
	}
	_, err := v.Refresh(ctx)
	v.mu.RLock()
	k, ok = v.keys[kid]
	v.mu.RUnlock()
	switch {
	case ok:
		return k, nil // also while the metadata does not answer: keep using the keys we have
	case err != nil:
		return signingKey{}, err
	}
	return signingKey{}, unauthorized("unknown signing key %q", truncateRunes(kid, 60))
}

// Refresh reads the OpenID metadata and its keys now; it returns the number of keys.
// Concurrent callers share one fetch; after a failure, callers get that failure for
// failedFetchHold before the next attempt.
func (v *Validator) Refresh(ctx context.Context) (int, error) {
	started := v.cfg.Now()
	v.fetch.Lock()
	defer v.fetch.Unlock()
	v.mu.RLock()
	n, fetched, tried, lastErr := len(v.keys), v.fetchedAt, v.triedAt, v.lastErr
	v.mu.RUnlock()
	switch {
	case !fetched.IsZero() && !fetched.Before(started):
		return n, nil // fetched while we waited
	case lastErr != nil && (!tried.Before(started) || v.cfg.Now().Sub(tried) < failedFetchHold):
		return n, lastErr
	}
	n, err := v.fetchKeys(ctx)
	v.mu.Lock()
	v.triedAt, v.lastErr = v.cfg.Now(), err
	v.mu.Unlock()
	return n, err
}

func (v *Validator) fetchKeys(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, keyFetchTimeout)
	defer cancel()
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, v.cfg.MetadataURL, &meta); err != nil {
		return 0, fmt.Errorf("%w: OpenID metadata: %v", ErrKeysUnavailable, err)
	}
	u, err := url.Parse(meta.JWKSURI)
	if err != nil || u.Host == "" || !allowedURL(u) {
		return 0, fmt.Errorf("%w: the OpenID metadata names no https jwks_uri", ErrKeysUnavailable)
	}
	var set struct {
		Keys []struct {
			Kty          string   `json:"kty"`
			Use          string   `json:"use"`
			Kid          string   `json:"kid"`
			N            string   `json:"n"`
			E            string   `json:"e"`
			Endorsements []string `json:"endorsements"`
		} `json:"keys"`
	}
	if err := v.getJSON(ctx, meta.JWKSURI, &set); err != nil {
		return 0, fmt.Errorf("%w: keys: %v", ErrKeysUnavailable, err)
	}
	keys := map[string]signingKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		pub, err := rsaKey(k.N, k.E)
		if err != nil {
			continue
		}
		keys[k.Kid] = signingKey{pub: pub, endorsements: k.Endorsements}
	}
	if len(keys) == 0 {
		return 0, fmt.Errorf("%w: the key set holds no usable RSA key", ErrKeysUnavailable)
	}
	v.mu.Lock()
	v.keys, v.fetchedAt = keys, v.cfg.Now()
	v.mu.Unlock()
	return len(keys), nil
}

func (v *Validator) getJSON(ctx context.Context, target string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", redactURL(target), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysDocument))
	if err != nil {
		return err
	}
	return json.Unmarshal(body, out)
}

func rsaKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := b64url(n)
	if err != nil {
		return nil, err
	}
	eb, err := b64url(e)
	if err != nil || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad exponent")
	}
	var exp int
	for _, b := range eb {
		exp = exp<<8 | int(b)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: exp}
	if pub.N.BitLen() < minRSABits || exp < 3 || exp%2 == 0 {
		return nil, errors.New("weak key")
	}
	return pub, nil
}

func b64url(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
