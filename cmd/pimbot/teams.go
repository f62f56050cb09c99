package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pimbot/pimbot/handlers/teams"
	"github.com/pimbot/pimbot/teamsapp"
)

// teamsHTTPTimeout bounds one call to the Bot Framework (metadata, token, connector).
const teamsHTTPTimeout = 15 * time.Second

func init() { extraChecks = append(extraChecks, checkTeams) }

// setupTeams registers the Teams surface when MICROSOFT_APP_ID is set: its notifier on the
// engine and POST /api/messages on mux. Its runner reads the Bot Framework signing keys at
// start, so the first activity does not wait for them.
func setupTeams(ctx context.Context, a *app, mux *http.ServeMux) (runners []func(context.Context) error, err error) {
	st, ok, err := teams.SettingsFromEnv(a.getenv)
	if err != nil {
		return nil, fmt.Errorf("teams: %w", err)
	}
	if !ok {
		return nil, nil
	}
	st.HTTP = a.httpClient("teams", teamsHTTPTimeout)
	s, err := st.Build(a.engine, a.store, a.log)
	if err != nil {
		return nil, fmt.Errorf("teams: %w", err)
	}
	a.engine.AddNotifier(s)
	mux.Handle("POST /api/messages", s)
	if st.TenantID == "" {
		a.log.Warn("MICROSOFT_APP_TENANT_ID is not set: connector tokens come from the legacy multi-tenant botframework.com tenant, which new (single-tenant) Azure Bots cannot use")
	}
	a.log.Info("teams surface on POST /api/messages", "bot", st.String())
	warm := func(ctx context.Context) error {
		if n, err := s.Validator().Refresh(ctx); err != nil {
			a.log.Warn("teams: cannot read the Bot Framework signing keys yet; retrying on the first activity", "err", err)
		} else {
			a.log.Debug("teams: signing keys read", "keys", n)
		}
		return nil
	}
	return []func(context.Context) error{warm}, nil
}

// checkTeams proves the Teams setup for `pimbot check`: the signing keys can be read, the
// app gets a connector token, and every approval_channel.teams looks like a channel id.
func checkTeams(ctx context.Context, a *app, r *checkReport) {
	st, ok, err := teams.SettingsFromEnv(a.getenv)
	if err != nil {
		r.fail("teams: %v", err)
		return
	}
	if !ok {
		return
	}
	st.HTTP = &http.Client{Timeout: teamsHTTPTimeout}
	s, err := st.Build(a.engine, a.store, a.log)
	if err != nil {
		r.fail("teams: %v", err)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*teamsHTTPTimeout)
	defer cancel()
	if n, err := s.Validator().Refresh(cctx); err != nil {
		r.fail("teams: Bot Framework signing keys from %s: %v", st.MetadataURL, err)
	} else {
		r.ok("teams: %d Bot Framework signing keys from %s", n, st.MetadataURL)
	}
	if _, err := s.Connector().Token(cctx); err != nil {
		r.fail("teams: app %s gets no connector token from %s: %v", st.AppID, st.TokenURL, err)
	} else {
		r.ok("teams: app %s gets a connector token from %s", st.AppID, st.TokenURL)
	}
	if st.TenantID == "" {
		r.fail("teams: MICROSOFT_APP_TENANT_ID is not set: activities are not pinned to your tenant")
	} else {
		r.ok("teams: only Teams activities (channelId msteams) of tenant %s are acted on", st.TenantID)
	}
	if st.ServiceURL != "" {
		r.ok("teams: posts into a channel not heard from yet go to %s (MICROSOFT_APP_SERVICE_URL)", st.ServiceURL)
	} else {
		r.ok("teams: MICROSOFT_APP_SERVICE_URL is not set: a channel not heard from yet is reached through the service URL of the last activity seen, and not at all before one (set it for GCC, GCC High or DoD)")
	}
	for _, g := range a.pol.Groups {
		ch := g.ApprovalChannel["teams"]
		if ch == "" {
			continue
		}
		if !strings.HasPrefix(ch, "19:") || !strings.Contains(ch, "@thread.") {
			r.fail("teams: %s: approval_channel.teams %q is not a channel id (19:...@thread.tacv2; mention the bot with `channel` in the channel to get it)", g.Name, ch)
			continue
		}
		if known, err := s.KnowsChannel(cctx, ch); err == nil && !known {
			r.ok("teams: %s approves in %s (no activity seen there yet; the app must be in its team)", g.Name, ch)
		} else {
			r.ok("teams: %s approves in %s", g.Name, ch)
		}
	}
}

// teamsPackageCommand defines `pimbot teams-package`'s flags and returns what runs it.
func teamsPackageCommand(fl *flag.FlagSet) func(context.Context, []string, sys) error {
	var o teamsPackageOptions
	fl.StringVar(&o.out, "o", "pimbot-teams.zip", "where to write the app package")
	fl.StringVar(&o.appID, "app-id", "", "the Azure Bot's Microsoft App ID (default: MICROSOFT_APP_ID)")
	fl.StringVar(&o.version, "version", "", "the app version x.y.z (default: the manifest's); raise it for each upload")
	fl.StringVar(&o.dir, "dir", "", "read manifest.json, color.png and outline.png from this directory instead of the built-in ones")
	return func(_ context.Context, _ []string, s sys) error {
		if o.appID == "" {
			o.appID = s.getenv("MICROSOFT_APP_ID")
		}
		return teamsPackage(o, s.stdout)
	}
}

type teamsPackageOptions struct{ out, appID, version, dir string }

// teamsPackage writes the Teams app package (zip) for Teams Admin Center.
func teamsPackage(o teamsPackageOptions, stdout io.Writer) error {
	if o.appID == "" {
		return errors.New("teams-package: set MICROSOFT_APP_ID or pass -app-id <the Azure Bot's Microsoft App ID>")
	}
	var src fs.FS = teamsapp.Files
	if o.dir != "" {
		src = os.DirFS(o.dir)
	}
	tmp, err := os.CreateTemp(filepath.Dir(o.out), ".pimbot-teams-*.zip")
	if err != nil {
		return fmt.Errorf("teams-package: %w", err)
	}
	defer os.Remove(tmp.Name())
	_ = tmp.Chmod(0o644)
	if err := teamsapp.Package(tmp, src, teamsapp.Options{AppID: o.appID, Version: o.version}); err != nil {
		tmp.Close()
		return fmt.Errorf("teams-package: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("teams-package: %w", err)
	}
	if err := os.Rename(tmp.Name(), o.out); err != nil {
		return fmt.Errorf("teams-package: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s for app %s.\nUpload it in Teams Admin Center: Teams apps > Manage apps > Upload new app (or in Teams: Apps > Manage your apps > Upload an app).\n", o.out, strings.ToLower(o.appID))
	return nil
}
