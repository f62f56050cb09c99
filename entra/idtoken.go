package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pimbot/pimbot/bot"
	"golang.org/x/oauth2"
)

// Claims are the ID token claims pimbot relies on.
type Claims struct {
	Issuer   string
	ObjectID string // oid: the directory object id of the person who signed in
	TenantID string
	Nonce    string
	AMR      []string  // authentication methods (v2.0 ID tokens from Entra carry none)
	ACRS     []string  // satisfied authentication contexts
	AuthTime time.Time // when the person actually authenticated (auth_time; zero if absent)
	Name     string
	UPN      string
}

// provider is what discovery told about the tenant: the issuer to expect in tokens (the
// tenant's GUID form, even when AZURE_TENANT_ID is a domain), the endpoints, and the keys,
// fetched and rotated by go-oidc.
type provider struct {
	issuer   string
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// discovery reads the tenant's OpenID configuration once (and again after a failure).
type discovery struct {
	mu     sync.Mutex
	p      *provider
	failed time.Time
}

// discoveryRetry bounds how often a failed discovery is tried again.
const discoveryRetry = 10 * time.Second

// provider discovers the tenant's endpoints and keys from
// <login>/<tenant>/v2.0/.well-known/openid-configuration, instead of building URLs.
func (v *Verifier) provider(ctx context.Context) (*provider, error) {
	v.disc.mu.Lock()
	defer v.disc.mu.Unlock()
	if v.disc.p != nil {
		return v.disc.p, nil
	}
	if time.Since(v.disc.failed) < discoveryRetry {
		return nil, fmt.Errorf("the sign-in configuration of the tenant could not be read a moment ago: %w", bot.ErrUnavailable)
	}
	p, err := v.discover(ctx)
	if err != nil {
		v.disc.failed = time.Now()
		return nil, err
	}
	v.disc.p = p
	return p, nil
}

func (v *Verifier) discover(ctx context.Context) (*provider, error) {
	where := v.cfg.LoginURL + "/" + url.PathEscape(v.cfg.TenantID) + "/v2.0/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", where, errors.Join(bot.ErrUnavailable, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("read %s: HTTP %d", where, resp.StatusCode)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			err = errors.Join(err, bot.ErrUnavailable)
		}
		return nil, err
	}
	var pc oidc.ProviderConfig
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&pc); err != nil {
		return nil, fmt.Errorf("read %s: %w", where, err)
	}
	// The issuer must be the tenant's own, at the configured authority (never another host).
	if !strings.HasPrefix(pc.IssuerURL, v.cfg.LoginURL+"/") || !strings.HasSuffix(pc.IssuerURL, "/v2.0") ||
		(IsTenantGUID(v.cfg.TenantID) && !strings.Contains(strings.ToLower(pc.IssuerURL), strings.ToLower(v.cfg.TenantID))) {
		return nil, fmt.Errorf("%s names the issuer %q, which is not tenant %s at %s", where, pc.IssuerURL, v.cfg.TenantID, v.cfg.LoginURL)
	}
	for _, u := range []string{pc.AuthURL, pc.TokenURL, pc.JWKSURL} {
		if err := secureURL(u); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	kctx := oidc.ClientContext(context.Background(), v.http)
	op := pc.NewProvider(kctx)
	return &provider{
		issuer: pc.IssuerURL,
		oauth: oauth2.Config{ClientID: v.cfg.ClientID, ClientSecret: v.cfg.ClientSecret, RedirectURL: v.redirectURI(),
			Scopes: []string{oidc.ScopeOpenID, "profile"},
			Endpoint: oauth2.Endpoint{AuthURL: pc.AuthURL, TokenURL: pc.TokenURL, DeviceAuthURL: pc.DeviceAuthURL,
				AuthStyle: oauth2.AuthStyleInParams}},
		verifier: op.VerifierContext(kctx, &oidc.Config{ClientID: v.cfg.ClientID, SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256},
			Now: func() time.Time { return v.clock().Add(-clockSkew) }}),
	}, nil
}

// IsTenantGUID reports whether a tenant reference is the tenant's id (not a domain).
func IsTenantGUID(s string) bool {
	return len(s) == 36 && strings.Count(s, "-") == 4 && !strings.ContainsAny(s, "./")
}

// secureURL: an authority reached over https, or over http on loopback only (tests, a local
// proxy): tokens and codes never cross a network in the clear.
func secureURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && (host == "localhost" || (ip != nil && ip.IsLoopback())) {
		return nil
	}
	return fmt.Errorf("%q must use https (plain http is allowed on loopback only)", raw)
}

// clockSkew is tolerated on a token's expiry: the engine's one allowance.
const clockSkew = bot.ClockSkew

var errToken = errors.New("the sign-in token is not valid")

// validate checks an ID token with go-oidc (signature by a key of the tenant, RS256 or ES256;
// issuer; audience; expiry), then the nonce, and returns the claims pimbot uses.
func (v *Verifier) validate(ctx context.Context, p *provider, raw, nonce string) (Claims, error) {
	var c Claims
	tok, err := p.verifier.Verify(oidc.ClientContext(ctx, v.http), raw)
	if err != nil {
		var te *oidc.TokenExpiredError
		switch {
		case errors.As(err, &te):
			return c, fmt.Errorf("%w: it has expired", errToken)
		case strings.Contains(err.Error(), "expected audience"):
			return c, fmt.Errorf("%w: it was issued for another application", errToken)
		case strings.Contains(err.Error(), "issued by a different provider"):
			return c, fmt.Errorf("%w: its issuer is not this tenant's", errToken)
		}
		return c, fmt.Errorf("%w: %v", errToken, err)
	}
	var raw2 struct {
		OID      string   `json:"oid"`
		TID      string   `json:"tid"`
		Name     string   `json:"name"`
		UPN      string   `json:"preferred_username"`
		AMR      []string `json:"amr"`
		ACRS     []string `json:"acrs"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := tok.Claims(&raw2); err != nil {
		return c, fmt.Errorf("%w: %v", errToken, err)
	}
	c = Claims{Issuer: tok.Issuer, ObjectID: raw2.OID, TenantID: raw2.TID, Nonce: tok.Nonce, AMR: raw2.AMR, ACRS: raw2.ACRS,
		Name: raw2.Name, UPN: raw2.UPN}
	if raw2.AuthTime > 0 {
		c.AuthTime = time.Unix(raw2.AuthTime, 0)
	}
	switch {
	case nonce != "" && c.Nonce != nonce:
		return c, fmt.Errorf("%w: the nonce does not match this sign-in", errToken)
	case c.ObjectID == "":
		return c, fmt.Errorf("%w: no object id (oid)", errToken)
	}
	return c, nil
}
