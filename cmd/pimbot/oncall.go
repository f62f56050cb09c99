package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/oncall/local"
	"github.com/pimbot/pimbot/oncall/opsgenie"
	"github.com/pimbot/pimbot/oncall/pagerduty"
)

// onCallCheckTimeout bounds `pimbot check`'s look at one on-call source.
const onCallCheckTimeout = 10 * time.Second

// onCallProviders builds the on-call providers for auto_approve:
//
//	PAGERDUTY_TOKEN    PagerDuty REST API key (read-only is enough); PAGERDUTY_URL overrides the API
//	OPSGENIE_API_KEY   key of an Opsgenie API integration; OPSGENIE_REGION us (default) or eu,
//	                   OPSGENIE_URL overrides the API
//	directory.on_call  local rotas in the policy file (provider local)
//
// It refuses a policy whose auto_approve names a provider whose credentials are not set: such
// a group would quietly ask its approvers every time. client gives the HTTP client of a
// service ("pagerduty", "opsgenie"); nil, or a nil client, means a default with a timeout.
func onCallProviders(getenv func(string) string, pol *bot.Policy, client func(service string) *http.Client, log *slog.Logger) ([]bot.OnCallProvider, error) {
	httpClient := func(service string) *http.Client {
		if client == nil {
			return nil
		}
		return client(service)
	}
	var out []bot.OnCallProvider
	if token := strings.TrimSpace(getenv("PAGERDUTY_TOKEN")); token != "" {
		p, err := pagerduty.New(pagerduty.Options{Token: token, BaseURL: getenv("PAGERDUTY_URL"),
			HTTPClient: httpClient("pagerduty"), Logger: log})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if key := strings.TrimSpace(getenv("OPSGENIE_API_KEY")); key != "" {
		p, err := opsgenie.New(opsgenie.Options{APIKey: key, Region: getenv("OPSGENIE_REGION"), BaseURL: getenv("OPSGENIE_URL"),
			HTTPClient: httpClient("opsgenie"), Logger: log})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(pol.Rotas) > 0 {
		out = append(out, local.New(pol.Rotas, nil))
	}
	have := map[string]bool{}
	for _, p := range out {
		have[p.Name()] = true
	}
	var problems []error
	seen := map[string]bool{}
	for _, g := range pol.Groups {
		if g.AutoApprove == nil {
			continue
		}
		for _, src := range g.AutoApprove.OnCall {
			if have[src.Provider] || seen[g.Name+"|"+src.Provider] {
				continue
			}
			seen[g.Name+"|"+src.Provider] = true
			problems = append(problems, fmt.Errorf("group %s: auto_approve uses %s; %s", g.Name, src.Provider, setUp(src.Provider)))
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return out, nil
}

// setUp says what makes a provider available.
func setUp(provider string) string {
	switch provider {
	case bot.OnCallPagerDuty:
		return "set PAGERDUTY_TOKEN"
	case bot.OnCallOpsgenie:
		return "set OPSGENIE_API_KEY (and OPSGENIE_REGION=eu for an EU account)"
	case bot.OnCallLocal:
		return "define the rotas under directory.on_call in the policy file"
	}
	return "use pagerduty, opsgenie or local"
}

func init() {
	extraChecks = append(extraChecks, func(ctx context.Context, a *app, r *checkReport) {
		checkOnCall(ctx, r, a.pol, a.oncall)
	})
}

// checkOnCall asks, for each group with auto_approve, each of its on-call sources who is on
// call now, and reports it; this proves the credentials and that every schedule and service
// exists.
func checkOnCall(ctx context.Context, r *checkReport, pol *bot.Policy, providers []bot.OnCallProvider) {
	byName := map[string]bot.OnCallProvider{}
	for _, p := range providers {
		byName[p.Name()] = p
	}
	tz := pol.Settings.Timezone
	if tz == nil {
		tz = time.UTC
	}
	for _, g := range pol.Groups {
		if g.AutoApprove == nil {
			continue
		}
		for _, src := range g.AutoApprove.OnCall {
			p, found := byName[src.Provider]
			if !found {
				r.fail("%s: auto_approve uses %s, which is not set up; %s", g.Name, src.Provider, setUp(src.Provider))
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, onCallCheckTimeout)
			shifts, err := p.Now(cctx, src)
			cancel()
			if err != nil {
				r.fail("%s: %v", g.Name, err)
				continue
			}
			for _, s := range shifts {
				r.ok("on call for %s: %s: %s", g.Name, s.Rota, shiftWords(s, tz))
			}
		}
	}
}

// shiftWords: "alice@example.com until 2026-12-02 18:00 UTC", "nobody right now".
func shiftWords(s bot.OnCallShift, tz *time.Location) string {
	if len(s.People) == 0 {
		return "nobody right now"
	}
	words := strings.Join(s.People, ", ")
	if !s.Until.IsZero() {
		words += " until " + s.Until.In(tz).Format("2006-01-02 15:04 MST")
	}
	return words
}
