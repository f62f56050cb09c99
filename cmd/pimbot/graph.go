package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient"
)

// graphConfigured reports whether Microsoft Graph is to be used: a development token, an app
// registration (AZURE_CLIENT_ID with a tenant, or workload identity's token file), an Azure
// managed identity endpoint, or PIMBOT_DIRECTORY=graph (a managed identity on a VM or AKS,
// where nothing else reveals one). PIMBOT_DIRECTORY=local forces the local directory.
func graphConfigured(getenv func(string) string) bool {
	switch strings.ToLower(getenv("PIMBOT_DIRECTORY")) {
	case "graph":
		return true
	case "local":
		return false
	}
	if getenv("GRAPH_ACCESS_TOKEN") != "" {
		return true
	}
	if getenv("AZURE_CLIENT_ID") != "" && (getenv("AZURE_TENANT_ID") != "" || getenv("AZURE_FEDERATED_TOKEN_FILE") != "") {
		return true
	}
	return getenv("IDENTITY_ENDPOINT") != "" || getenv("MSI_ENDPOINT") != "" // App Service, Functions, Container Apps, Arc
}

// graphDirectory returns the Microsoft Graph directory when Graph is configured: one shared
// client for the whole process.
func graphDirectory(ctx context.Context, a *app) (d bot.Directory, ok bool, err error) {
	if !graphConfigured(a.getenv) {
		return nil, false, nil
	}
	cfg := graphclient.Config{BaseURL: a.getenv("GRAPH_API_URL"), AccessToken: a.getenv("GRAPH_ACCESS_TOKEN"), Logger: a.log}
	cfg.HTTPClient = &http.Client{Transport: a.instrument("graph", nil)}
	g, err := graphclient.New(cfg)
	if err != nil {
		return nil, false, err
	}
	how := "azidentity (AZURE_* variables, workload or managed identity)"
	if cfg.AccessToken != "" {
		how = "GRAPH_ACCESS_TOKEN (development only)"
	}
	a.log.Info("directory: Microsoft Graph", "base", g.BaseURL(), "credential", how)
	return g, true, nil
}

func init() { extraChecks = append(extraChecks, checkGraph) }

// checkGraph proves the Graph setup: a token, the permissions it carries, and every managed
// group read by id, saying which permission is missing when Graph refuses.
func checkGraph(ctx context.Context, a *app, r *checkReport) {
	g, ok := a.dir.(*graphclient.Directory)
	if !ok {
		r.ok("directory: local (from the policy file); set AZURE_* or GRAPH_ACCESS_TOKEN for Microsoft Graph")
		return
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tok, err := g.Token(tctx)
	cancel()
	if err != nil {
		r.fail("graph: no token: %v", err)
		return
	}
	owners := false
	for _, grp := range a.pol.Groups {
		owners = owners || grp.Allows(bot.Owner)
	}
	if tok.Known {
		roles := ""
		if len(tok.DirectoryRoles) > 0 {
			roles = fmt.Sprintf("; directory roles (wids): %s", orNone(append(tok.GroupRoles(), otherRoles(tok)...)))
		}
		r.ok("graph: token for %s (application permissions: %s%s)", g.BaseURL(), orNone(tok.Roles), roles)
		need := []struct{ perm, why string }{
			{graphclient.PermGroupMemberReadWrite, "add and remove members, read groups, list members for drift"},
			{graphclient.PermUserRead, "find people by e-mail or UPN, check group: eligibility and approvers"},
		}
		if owners {
			need = append(need, struct{ perm, why string }{graphclient.PermGroupReadWrite, "add and remove owners, which a group of the policy allows"})
		}
		for _, n := range need {
			if !tok.Has(n.perm) {
				r.fail("graph: the app lacks the application permission %s (%s); add it and grant admin consent", n.perm, n.why)
			}
		}
	} else {
		r.ok("graph: token for %s (not a JWT: its permissions are judged by the calls below)", g.BaseURL())
	}
	for _, grp := range a.pol.Groups {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		info, err := g.Group(cctx, grp.ID)
		cancel()
		var ge *graphclient.Error
		switch {
		case err == nil:
			checkGroupInfo(r, grp, info, tok)
		case errors.As(err, &ge) && ge.Status == http.StatusForbidden:
			r.fail("graph: group %s: %s: HTTP 403 %s reading it; reading groups needs %s (or GroupMember.Read.All), which the token may lack",
				grp.Name, graphclient.Refused403, ge.Code, graphclient.PermGroupMemberReadWrite)
		case errors.As(err, &ge) && ge.Status == http.StatusUnauthorized:
			r.fail("graph: group %s: the token was refused (HTTP 401 %s): check the AZURE_* variables (or GRAPH_ACCESS_TOKEN) and that GRAPH_API_URL is the cloud of that tenant",
				grp.Name, ge.Code)
		case errors.Is(err, bot.ErrNotFound):
			r.fail("graph: group %s: no group with id %s in this tenant", grp.Name, grp.ID)
		default:
			r.fail("graph: group %s: %v", grp.Name, strings.TrimPrefix(err.Error(), "graph: "))
		}
	}
}

// checkGroupInfo says whether pimbot can change the group, as Graph would answer a change:
// the kinds of group no app may change (graphclient.GroupInfo.ReadOnly), a group in a
// restricted management administrative unit, and a role-assignable group.
func checkGroupInfo(r *checkReport, grp *bot.Group, info graphclient.GroupInfo, tok graphclient.TokenInfo) {
	head := fmt.Sprintf("graph: group %s (%s) %q", grp.Name, grp.ID, info.Name)
	failed := false
	if why := info.ReadOnly(); why != "" {
		r.fail("%s %s", head, why)
		failed = true
	}
	if info.Restricted {
		switch roles := tok.GroupRoles(); {
		case len(roles) > 0:
			r.warn("%s %s; the token carries the directory role %s (wids): Entra honours it here only if it is assigned at the scope of that unit, which a token does not show",
				head, graphclient.RestrictedReason, strings.Join(roles, ", "))
		default:
			r.fail("%s %s; assign such a role to the app for that unit, or move the group out of it", head, graphclient.RestrictedReason)
			failed = true
		}
	}
	switch {
	case info.RoleAssignable && tok.Known && !tok.Has(graphclient.PermRoleManagement):
		r.fail("%s is role-assignable: the app also needs %s; add it and grant admin consent", head, graphclient.PermRoleManagement)
	case failed:
	case info.RoleAssignable && !tok.Known:
		r.ok("graph: group %s (%s) is %q (%s, role-assignable: the app also needs %s)", grp.Name, grp.ID, info.Name, info.Kind(), graphclient.PermRoleManagement)
	case info.RoleAssignable:
		r.ok("graph: group %s (%s) is %q (%s, role-assignable)", grp.Name, grp.ID, info.Name, info.Kind())
	default:
		r.ok("graph: group %s (%s) is %q (%s)", grp.Name, grp.ID, info.Name, info.Kind())
	}
}

// otherRoles are the token's directory role ids that are not named by GroupRoles.
func otherRoles(tok graphclient.TokenInfo) []string {
	var out []string
	for _, id := range tok.DirectoryRoles {
		if len(graphclient.TokenInfo{DirectoryRoles: []string{id}}.GroupRoles()) == 0 {
			out = append(out, id)
		}
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
