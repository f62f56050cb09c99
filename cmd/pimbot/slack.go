package main

import (
	"context"
	"net/http"
)

// setupSlack registers the Slack surface when SLACK_BOT_TOKEN is set: its notifier on the
// engine, its HTTP routes on mux, and (with SLACK_APP_TOKEN) a Socket Mode runner.
// Runners returned are started by serve and must stop when ctx ends.
func setupSlack(ctx context.Context, a *app, mux *http.ServeMux) (runners []func(context.Context) error, err error) {
	return nil, nil
}
