package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	slacksurface "github.com/pimbot/pimbot/handlers/slack"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func init() { extraChecks = append(extraChecks, checkSlack) }

// setupSlack registers the Slack surface when SLACK_BOT_TOKEN is set: its notifier on the
// engine, its HTTP routes on mux, and (with SLACK_APP_TOKEN) a Socket Mode runner.
// Runners returned are started by serve and must stop when ctx ends.
func setupSlack(ctx context.Context, a *app, mux *http.ServeMux) (runners []func(context.Context) error, err error) {
	token, appToken, secret := a.getenv("SLACK_BOT_TOKEN"), a.getenv("SLACK_APP_TOKEN"), a.getenv("SLACK_SIGNING_SECRET")
	switch {
	case token == "" && appToken != "":
		return nil, errors.New("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: Socket Mode needs both")
	case token == "":
		return nil, nil
	case !strings.HasPrefix(token, "xoxb-"):
		return nil, errors.New("SLACK_BOT_TOKEN must be a bot token (xoxb-…)")
	case appToken != "" && !strings.HasPrefix(appToken, "xapp-"):
		return nil, errors.New("SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope")
	case appToken == "" && secret == "":
		return nil, errors.New("over HTTP, Slack needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for Socket Mode)")
	}
	var extra []slack.Option
	if appToken != "" {
		extra = append(extra, slack.OptionAppLevelToken(appToken))
	}
	client := slacksurface.NewClient(token, a.getenv("SLACK_API_URL"), extra...)
	opts := slacksurface.Options{Client: client, Engine: a.engine, KV: a.store, SigningSecret: secret, Logger: a.log}
	if a.pol.Settings.IdentityBinding == "entra_signin" {
		// Sign-ins are kept in Redis, so this verifier and the one serving /auth/callback
		// share them; mux is nil: the callback is mounted where Entra is set up for serve.
		v, err := setupEntra(ctx, a, nil)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, errors.New("settings.identity_binding: entra_signin needs an Entra app registration (AZURE_TENANT_ID and AZURE_CLIENT_ID, or ENTRA_CLIENT_ID)")
		}
		opts.Binder = v
	}
	s, err := slacksurface.New(opts)
	if err != nil {
		return nil, err
	}
	a.engine.AddNotifier(s)
	runners = append(runners, s.Run)
	if secret != "" {
		s.Routes(mux)
	}
	if appToken != "" {
		runners = append(runners, s.SocketMode(socketmode.New(client)))
		a.log.Info("slack: Socket Mode", "http_routes", secret != "")
	} else {
		a.log.Info("slack: HTTP (POST /slack/commands, /slack/interactions, /slack/events)")
	}
	return runners, nil
}

// checkSlack proves the Slack tokens with auth.test (and apps.connections.open for Socket Mode).
func checkSlack(ctx context.Context, a *app, r *checkReport) {
	token, appToken := a.getenv("SLACK_BOT_TOKEN"), a.getenv("SLACK_APP_TOKEN")
	if token == "" {
		if appToken != "" {
			r.fail("slack: SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not")
		}
		return
	}
	if appToken == "" && a.getenv("SLACK_SIGNING_SECRET") == "" {
		r.fail("slack: neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP) is set")
	}
	var extra []slack.Option
	if appToken != "" {
		extra = append(extra, slack.OptionAppLevelToken(appToken))
	}
	api := slacksurface.NewClient(token, a.getenv("SLACK_API_URL"), extra...)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	who, err := api.AuthTestContext(cctx)
	if err != nil {
		r.fail("slack: %s", slackCheckFailure("SLACK_BOT_TOKEN", "auth.test", err))
		return
	}
	r.ok("slack: bot token works (workspace %s, bot user %s)", who.Team, who.User)
	if appToken != "" {
		if _, _, err := api.StartSocketModeContext(cctx); err != nil {
			r.fail("slack: %s", slackCheckFailure("SLACK_APP_TOKEN", "apps.connections.open", err))
			return
		}
		r.ok("slack: app-level token accepted (Socket Mode)")
	}
}

// slackCheckFailure says why a token could not be proven: Slack answered and refused it
// (an error answer such as invalid_auth), or Slack was not reached (network, timeout, an
// HTTP error or rate limit), in which case the token is neither good nor bad yet.
func slackCheckFailure(env, method string, err error) string {
	var refused slack.SlackErrorResponse
	if errors.As(err, &refused) {
		return fmt.Sprintf("Slack refused %s: %s answered %q", env, method, refused.Err)
	}
	var status slack.StatusCodeError
	var limited *slack.RateLimitedError
	switch {
	case errors.As(err, &status):
		return fmt.Sprintf("Slack answered %s with HTTP %d, so %s was not checked; try again later", method, status.Code, env)
	case errors.As(err, &limited):
		return fmt.Sprintf("Slack rate-limited %s (retry after %s), so %s was not checked", method, limited.RetryAfter, env)
	}
	return fmt.Sprintf("Slack is unreachable (%v), so %s was not checked; check the network, a proxy, or SLACK_API_URL", err, env)
}
