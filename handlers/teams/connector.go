package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infracloudio/msbotbuilder-go/connector/client"
	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/pimbot/pimbot/bot"
)

// The connector client replaces msbotbuilder-go's client.ConnectorClient, which panics when
// the token endpoint is unreachable, races on its token cache, has no timeouts, drops the id
// of what it posts and cannot create a conversation. It implements the library's
// client.Client too, so it can stand behind a core.BotFrameworkAdapter.

// Connector defaults.
const (
	BotFrameworkScope    = "https://api.botframework.com/.default"
	connectorTimeout     = 15 * time.Second // one HTTP exchange with the token endpoint or the connector
	tokenRefreshEarly    = 5 * time.Minute  // a cached token is renewed this long before it expires
	maxConnectorResponse = 1 << 20
)

// LoginTokenURL is the token endpoint of a tenant (single-tenant bots), or of the legacy
// multi-tenant "botframework.com" tenant when tenant is empty.
func LoginTokenURL(tenant string) string {
	if tenant == "" {
		tenant = "botframework.com"
	}
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// ConnectorConfig configures the connector client.
type ConnectorConfig struct {
	AppID    string
	Password string
	TokenURL string       // e.g. LoginTokenURL(tenant) or BOTFRAMEWORK_TOKEN_URL
	HTTP     *http.Client // default: connectorTimeout
}

// Connector talks to the Bot Connector service with a cached client-credentials token.
type Connector struct {
	cfg  ConnectorConfig
	http *http.Client

	mu      sync.Mutex // guards token and expires
	token   string
	expires time.Time
	fetch   sync.Mutex // one token request at a time
}

var _ client.Client = (*Connector)(nil)

// NewConnector builds a connector client.
func NewConnector(cfg ConnectorConfig) (*Connector, error) {
	if cfg.AppID == "" || cfg.Password == "" {
		return nil, errors.New("the Bot Framework app id and password are required (MICROSOFT_APP_ID, MICROSOFT_APP_PASSWORD)")
	}
	u, err := url.Parse(cfg.TokenURL)
	if err != nil || u.Host == "" || !allowedURL(u) {
		return nil, fmt.Errorf("token URL %q: want an https URL", cfg.TokenURL)
	}
	c := &Connector{cfg: cfg, http: cfg.HTTP}
	if c.http == nil {
		c.http = &http.Client{Timeout: connectorTimeout}
	}
	return c, nil
}

// ConnectorError is an error answer of the connector or the token endpoint.
type ConnectorError struct {
	Op         string
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

// RetryDelay is the connector's Retry-After (429, 503), for bot.RetryAfter; 0 when it
// gave none.
func (e *ConnectorError) RetryDelay() time.Duration { return max(e.RetryAfter, 0) }

// Is makes a refusal that retrying cannot change match bot.ErrUndeliverable: the activity
// to update does not exist (404), the bot may not post there (403: removed from the team,
// blocked by the user), the message is refused as it is (400, 413). A conversation not
// found is not final: the bot is often added to the approval channel's team after the
// first request, and the retries then deliver. Token errors, throttling (429) and outages
// (5xx) are transient.
func (e *ConnectorError) Is(target error) bool {
	if target != bot.ErrUndeliverable || e.Op == "token" {
		return false
	}
	switch e.Status {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
		return true
	case http.StatusNotFound:
		return e.Code != "ConversationNotFound"
	}
	return false
}

func (e *ConnectorError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Token returns a bearer token for the connector, from the cache while it is fresh.
func (c *Connector) Token(ctx context.Context) (string, error) {
	if t, ok := c.cached(); ok {
		return t, nil
	}
	c.fetch.Lock()
	defer c.fetch.Unlock()
	if t, ok := c.cached(); ok { // fetched while we waited
		return t, nil
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.cfg.AppID},
		"client_secret": {c.cfg.Password},
		"scope":         {BotFrameworkScope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("token endpoint %s: %w", redactURL(c.cfg.TokenURL), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConnectorResponse))
	if err != nil {
		return "", fmt.Errorf("token endpoint: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		desc, _, _ := strings.Cut(e.Description, "\r\n") // AAD adds trace and correlation ids on the next lines
		return "", &ConnectorError{Op: "token", Status: resp.StatusCode, Code: e.Error, Message: truncateRunes(desc, 300)}
	}
	var a schema.AuthResponse
	if err := json.Unmarshal(body, &a); err != nil || a.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: no access_token in the answer")
	}
	life := time.Duration(a.ExpireTime) * time.Second
	if life <= 0 {
		life = time.Hour
	}
	c.mu.Lock()
	c.token, c.expires = a.AccessToken, time.Now().Add(life)
	c.mu.Unlock()
	return a.AccessToken, nil
}

func (c *Connector) cached() (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Until(c.expires) > tokenRefreshEarly {
		return c.token, true
	}
	return "", false
}

func (c *Connector) dropToken(t string) {
	c.mu.Lock()
	if c.token == t {
		c.token = ""
	}
	c.mu.Unlock()
}

// Message is an outgoing activity (only the fields the bot sends, so no zero timestamps or
// empty objects go out as msbotbuilder-go's schema.Activity would send them).
type Message struct {
	Type        string              `json:"type"`
	ID          string              `json:"id,omitempty"`
	Text        string              `json:"text,omitempty"`
	TextFormat  string              `json:"textFormat,omitempty"`
	Summary     string              `json:"summary,omitempty"`
	ReplyToID   string              `json:"replyToId,omitempty"`
	Attachments []schema.Attachment `json:"attachments,omitempty"`
}

// CardMessage is a message carrying one Adaptive Card; summary is the plain-text preview.
func CardMessage(card Card, summary string) *Message {
	return &Message{Type: string(schema.Message), Summary: summary,
		Attachments: []schema.Attachment{{ContentType: ContentTypeCard, Content: card}}}
}

// Send posts a message to a conversation and returns the id of the new activity.
func (c *Connector) Send(ctx context.Context, serviceURL, conversationID string, m *Message) (string, error) {
	u, err := conversationURL(serviceURL, conversationID, "activities")
	if err != nil {
		return "", err
	}
	var rr schema.ResourceResponse
	if err := c.do(ctx, "send activity", http.MethodPost, u, m, &rr); err != nil {
		return "", err
	}
	return rr.ID, nil
}

// Update replaces an activity the bot posted (PUT), e.g. the approvers' card.
func (c *Connector) Update(ctx context.Context, serviceURL, conversationID, activityID string, m *Message) error {
	u, err := conversationURL(serviceURL, conversationID, "activities", activityID)
	if err != nil {
		return err
	}
	mm := *m
	mm.ID = activityID
	return c.do(ctx, "update activity", http.MethodPut, u, &mm, nil)
}

// NewConversation describes a 1:1 conversation to create with a user.
type NewConversation struct {
	BotID    string // 28:<app id>
	UserID   string // the user's Teams id (29:...)
	TenantID string
}

// CreateConversation opens (or finds) the personal chat of the bot with a user and returns its id.
func (c *Connector) CreateConversation(ctx context.Context, serviceURL string, p NewConversation) (string, error) {
	base, err := serviceBase(serviceURL)
	if err != nil {
		return "", err
	}
	body := map[string]any{
		"isGroup":  false,
		"bot":      map[string]string{"id": p.BotID},
		"members":  []map[string]string{{"id": p.UserID}},
		"tenantId": p.TenantID,
	}
	if p.TenantID != "" {
		body["channelData"] = map[string]any{"tenant": map[string]string{"id": p.TenantID}}
	}
	var rr schema.ConversationResourceResponse
	if err := c.do(ctx, "create conversation", http.MethodPost, base+"/v3/conversations", body, &rr); err != nil {
		return "", err
	}
	if rr.ID == "" {
		return "", errors.New("create conversation: the connector returned no conversation id")
	}
	return rr.ID, nil
}

// do sends one JSON request with the bearer token; a 401 renews the token once.
func (c *Connector) do(ctx context.Context, op, method, target string, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s: encode: %w", op, err)
		}
	}
	for attempt := 0; ; attempt++ {
		token, err := c.Token(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		var rd io.Reader
		if payload != nil {
			rd = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, target, rd)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if payload != nil {
			req.Header.Set("Content-Type", "application/json; charset=utf-8")
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxConnectorResponse))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			c.dropToken(token) // revoked or rotated: one fresh token, one more try
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return connectorError(op, resp, body)
		}
		if rerr != nil {
			return fmt.Errorf("%s: read answer: %w", op, rerr)
		}
		if out != nil && len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("%s: decode answer: %w", op, err)
			}
		}
		return nil
	}
}

func connectorError(op string, resp *http.Response, body []byte) error {
	var e schema.ErrorResponse
	_ = json.Unmarshal(body, &e)
	ce := &ConnectorError{Op: op, Status: resp.StatusCode, Code: e.Error.Code, Message: truncateRunes(e.Error.Message, 300)}
	ce.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return ce
}

// maxRetryAfter caps a Retry-After we honour (a longer one is waited in steps).
const maxRetryAfter = 5 * time.Minute

// parseRetryAfter reads Retry-After as seconds or as an HTTP date (RFC 9110 §10.2.3); 0 when
// absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return min(max(time.Duration(n)*time.Second, 0), maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// conversationURL builds {serviceUrl}/v3/conversations/{id}/{rest...} with each id escaped.
func conversationURL(serviceURL, conversationID string, rest ...string) (string, error) {
	base, err := serviceBase(serviceURL)
	if err != nil {
		return "", err
	}
	if conversationID == "" {
		return "", errors.New("no conversation id")
	}
	var b strings.Builder
	b.WriteString(base + "/v3/conversations/" + escapeSegment(conversationID))
	for _, r := range rest {
		if r == "" {
			return "", errors.New("empty path segment")
		}
		b.WriteString("/" + escapeSegment(r))
	}
	return b.String(), nil
}

// escapeSegment escapes like encodeURIComponent (the Bot Framework SDKs do): Teams ids hold
// ':', ';', '@' and '='.
func escapeSegment(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// serviceBase checks a serviceUrl (https, or http on loopback for local fakes) and trims it.
func serviceBase(serviceURL string) (string, error) {
	u, err := url.Parse(serviceURL)
	if err != nil || u.Host == "" || !allowedURL(u) || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("service URL %q is not an https URL", truncateRunes(serviceURL, 100))
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// allowedURL: https, or plain http to a loopback address (tests and local emulators).
func allowedURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// Post, Put and Delete implement msbotbuilder-go's client.Client (which has no context);
// each call is bounded by connectorTimeout.
func (c *Connector) Post(target url.URL, activity schema.Activity) error {
	return c.libCall(http.MethodPost, target, &activity)
}

func (c *Connector) Put(target url.URL, activity schema.Activity) error {
	return c.libCall(http.MethodPut, target, &activity)
}

func (c *Connector) Delete(target url.URL, activity schema.Activity) error {
	return c.libCall(http.MethodDelete, target, nil)
}

func (c *Connector) libCall(method string, target url.URL, activity *schema.Activity) error {
	if !allowedURL(&target) {
		return fmt.Errorf("service URL %q is not an https URL", target.Host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectorTimeout)
	defer cancel()
	var in any
	if activity != nil {
		in = activity
	}
	return c.do(ctx, strings.ToLower(method)+" activity", method, target.String(), in, nil)
}
