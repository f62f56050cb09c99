// Package pagerduty answers "is this person on call?" from PagerDuty (REST API v2, through
// github.com/PagerDuty/go-pagerduty): a person is on call when PagerDuty has them on call at
// that moment for a schedule of the source, or at any level of the escalation policy of a
// service of the source; with require_incident, only while one of the source's services has a
// triggered or acknowledged incident.
package pagerduty

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/oncall/internal/apicall"
)

// DefaultBaseURL is PagerDuty's REST API.
const DefaultBaseURL = "https://api.pagerduty.com"

// pageSize is the largest page PagerDuty serves; maxPages bounds one listing.
const (
	pageSize = 100
	maxPages = 20
)

// window is the span asked of /oncalls around the moment in question; the entries are then
// checked against the moment itself.
const window = time.Minute

// Options configure the provider.
type Options struct {
	Token      string       // a REST API key (PAGERDUTY_TOKEN); a read-only key is enough
	BaseURL    string       // default https://api.pagerduty.com (PAGERDUTY_URL)
	HTTPClient *http.Client // nil: a client with a 10 s timeout
	Logger     *slog.Logger // nil: no logs
	Clock      bot.Clock    // what "now" is for Now and for a query without At; nil: the wall clock
}

// Provider is the PagerDuty on-call provider. It is safe for concurrent use.
type Provider struct {
	api   *pagerduty.Client
	svc   apicall.Service
	log   *slog.Logger
	clock bot.Clock
}

var _ bot.OnCallProvider = (*Provider)(nil)

// New checks the options and builds the provider. It makes no call to PagerDuty (Now does).
func New(o Options) (*Provider, error) {
	if strings.TrimSpace(o.Token) == "" {
		return nil, errors.New("pagerduty: no token; set PAGERDUTY_TOKEN to a REST API key (read-only is enough)")
	}
	base := strings.TrimRight(strings.TrimSpace(o.BaseURL), "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if u, err := url.Parse(base); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("pagerduty: the API URL %q is not an http(s) URL; set PAGERDUTY_URL like %s, or leave it unset", base, DefaultBaseURL)
	}
	p := &Provider{
		svc: apicall.Service{Name: "PagerDuty", Secret: o.Token,
			Refused: "PagerDuty refused the token (PAGERDUTY_TOKEN)",
			Fix:     "set PAGERDUTY_TOKEN to a valid REST API key"},
		log: o.Logger, clock: o.Clock,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.clock == nil {
		p.clock = bot.SystemClock{}
	}
	hc := apicall.Client(o.HTTPClient, func(base http.RoundTripper) http.RoundTripper {
		// PagerDuty says how long to wait in ratelimit-reset (developer-docs
		// docs/REST-API/04-Rate-Limits.md); Retry-After is read first, should it come.
		return &apicall.Transport{Base: base, RequestIDHeader: "X-Request-Id", Wait: func(h http.Header) (time.Duration, bool) {
			return apicall.Seconds(h, "ratelimit-reset")
		}}
	})
	p.api = pagerduty.NewClient(o.Token, pagerduty.WithAPIEndpoint(base))
	p.api.HTTPClient = hc
	return p, nil
}

// Name is bot.OnCallPagerDuty.
func (p *Provider) Name() string { return bot.OnCallPagerDuty }

// call runs one SDK call (retried once after a 429 when the wait fits) and words its failure.
func (p *Provider) call(ctx context.Context, doing, missing string, f func(ctx context.Context) error) error {
	a, err := apicall.Once(ctx, p.log, "PagerDuty", f)
	if err == nil {
		return nil
	}
	var ae pagerduty.APIError
	detail := ""
	if errors.As(err, &ae) {
		if a.Status == 0 {
			a.Status = ae.StatusCode
		}
		if ae.APIError.Valid {
			detail = ae.APIError.ErrorObject.Message
		}
	}
	return p.svc.Failure(ctx, doing, missing, a, detail, err)
}

// OnCall answers whether q.Person is on call for q.Source at q.At.
func (p *Provider) OnCall(ctx context.Context, q bot.OnCallQuery) (bot.OnCallAnswer, error) {
	at := q.At
	if at.IsZero() {
		at = p.clock.Now()
	}
	src := q.Source
	if q.RequireIncident && len(src.Services) == 0 {
		return bot.OnCallAnswer{Why: "require_incident needs a PagerDuty service"}, nil
	}
	services, err := p.services(ctx, src.Services)
	if err != nil {
		return bot.OnCallAnswer{}, err
	}
	var incident string
	if q.RequireIncident {
		inc, err := p.openIncident(ctx, src.Services)
		if err != nil {
			return bot.OnCallAnswer{}, err
		}
		if inc == nil {
			names := make([]string, len(services))
			for i, s := range services {
				names[i] = s.rota
			}
			return bot.OnCallAnswer{Why: "no triggered or acknowledged incident on " + strings.Join(names, " or ")}, nil
		}
		incident = fmt.Sprintf("incident #%d \"%s\"", inc.IncidentNumber, inc.Title)
	}
	user, who, err := p.user(ctx, q.Person)
	if err != nil {
		return bot.OnCallAnswer{}, err
	}
	if user == nil {
		if who == "" {
			return bot.OnCallAnswer{Why: "the requester has no e-mail address to look up in PagerDuty"}, nil
		}
		return bot.OnCallAnswer{Why: "no PagerDuty user has the e-mail address " + who}, nil
	}
	var rotas []string
	for _, id := range src.Schedules {
		name, err := p.scheduleName(ctx, id, at)
		if err != nil {
			return bot.OnCallAnswer{}, err
		}
		rota := rotaName("schedule", name, id)
		entries, err := p.onCalls(ctx, "listing who is on call for "+rota,
			pagerduty.ListOnCallOptions{ScheduleIDs: []string{id}, UserIDs: []string{user.ID}}, at)
		if err != nil {
			return bot.OnCallAnswer{}, err
		}
		if len(covering(entries, at)) > 0 {
			return bot.OnCallAnswer{OnCall: true, Via: rota, Incident: incident}, nil
		}
		rotas = append(rotas, rota)
	}
	for _, s := range services {
		entries, err := p.onCalls(ctx, "listing who is on call for "+s.rota,
			pagerduty.ListOnCallOptions{EscalationPolicyIDs: []string{s.policy}, UserIDs: []string{user.ID}}, at)
		if err != nil {
			return bot.OnCallAnswer{}, err
		}
		if len(covering(entries, at)) > 0 {
			return bot.OnCallAnswer{OnCall: true, Via: s.rota, Incident: incident}, nil
		}
		rotas = append(rotas, s.rota)
	}
	if len(rotas) == 0 {
		return bot.OnCallAnswer{Why: "the PagerDuty on-call source names no schedule or service"}, nil
	}
	return bot.OnCallAnswer{Why: "not on call for " + strings.Join(rotas, " or ")}, nil
}

// Now lists who is on call now for each schedule and service of src, with the end of the
// current shift (the earliest end among the shifts that make up the answer).
func (p *Provider) Now(ctx context.Context, src bot.OnCallSource) ([]bot.OnCallShift, error) {
	now := p.clock.Now()
	var out []bot.OnCallShift
	for _, id := range src.Schedules {
		name, err := p.scheduleName(ctx, id, now)
		if err != nil {
			return nil, err
		}
		rota := rotaName("schedule", name, id)
		entries, err := p.onCalls(ctx, "listing who is on call for "+rota,
			pagerduty.ListOnCallOptions{ScheduleIDs: []string{id}, Includes: []string{"users"}}, now)
		if err != nil {
			return nil, err
		}
		out = append(out, shift(rota+" ("+id+")", covering(entries, now)))
	}
	services, err := p.services(ctx, src.Services)
	if err != nil {
		return nil, err
	}
	for _, s := range services {
		entries, err := p.onCalls(ctx, "listing who is on call for "+s.rota,
			pagerduty.ListOnCallOptions{EscalationPolicyIDs: []string{s.policy}, Includes: []string{"users"}}, now)
		if err != nil {
			return nil, err
		}
		out = append(out, shift(s.rota+" ("+s.id+")", covering(entries, now)))
	}
	return out, nil
}

// service is a PagerDuty service of a source, with the escalation policy it pages.
type service struct {
	id, rota, policy string
}

func (p *Provider) services(ctx context.Context, ids []string) ([]service, error) {
	out := make([]service, 0, len(ids))
	for _, id := range ids {
		var s *pagerduty.Service
		err := p.call(ctx, "looking up service "+id, "PagerDuty service "+id, func(ctx context.Context) error {
			var err error
			s, err = p.api.GetServiceWithContext(ctx, url.PathEscape(id), nil)
			return err
		})
		if err != nil {
			return nil, err
		}
		if s.EscalationPolicy.ID == "" {
			return nil, fmt.Errorf("PagerDuty service %s has no escalation policy, so nobody is on call for it; name a schedule instead", id)
		}
		out = append(out, service{id: id, rota: rotaName("service", s.Name, id), policy: s.EscalationPolicy.ID})
	}
	return out, nil
}

// scheduleName looks the schedule up (a 404 means it does not exist) for its name.
func (p *Provider) scheduleName(ctx context.Context, id string, at time.Time) (string, error) {
	var s *pagerduty.Schedule
	err := p.call(ctx, "looking up schedule "+id, "PagerDuty schedule "+id, func(ctx context.Context) error {
		var err error
		// A short since/until keeps the rendered schedule small.
		s, err = p.api.GetScheduleWithContext(ctx, url.PathEscape(id), pagerduty.GetScheduleOptions{
			Since: at.UTC().Format(time.RFC3339), Until: at.Add(window).UTC().Format(time.RFC3339)})
		return err
	})
	if err != nil {
		return "", err
	}
	if s.Name != "" {
		return s.Name, nil
	}
	return s.Summary, nil
}

// onCalls lists the on-call entries of o that overlap [at, at+window], every page.
func (p *Provider) onCalls(ctx context.Context, doing string, o pagerduty.ListOnCallOptions, at time.Time) ([]pagerduty.OnCall, error) {
	o.Since, o.Until = at.UTC().Format(time.RFC3339), at.Add(window).UTC().Format(time.RFC3339)
	o.Limit = pageSize
	var all []pagerduty.OnCall
	for range maxPages {
		var resp *pagerduty.ListOnCallsResponse
		err := p.call(ctx, doing, "", func(ctx context.Context) error {
			var err error
			resp, err = p.api.ListOnCallsWithContext(ctx, o)
			return err
		})
		if err != nil {
			return nil, err
		}
		all = append(all, resp.OnCalls...)
		if !resp.More || len(resp.OnCalls) == 0 {
			break
		}
		o.Offset += uint(len(resp.OnCalls))
	}
	return all, nil
}

// user finds the PagerDuty user of a person: by e-mail, then by UPN (case-insensitive). It
// returns nil when neither matches; who is the address looked up last.
func (p *Provider) user(ctx context.Context, person bot.User) (u *pagerduty.User, who string, err error) {
	var tried []string
	for _, addr := range []string{person.Email, person.UPN} {
		addr = strings.TrimSpace(addr)
		if addr == "" || containsFold(tried, addr) {
			continue
		}
		tried = append(tried, addr)
		u, err := p.userByEmail(ctx, addr)
		if err != nil || u != nil {
			return u, addr, err
		}
	}
	return nil, strings.Join(tried, " or "), nil
}

func (p *Provider) userByEmail(ctx context.Context, email string) (*pagerduty.User, error) {
	o := pagerduty.ListUsersOptions{Query: email, Limit: pageSize}
	for range maxPages {
		var resp *pagerduty.ListUsersResponse
		err := p.call(ctx, "looking up the PagerDuty user "+email, "", func(ctx context.Context) error {
			var err error
			resp, err = p.api.ListUsersWithContext(ctx, o)
			return err
		})
		if err != nil {
			return nil, err
		}
		// The query also matches names and parts of addresses: only an equal address counts.
		for i := range resp.Users {
			if strings.EqualFold(resp.Users[i].Email, email) {
				return &resp.Users[i], nil
			}
		}
		if !resp.More || len(resp.Users) == 0 {
			break
		}
		o.Offset += uint(len(resp.Users))
	}
	return nil, nil
}

// openIncident returns a triggered or acknowledged incident of the services, or nil.
func (p *Provider) openIncident(ctx context.Context, serviceIDs []string) (*pagerduty.Incident, error) {
	var resp *pagerduty.ListIncidentsResponse
	err := p.call(ctx, "listing the open incidents of services "+strings.Join(serviceIDs, ", "), "", func(ctx context.Context) error {
		var err error
		// date_range=all: an incident open for longer than the default month still counts.
		resp, err = p.api.ListIncidentsWithContext(ctx, pagerduty.ListIncidentsOptions{
			ServiceIDs: serviceIDs, Statuses: []string{"triggered", "acknowledged"}, DateRange: "all", Limit: 1})
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range resp.Incidents {
		if s := resp.Incidents[i].Status; s == "triggered" || s == "acknowledged" {
			return &resp.Incidents[i], nil
		}
	}
	return nil, nil
}

// covering keeps the entries that are on call at t. PagerDuty leaves start or end empty for
// an on-call without a beginning or an end (a user named directly in an escalation rule).
func covering(entries []pagerduty.OnCall, t time.Time) []pagerduty.OnCall {
	var out []pagerduty.OnCall
	for _, e := range entries {
		if start, ok := parseTime(e.Start); ok && t.Before(start) {
			continue
		}
		if end, ok := parseTime(e.End); ok && !t.Before(end) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// shift is one rota's people on call now, until the earliest end among their shifts.
func shift(rota string, entries []pagerduty.OnCall) bot.OnCallShift {
	s := bot.OnCallShift{Rota: rota}
	for _, e := range entries {
		who := e.User.Email
		if who == "" {
			who = e.User.Summary // no e-mail came back: the name is still better than nothing
		}
		if who != "" && !containsFold(s.People, who) {
			s.People = append(s.People, who)
		}
		if end, ok := parseTime(e.End); ok && (s.Until.IsZero() || end.Before(s.Until)) {
			s.Until = end
		}
	}
	return s
}

func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// rotaName words a schedule or service for people: `PagerDuty schedule "DB primary"`.
func rotaName(kind, name, id string) string {
	if name == "" {
		name = id
	}
	return "PagerDuty " + kind + ` "` + name + `"`
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
