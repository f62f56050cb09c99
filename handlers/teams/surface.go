// Package teams is the Microsoft Teams surface: people talk to the bot in a personal chat (or
// mention it in a channel), fill an Adaptive Card form, and approvers decide on cards in a
// Teams channel; every Bot Framework request's token is checked before anything is read.
//
// It uses msbotbuilder-go v0.2.5 for the Bot Framework schema and interfaces, and replaces
// the parts of it that are wrong for a single-tenant bot (see auth.go and connector.go).
package teams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// Name is the surface's name in requests (Request.Surface) and approval channels.
const Name = "teams"

// The Bot Connector endpoints of Teams' clouds, for proactive posts into a channel the bot
// has not heard from yet; the serviceUrl an activity in that channel brought is always
// preferred.
// Source: Microsoft 365 Agents SDK, TeamsProactiveServiceEndpoints
// (https://learn.microsoft.com/en-us/dotnet/api/microsoft.agents.extensions.msteams.teamsproactiveserviceendpoints)
// and Agents-for-js TeamsServiceEndpoints
// (https://microsoft.github.io/Agents-for-js/variables/_microsoft_agents-hosting.TeamsServiceEndpoints.html):
// "Use only when the incoming serviceUrl from a real conversation is unavailable."
const (
	ServiceURLCommercial = "https://smba.trafficmanager.net/teams/"
	ServiceURLGCC        = "https://smba.infra.gcc.teams.microsoft.com/teams/"
	ServiceURLGCCHigh    = "https://smba.infra.gov.teams.microsoft.us/teams/"
	ServiceURLDoD        = "https://smba.infra.dod.teams.microsoft.us/teams/"
)

// EnvServiceURL names the setting of Config.ServiceURL (read by SettingsFromEnv).
const EnvServiceURL = "MICROSOFT_APP_SERVICE_URL"

// Handler limits.
const (
	MaxBody        = 256 << 10        // an activity larger than this is answered 413
	handlerTimeout = 10 * time.Second // one activity, engine and reply included
)

// Config wires a Surface.
type Config struct {
	Engine    *bot.Engine
	KV        bot.KV
	Validator *Validator
	Connector *Connector
	// TenantID pins the surface to one tenant: an activity that names no tenant, or another,
	// is refused. Empty serves every tenant (a warning is logged at start).
	TenantID string
	// ServiceURL is the Bot Connector endpoint for posts into a channel the bot has not heard
	// from yet (MICROSOFT_APP_SERVICE_URL): ServiceURLCommercial, ServiceURLGCC,
	// ServiceURLGCCHigh or ServiceURLDoD, after the tenant's cloud. A channel the bot has
	// heard from is posted to through its own serviceUrl. Empty: the latest serviceUrl an
	// activity brought is used, and without one the post fails with ErrNoServiceURL (logged,
	// naming the setting); nothing is ever sent to a host the operator did not set.
	ServiceURL string
	Logger     *slog.Logger
	MaxBody    int64 // default MaxBody
}

// Surface is the Teams surface: the POST /api/messages handler and the bot.Notifier.
type Surface struct {
	eng        *bot.Engine
	kv         bot.KV
	v          *Validator
	conn       *Connector
	tenant     string
	serviceURL string // Config.ServiceURL, checked
	log        *slog.Logger
	maxBody    int64
	zones      sync.Map // IANA name -> *time.Location
}

var (
	_ bot.Notifier = (*Surface)(nil)
	_ http.Handler = (*Surface)(nil)
)

// New builds the surface.
func New(c Config) (*Surface, error) {
	if c.Engine == nil || c.KV == nil || c.Validator == nil || c.Connector == nil {
		return nil, errors.New("teams: engine, KV, validator and connector are required")
	}
	s := &Surface{eng: c.Engine, kv: c.KV, v: c.Validator, conn: c.Connector, tenant: strings.TrimSpace(c.TenantID),
		serviceURL: strings.TrimSpace(c.ServiceURL), log: c.Logger, maxBody: c.MaxBody}
	if s.serviceURL != "" {
		if _, err := serviceBase(s.serviceURL); err != nil {
			return nil, fmt.Errorf("teams: %s: %w", EnvServiceURL, err)
		}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody <= 0 {
		s.maxBody = MaxBody
	}
	s.log = s.log.With("surface", Name)
	if s.tenant == "" {
		s.log.Warn("no tenant configured (MICROSOFT_APP_TENANT_ID): Teams activities are not pinned to a tenant; those of any tenant are served")
	}
	return s, nil
}

// Name is the notifier's name.
func (s *Surface) Name() string { return Name }

// Settings are the Teams surface's environment.
type Settings struct {
	AppID       string // MICROSOFT_APP_ID
	Password    string // MICROSOFT_APP_PASSWORD
	TenantID    string // MICROSOFT_APP_TENANT_ID: single-tenant token endpoint, and only this tenant served
	MetadataURL string // BOTFRAMEWORK_OPENID_METADATA_URL
	TokenURL    string // BOTFRAMEWORK_TOKEN_URL
	ServiceURL  string // MICROSOFT_APP_SERVICE_URL: see Config.ServiceURL (empty: none)
	// HTTP is the client for the metadata, token and connector calls (nil: one with a timeout).
	HTTP *http.Client
}

// SettingsFromEnv reads the Teams variables; ok=false when MICROSOFT_APP_ID is not set.
func SettingsFromEnv(getenv func(string) string) (st Settings, ok bool, err error) {
	st = Settings{
		AppID: strings.TrimSpace(getenv("MICROSOFT_APP_ID")), Password: getenv("MICROSOFT_APP_PASSWORD"),
		TenantID:    strings.TrimSpace(getenv("MICROSOFT_APP_TENANT_ID")),
		MetadataURL: strings.TrimSpace(getenv("BOTFRAMEWORK_OPENID_METADATA_URL")),
		TokenURL:    strings.TrimSpace(getenv("BOTFRAMEWORK_TOKEN_URL")),
		ServiceURL:  strings.TrimSpace(getenv(EnvServiceURL)),
	}
	if st.AppID == "" {
		return st, false, nil
	}
	if st.Password == "" {
		return st, true, errors.New("MICROSOFT_APP_ID is set but MICROSOFT_APP_PASSWORD is not")
	}
	if st.MetadataURL == "" {
		st.MetadataURL = DefaultOpenIDMetadataURL
	}
	if st.TokenURL == "" {
		st.TokenURL = LoginTokenURL(st.TenantID)
	}
	for name, v := range map[string]string{"BOTFRAMEWORK_OPENID_METADATA_URL": st.MetadataURL, "BOTFRAMEWORK_TOKEN_URL": st.TokenURL} {
		if u, err := url.Parse(v); err != nil || u.Host == "" || !allowedURL(u) {
			return st, true, fmt.Errorf("%s=%q: want an https URL", name, v)
		}
	}
	if st.ServiceURL != "" {
		if _, err := serviceBase(st.ServiceURL); err != nil {
			return st, true, fmt.Errorf("%s=%q: want an https URL such as %s", EnvServiceURL, st.ServiceURL, ServiceURLCommercial)
		}
	}
	return st, true, nil
}

// String never prints the password.
func (st Settings) String() string {
	tenant := st.TenantID
	if tenant == "" {
		tenant = "(multi-tenant: botframework.com)"
	}
	svc := redactURL(st.ServiceURL)
	if st.ServiceURL == "" {
		svc = "(not set: only serviceUrls from activities)"
	}
	return fmt.Sprintf("app %s, tenant %s, token %s, metadata %s, service %s", st.AppID, tenant, redactURL(st.TokenURL), redactURL(st.MetadataURL), svc)
}

// Build makes the validator, the connector client and the surface from settings.
func (st Settings) Build(eng *bot.Engine, kv bot.KV, log *slog.Logger) (*Surface, error) {
	v, err := NewValidator(ValidatorConfig{AppID: st.AppID, MetadataURL: st.MetadataURL, HTTP: st.HTTP})
	if err != nil {
		return nil, err
	}
	c, err := NewConnector(ConnectorConfig{AppID: st.AppID, Password: st.Password, TokenURL: st.TokenURL, HTTP: st.HTTP})
	if err != nil {
		return nil, err
	}
	return New(Config{Engine: eng, KV: kv, Validator: v, Connector: c, TenantID: st.TenantID, ServiceURL: st.ServiceURL, Logger: log})
}

// Validator is the surface's token validator (for `pimbot check`).
func (s *Surface) Validator() *Validator { return s.v }

// Connector is the surface's connector client (for `pimbot check`).
func (s *Surface) Connector() *Connector { return s.conn }

// zone loads an IANA time zone name once; the policy's zone when it is unknown.
func (s *Surface) zone(name string) *time.Location {
	def := s.eng.Policy().Settings.Timezone
	if name == "" || len(name) > 64 {
		return def
	}
	if l, ok := s.zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = def
	}
	s.zones.Store(name, l)
	return l
}

func (s *Surface) view(zone string) View { return View{Now: s.eng.Now(), Loc: s.zone(zone)} }

// bounded gives work triggered by one activity its own deadline.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, handlerTimeout)
}
