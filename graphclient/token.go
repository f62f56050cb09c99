package graphclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// TokenInfo is what `pimbot check` reads from the app's Graph token. The token itself never
// leaves this package.
type TokenInfo struct {
	Expires time.Time
	// Roles are the application permissions granted (with admin consent) to the app, read
	// from the token's "roles" claim. Known is false when the token is not a JWT (a
	// development token) and the roles cannot be told.
	Roles []string
	Known bool
	AppID string // the "appid" (or "azp") claim
}

// Token gets a Graph token the way every call does, and reads its claims (unverified: it
// came from Entra to us, and is only described, never trusted for a decision).
func (d *Directory) Token(ctx context.Context) (TokenInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	tok, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{d.scope}})
	if err != nil {
		return TokenInfo{}, fmt.Errorf("get a Graph token for %s: %w", d.scope, err)
	}
	info := TokenInfo{Expires: tok.ExpiresOn}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		return info, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return info, nil
	}
	var claims struct {
		Roles []string `json:"roles"`
		AppID string   `json:"appid"`
		AZP   string   `json:"azp"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return info, nil
	}
	info.Known, info.Roles, info.AppID = true, claims.Roles, claims.AppID
	if info.AppID == "" {
		info.AppID = claims.AZP
	}
	return info, nil
}

// Has reports whether the token carries the permission, or one that includes it.
func (t TokenInfo) Has(perm string) bool {
	for _, p := range append([]string{perm}, broader[perm]...) {
		if slices.Contains(t.Roles, p) {
			return true
		}
	}
	return false
}

// broader lists the permissions that include each one pimbot needs.
var broader = map[string][]string{
	PermGroupMemberReadWrite: {PermGroupReadWrite, "Directory.ReadWrite.All"},
	PermGroupReadWrite:       {"Directory.ReadWrite.All"},
	PermUserRead:             {"User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
	PermRoleManagement:       nil,
}
