package main

import (
	"context"

	"github.com/pimbot/pimbot/bot"
)

// graphDirectory returns the Microsoft Graph directory when Graph credentials are set.
// (ok=false: no credentials, use the local directory.)
func graphDirectory(ctx context.Context, a *app) (d bot.Directory, ok bool, err error) {
	return nil, false, nil
}
