package entra

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
	"github.com/pimbot/pimbot/bot"
)

// Claims are the ID token claims pimbot relies on.
type Claims struct {
	Issuer    string
	Audience  string
	ObjectID  string // oid: the directory object id of the person who signed in
	TenantID  string
	Nonce     string
	AMR       []string // authentication methods (v2.0 ID tokens from Entra carry none)
	ACRS      []string // satisfied authentication contexts
	IssuedAt  time.Time
	AuthTime  time.Time // when the person actually authenticated (auth_time; zero if absent)
	ExpiresAt time.Time
	Name      string
	UPN       string
}

// keySet caches the tenant's signing keys; an unknown kid refreshes it (key rollover).
type keySet struct {
	url    string
	client *http.Client
	mu     sync.Mutex
	keys   map[string]*rsa.PublicKey
	at     time.Time
}

const keysTTL = time.Hour

func (k *keySet) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[kid]; ok && time.Since(k.at) < keysTTL {
		return key, nil
	}
	if time.Since(k.at) < 10*time.Second && k.keys != nil {
		return nil, fmt.Errorf("unknown signing key %q", kid) // don't hammer the endpoint on junk kids
	}
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("unknown signing key %q", kid)
}

func (k *keySet) refresh(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch signing keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch signing keys: HTTP %d", resp.StatusCode)
	}
	var doc struct {
		Keys []struct {
			Kty, Kid, N, E, Use string
		} `json:"keys"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&doc); err != nil {
		return fmt.Errorf("decode signing keys: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, j := range doc.Keys {
		if j.Kty != "RSA" || (j.Use != "" && j.Use != "sig") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(j.N)
		e, err2 := base64.RawURLEncoding.DecodeString(j.E)
		if err1 != nil || err2 != nil || len(e) > 4 {
			continue
		}
		keys[j.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	k.keys, k.at = keys, time.Now()
	return nil
}

// clockSkew is tolerated on exp and nbf: the engine's one allowance.
const clockSkew = bot.ClockSkew

var errToken = errors.New("the sign-in token is not valid")

// validate checks an ID token's signature (RS256 with a tenant key), issuer, audience,
// expiry and nonce (when given), and returns its claims.
func (v *Verifier) validate(ctx context.Context, raw, nonce string, now time.Time) (Claims, error) {
	var c Claims
	p := jwt.NewParser(jwt.WithValidMethods([]string{"RS256"}), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
	mc := jwt.MapClaims{}
	_, err := p.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return v.keys.key(ctx, kid)
	})
	if err != nil {
		return c, fmt.Errorf("%w: %v", errToken, err)
	}
	str := func(k string) string { s, _ := mc[k].(string); return s }
	num := func(k string) time.Time {
		if n, ok := mc[k].(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				return time.Unix(int64(f), 0)
			}
		}
		return time.Time{}
	}
	list := func(k string) []string {
		var out []string
		switch x := mc[k].(type) {
		case []any:
			for _, y := range x {
				if s, ok := y.(string); ok {
					out = append(out, s)
				}
			}
		case string:
			out = []string{x}
		}
		return out
	}
	c = Claims{Issuer: str("iss"), ObjectID: str("oid"), TenantID: str("tid"), Nonce: str("nonce"),
		AMR: list("amr"), ACRS: list("acrs"), IssuedAt: num("iat"), AuthTime: num("auth_time"), ExpiresAt: num("exp"),
		Name: str("name"), UPN: str("preferred_username")}
	if aud := list("aud"); len(aud) > 0 {
		c.Audience = aud[0]
		if !slices.Contains(aud, v.cfg.ClientID) {
			c.Audience = aud[0]
			return c, fmt.Errorf("%w: it was issued for another application (aud %s)", errToken, aud[0])
		}
	} else {
		return c, fmt.Errorf("%w: no audience", errToken)
	}
	switch {
	case c.Issuer != v.issuer():
		return c, fmt.Errorf("%w: issuer %q is not this tenant's", errToken, c.Issuer)
	case c.ExpiresAt.IsZero() || now.After(c.ExpiresAt.Add(clockSkew)):
		return c, fmt.Errorf("%w: it has expired", errToken)
	case !num("nbf").IsZero() && now.Add(clockSkew).Before(num("nbf")):
		return c, fmt.Errorf("%w: it is not valid yet", errToken)
	case nonce != "" && c.Nonce != nonce:
		return c, fmt.Errorf("%w: the nonce does not match this sign-in", errToken)
	case c.ObjectID == "":
		return c, fmt.Errorf("%w: no object id (oid)", errToken)
	}
	return c, nil
}
