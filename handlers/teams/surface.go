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

// DefaultServiceURL is the Bot Connector endpoint used for a channel before any activity
// told the bot its own (Microsoft's global endpoint for proactive messages).
const DefaultServiceURL = "https://smba.trafficmanager.net/teams/"

// Handler limits.
const (
	MaxBody        = 256 << 10        // an activity larger than this is answered 413
	handlerTimeout = 10 * time.Second // one activity, engine and reply included
)

// Config wires a Surface.
type Config struct {
	Engine            *bot.Engine
	KV                bot.KV
	Validator         *Validator
	Connector         *Connector
	TenantID          string // when set, activities from other tenants are refused
	DefaultServiceURL string // default DefaultServiceURL
	Logger            *slog.Logger
	MaxBody           int64 // default MaxBody
}

// Surface is the Teams surface: the POST /api/messages handler and the bot.Notifier.
type Surface struct {
	eng               *bot.Engine
	kv                bot.KV
	v                 *Validator
	conn              *Connector
	tenant            string
	defaultServiceURL string
	log               *slog.Logger
	maxBody           int64
	zones             sync.Map // IANA name -> *time.Location
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
		defaultServiceURL: c.DefaultServiceURL, log: c.Logger, maxBody: c.MaxBody}
	if s.defaultServiceURL == "" {
		s.defaultServiceURL = DefaultServiceURL
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody <= 0 {
		s.maxBody = MaxBody
	}
	s.log = s.log.With("surface", Name)
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
	return st, true, nil
}

// String never prints the password.
func (st Settings) String() string {
	tenant := st.TenantID
	if tenant == "" {
		tenant = "(multi-tenant: botframework.com)"
	}
	return fmt.Sprintf("app %s, tenant %s, token %s, metadata %s", st.AppID, tenant, redactURL(st.TokenURL), redactURL(st.MetadataURL))
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
	return New(Config{Engine: eng, KV: kv, Validator: v, Connector: c, TenantID: st.TenantID, Logger: log})
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
