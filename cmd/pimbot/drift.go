package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// defaultDriftInterval is how often managed groups are compared with the grants.
const defaultDriftInterval = 15 * time.Minute

// setupDrift runs the drift reconciler (PIMBOT_DRIFT_INTERVAL, default 15m; 0 turns it off)
// when the directory can list members.
func setupDrift(ctx context.Context, a *app, mux *http.ServeMux) ([]func(context.Context) error, error) {
	lister, ok := a.dir.(bot.MemberLister)
	if !ok {
		return nil, nil
	}
	interval := defaultDriftInterval
	if v := a.getenv("PIMBOT_DRIFT_INTERVAL"); v != "" {
		d, err := bot.ParseDuration(v)
		if err != nil || d < 0 || (d > 0 && d < time.Minute) {
			return nil, fmt.Errorf("PIMBOT_DRIFT_INTERVAL=%q: use a duration of at least 1m, or 0 to turn drift detection off", v)
		}
		interval = d
	}
	if interval == 0 {
		return nil, nil
	}
	return []func(context.Context) error{func(ctx context.Context) error {
		a.engine.RunReconciler(ctx, lister, interval)
		return nil
	}}, nil
}
