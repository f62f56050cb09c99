// Package opsgenie answers "is this person on call?" from Opsgenie's Who is On Call API
// (through github.com/opsgenie/opsgenie-go-sdk-v2): a person is on call when their e-mail
// address (an Opsgenie username) is among the on-call participants of a schedule of the
// source at that moment. Schedules are named by name, or by id (a UUID).
//
// The SDK is used with its own retries turned off: it sleeps between them without looking at
// the context (go-retryablehttp v0.5.1), and the engine gives an on-call check a few seconds.
// Instead, a 429 is retried once when the wait it asks for fits the deadline, as for PagerDuty.
package opsgenie

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/opsgenie/opsgenie-go-sdk-v2/client"
	"github.com/opsgenie/opsgenie-go-sdk-v2/schedule"
	"github.com/sirupsen/logrus"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/oncall/internal/apicall"
)

// Regions (OPSGENIE_REGION).
const (
	RegionUS = "us" // api.opsgenie.com (also the default)
	RegionEU = "eu" // api.eu.opsgenie.com
)

// timelineSpan is how far ahead Now looks for the end of the current shift; a shift that
// outlasts it is reported without an end.
const timelineSpan = 2 // weeks

// Options configure the provider.
type Options struct {
	APIKey string // the key of an Opsgenie API integration (OPSGENIE_API_KEY)
	Region string // "" or "us": api.opsgenie.com; "eu": api.eu.opsgenie.com (OPSGENIE_REGION)
	// BaseURL replaces the region's API (OPSGENIE_URL; tests: an httptest URL), scheme included.
	BaseURL    string
	HTTPClient *http.Client // nil: a client with a 10 s timeout
	Logger     *slog.Logger // nil: no logs
	Clock      bot.Clock    // what "now" is for Now and for a query without At; nil: the wall clock
}

// Provider is the Opsgenie on-call provider. It is safe for concurrent use.
type Provider struct {
	api   *schedule.Client
	svc   apicall.Service
	log   *slog.Logger
	clock bot.Clock
}

var _ bot.OnCallProvider = (*Provider)(nil)

// New checks the options and builds the provider. It makes no call to Opsgenie (Now does).
//
// The SDK writes a package variable (its User-Agent) each time a client is built, so build
// providers before using any of them concurrently (at start-up, as pimbot does).
func New(o Options) (*Provider, error) {
	if strings.TrimSpace(o.APIKey) == "" {
		return nil, errors.New("opsgenie: no API key; set OPSGENIE_API_KEY to the key of an Opsgenie API integration")
	}
	var host client.ApiUrl
	switch strings.ToLower(strings.TrimSpace(o.Region)) {
	case "", RegionUS:
		host = client.API_URL
	case RegionEU:
		host = client.API_URL_EU
	default:
		return nil, fmt.Errorf("opsgenie: unknown region %q; set OPSGENIE_REGION to us or eu", o.Region)
	}
	var base *url.URL
	if s := strings.TrimSpace(o.BaseURL); s != "" {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("opsgenie: the API URL %q is not an http(s) URL; set OPSGENIE_URL like https://api.opsgenie.com, or leave it unset", s)
		}
		base = u
		host = client.ApiUrl(u.Host) // what the SDK logs and puts in its errors; rebase does the rest
	}
	p := &Provider{
		svc: apicall.Service{Name: "Opsgenie", Secret: o.APIKey,
			Refused: "Opsgenie refused the API key (OPSGENIE_API_KEY)",
			Fix:     "set OPSGENIE_API_KEY to the key of an enabled API integration"},
		log: o.Logger, clock: o.Clock,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.clock == nil {
		p.clock = bot.SystemClock{}
	}
	hc := apicall.Client(o.HTTPClient, func(next http.RoundTripper) http.RoundTripper {
		var rt http.RoundTripper = &apicall.Transport{Base: next, RequestIDHeader: "X-Request-Id", Wait: throttledFor}
		if base != nil {
			rt = &rebase{to: base, next: rt}
		}
		return rt
	})
	// The SDK logs through logrus, to stderr unless given a logger; pimbot logs for itself.
	silent := logrus.New()
	silent.SetOutput(io.Discard)
	cfg := &client.Config{ApiKey: o.APIKey, OpsGenieAPIURL: host, HttpClient: hc, Logger: silent,
		RetryPolicy: func(context.Context, *http.Response, error) (bool, error) { return false, nil }}
	api, err := schedule.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("opsgenie: %s", p.svc.Redact(err.Error()))
	}
	p.api = api
	return p, nil
}

// throttledFor reads Opsgenie's own rate-limit headers (X-RateLimit-State: THROTTLED and
// X-RateLimit-Period-In-Sec, "time of throttle in seconds": github.com/opsgenie/opsgenie-oas,
// responses/common.yaml) when a 429 has no Retry-After.
func throttledFor(h http.Header) (time.Duration, bool) {
	if !strings.EqualFold(h.Get("X-RateLimit-State"), "THROTTLED") {
		return 0, false
	}
	return apicall.Seconds(h, "X-RateLimit-Period-In-Sec")
}

// rebase sends the SDK's requests to BaseURL. The SDK only takes a host name, and picks the
// scheme itself: https when the host contains "api", else http (client.buildRequestUrl), so a
// proxy like https://opsgenie.internal would get the key in clear. Here the scheme, host and
// path prefix are BaseURL's, whatever the SDK chose.
type rebase struct {
	to   *url.URL
	next http.RoundTripper
}

func (r *rebase) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	prefix := strings.TrimRight(r.to.Path, "/")
	out.URL.Scheme, out.URL.Host, out.Host = r.to.Scheme, r.to.Host, ""
	out.URL.Path = prefix + req.URL.Path
	if req.URL.RawPath != "" {
		out.URL.RawPath = strings.TrimRight(r.to.EscapedPath(), "/") + req.URL.RawPath
	}
	return r.next.RoundTrip(out)
}

// Name is bot.OnCallOpsgenie.
func (p *Provider) Name() string { return bot.OnCallOpsgenie }

// call runs one SDK call (retried once after a 429 when the wait fits) and words its failure.
func (p *Provider) call(ctx context.Context, doing, missing string, f func(ctx context.Context) error) error {
	a, err := apicall.Once(ctx, p.log, "Opsgenie", f)
	if err == nil {
		return nil
	}
	var ae *client.ApiError
	detail := ""
	if errors.As(err, &ae) {
		if a.Status == 0 {
			a.Status = ae.StatusCode
		}
		if a.RequestID == "" {
			a.RequestID = ae.RequestId
		}
		detail = ae.Message
	}
	return p.svc.Failure(ctx, doing, missing, a, detail, err)
}

// OnCall answers whether q.Person is on call for q.Source at q.At.
func (p *Provider) OnCall(ctx context.Context, q bot.OnCallQuery) (bot.OnCallAnswer, error) {
	if q.RequireIncident {
		// Incidents are PagerDuty's here: an Opsgenie source has no service to look at.
		return bot.OnCallAnswer{Why: "require_incident needs a PagerDuty service"}, nil
	}
	at := q.At
	if at.IsZero() {
		at = p.clock.Now()
	}
	var addrs []string
	for _, a := range []string{q.Person.Email, q.Person.UPN} {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return bot.OnCallAnswer{Why: "the requester has no e-mail address to look up in Opsgenie"}, nil
	}
	var rotas []string
	for _, ident := range q.Source.Schedules {
		oc, err := p.onCalls(ctx, ident, at)
		if err != nil {
			return bot.OnCallAnswer{}, err
		}
		rota := rotaName(oc.Parent.Name, ident)
		for _, r := range oc.OnCallRecipients {
			for _, a := range addrs {
				if strings.EqualFold(strings.TrimSpace(r), a) {
					return bot.OnCallAnswer{OnCall: true, Via: rota}, nil
				}
			}
		}
		rotas = append(rotas, rota)
	}
	if len(rotas) == 0 {
		return bot.OnCallAnswer{Why: "the Opsgenie on-call source names no schedule"}, nil
	}
	return bot.OnCallAnswer{Why: "not on call for " + strings.Join(rotas, " or ")}, nil
}

// Now lists who is on call now for each schedule of src, with the end of the current shift
// from the schedule's timeline (none when it lasts beyond the next two weeks).
func (p *Provider) Now(ctx context.Context, src bot.OnCallSource) ([]bot.OnCallShift, error) {
	now := p.clock.Now()
	var out []bot.OnCallShift
	for _, ident := range src.Schedules {
		oc, err := p.onCalls(ctx, ident, now)
		if err != nil {
			return nil, err
		}
		id := oc.Parent.Id
		if id == "" {
			id = ident
		}
		s := bot.OnCallShift{Rota: rotaName(oc.Parent.Name, ident) + " (" + id + ")"}
		for _, r := range oc.OnCallRecipients {
			if r = strings.TrimSpace(r); r != "" {
				s.People = append(s.People, r)
			}
		}
		if s.Until, err = p.shiftEnd(ctx, ident, now); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// onCalls asks who is on call for a schedule at a moment, flat: the participants' usernames
// (e-mail addresses), with teams and escalations resolved to their people.
func (p *Provider) onCalls(ctx context.Context, ident string, at time.Time) (*schedule.GetOnCallsResult, error) {
	ident = strings.TrimSpace(ident)
	if ident == "" {
		return nil, errors.New("an Opsgenie schedule in auto_approve.on_call is empty; name a schedule (or its id)")
	}
	typ, flat := identifierType(ident), true
	// The SDK writes the date as UTC ("…Z") whatever its location: give it UTC.
	date := at.UTC()
	var res *schedule.GetOnCallsResult
	err := p.call(ctx, "asking who is on call for "+rotaName("", ident), rotaName("", ident), func(ctx context.Context) error {
		var err error
		res, err = p.api.GetOnCalls(ctx, &schedule.GetOnCallsRequest{ScheduleIdentifier: ident, ScheduleIdentifierType: typ,
			Flat: &flat, Date: &date})
		return err
	})
	return res, err
}

// shiftEnd is the earliest end of the final timeline's periods that cover now: the moment
// the people on call change. Zero when no period says (or the shift outlasts the timeline).
func (p *Provider) shiftEnd(ctx context.Context, ident string, now time.Time) (time.Time, error) {
	date := now.UTC()
	var res *schedule.TimelineResult
	err := p.call(ctx, "reading the timeline of "+rotaName("", ident), rotaName("", ident), func(ctx context.Context) error {
		var err error
		res, err = p.api.GetTimeline(ctx, &schedule.GetTimelineRequest{IdentifierType: identifierType(ident),
			IdentifierValue: ident, Interval: timelineSpan, IntervalUnit: schedule.Weeks, Date: &date})
		return err
	})
	if err != nil {
		return time.Time{}, err
	}
	var end time.Time
	for _, r := range res.FinalTimeline.Rotations {
		for _, pd := range r.Periods {
			if pd.StartDate.After(now) || !pd.EndDate.After(now) {
				continue
			}
			if end.IsZero() || pd.EndDate.Before(end) {
				end = pd.EndDate
			}
		}
	}
	if !res.EndDate.IsZero() && !end.Before(res.EndDate) {
		return time.Time{}, nil // cut by the timeline's end: the shift goes on beyond it
	}
	return end, nil
}

var uuidShape = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// identifierType: a UUID-shaped schedule is an id, anything else a name.
func identifierType(ident string) schedule.Identifier {
	if uuidShape.MatchString(ident) {
		return schedule.Id
	}
	return schedule.Name
}

// rotaName words a schedule for people: `Opsgenie schedule "DB primary"`.
func rotaName(name, ident string) string {
	if name == "" {
		name = ident
	}
	return `Opsgenie schedule "` + name + `"`
}
