package main

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// setupTeams registers the Teams surface when MICROSOFT_APP_ID is set: its notifier on the
// engine and POST /api/messages on mux.
func setupTeams(ctx context.Context, a *app, mux *http.ServeMux) (runners []func(context.Context) error, err error) {
	return nil, nil
}

// teamsPackage writes the Teams app package (zip) for Teams Admin Center.
func teamsPackage(args []string, getenv func(string) string, stdout io.Writer) error {
	return errors.New("teams-package: not built yet")
}
