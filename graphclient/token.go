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
	// DirectoryRoles are the Entra directory roles of the app's service principal, by role
	// template id, from the token's "wids" claim. Application permissions (roles) do not
	// reach a group in a restricted management administrative unit; a directory role does,
	// when it is assigned at the scope of that unit (the token does not say where a role is
	// assigned, so check treats a role here as a hint).
	DirectoryRoles []string
}

// Directory role template ids that can change group membership (the same in every tenant:
// https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
var groupRoles = map[string]string{
	"fdd7a751-b60b-444a-984c-02652fe8fa1c": "Groups Administrator",
	"fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
	"62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
}

// GroupRoles names the directory roles in the token (wids) that may change a group's members
// when assigned at the scope of its administrative unit.
func (t TokenInfo) GroupRoles() []string {
	var out []string
	for _, id := range t.DirectoryRoles {
		if n, ok := groupRoles[strings.ToLower(id)]; ok {
			out = append(out, n)
		}
	}
	return out
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
		WIDs  []string `json:"wids"`
		AppID string   `json:"appid"`
		AZP   string   `json:"azp"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return info, nil
	}
	info.Known, info.Roles, info.DirectoryRoles, info.AppID = true, claims.Roles, claims.WIDs, claims.AppID
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
