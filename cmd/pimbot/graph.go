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

// graphConfigured reports whether Graph credentials are set (ok=false: the local directory).
func graphConfigured(getenv func(string) string) bool {
	if getenv("GRAPH_ACCESS_TOKEN") != "" {
		return true
	}
	if getenv("AZURE_CLIENT_ID") != "" && (getenv("AZURE_TENANT_ID") != "" || getenv("AZURE_FEDERATED_TOKEN_FILE") != "") {
		return true
	}
	return getenv("PIMBOT_DIRECTORY") == "graph" // managed identity: nothing else to detect it by
}

// graphDirectory returns the Microsoft Graph directory when Graph credentials are set.
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
	a.log.Info("directory: Microsoft Graph", "base", firstNonEmpty(cfg.BaseURL, graphclient.DefaultBaseURL))
	return g, true, nil
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

func init() { extraChecks = append(extraChecks, checkGraph) }

// checkGraph resolves every managed group in Graph, and says which permission a refusal means.
func checkGraph(ctx context.Context, a *app, r *checkReport) {
	g, ok := a.dir.(*graphclient.Directory)
	if !ok {
		r.ok("directory: local (from the policy file); set AZURE_* or GRAPH_ACCESS_TOKEN for Microsoft Graph")
		return
	}
	for _, grp := range a.pol.Groups {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		name, err := g.GroupName(cctx, grp.ID)
		cancel()
		var ge *graphclient.Error
		switch {
		case err == nil:
			r.ok("graph: group %s (%s) is %q", grp.Name, grp.ID, name)
		case errors.As(err, &ge) && (ge.Status == 401 || ge.Status == 403):
			r.fail("graph: group %s: refused (HTTP %d %s): grant the app GroupMember.Read.All (reads), GroupMember.ReadWrite.All (members), Group.ReadWrite.All (owners), User.Read.All, and RoleManagement.ReadWrite.Directory for role-assignable groups", grp.Name, ge.Status, ge.Code)
		case errors.Is(err, bot.ErrNotFound):
			r.fail("graph: group %s: no group with id %s in this tenant", grp.Name, grp.ID)
		default:
			r.fail("graph: group %s: %v", grp.Name, strings.TrimPrefix(fmt.Sprint(err), "graph: "))
		}
	}
}
