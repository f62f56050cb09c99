// Package entra verifies people with Microsoft Entra ID through OpenID Connect: step-up MFA
// before an activation (authorization-code flow with PKCE, or the device-code flow where
// the bot has no public callback URL), and a one-time sign-in that binds a chat account to
// its directory user.
package entra

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"golang.org/x/oauth2"
)

// DefaultLoginURL is the public cloud's authority; ENTRA_LOGIN_URL overrides it.
const DefaultLoginURL = "https://login.microsoftonline.com"

// CallbackPath is where Entra sends the browser back to the bot.
const CallbackPath = "/auth/callback"

// Config of the verifier (an app registration with a web redirect URI).
type Config struct {
	LoginURL     string // ENTRA_LOGIN_URL; default DefaultLoginURL
	TenantID     string // AZURE_TENANT_ID
	ClientID     string // AZURE_CLIENT_ID (or ENTRA_CLIENT_ID)
	ClientSecret string // AZURE_CLIENT_SECRET; the token call of the code flow needs it for a web app
	PublicURL    string // PIMBOT_PUBLIC_URL: the bot's public base; the redirect URI is PublicURL + /auth/callback
	AuthContext  string // ENTRA_AUTH_CONTEXT: the Conditional Access authentication context (e.g. c1) whose satisfaction proves MFA; required for step-up
	HTTPClient   *http.Client
	Logger       *slog.Logger

	DevicePollInterval time.Duration                     // overrides the server's polling interval (tests)
	OnDeviceDone       func(requestID string, err error) // hears how each device sign-in ended (tests)
}

// Verifier runs the sign-ins and hands their outcome to the engine.
type Verifier struct {
	cfg   Config
	eng   *bot.Engine
	kv    bot.KV
	disc  discovery
	http  *http.Client
	log   *slog.Logger
	ttl   time.Duration
	clock func() time.Time
}

var _ bot.MFAVerifier = (*Verifier)(nil)

// New builds a verifier. It keeps sign-in state in kv (Redis), so any replica can finish a sign-in.
func New(cfg Config, eng *bot.Engine, kv bot.KV) (*Verifier, error) {
	if cfg.LoginURL == "" {
		cfg.LoginURL = DefaultLoginURL
	}
	cfg.LoginURL = strings.TrimRight(cfg.LoginURL, "/")
	switch {
	case cfg.TenantID == "" || cfg.ClientID == "":
		return nil, errors.New("MFA and sign-in need AZURE_TENANT_ID and AZURE_CLIENT_ID (an app registration)")
	case strings.ContainsAny(cfg.TenantID, "/?#"):
		return nil, errors.New("AZURE_TENANT_ID must be a tenant id or domain")
	}
	if err := secureURL(cfg.LoginURL); err != nil {
		return nil, fmt.Errorf("ENTRA_LOGIN_URL: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &Verifier{cfg: cfg, eng: eng, kv: kv, http: cfg.HTTPClient, log: cfg.Logger, ttl: eng.Policy().Settings.MFATimeout, clock: eng.Now}
	return v, nil
}

func (v *Verifier) redirectURI() string {
	return strings.TrimRight(v.cfg.PublicURL, "/") + CallbackPath
}

// pending is what a sign-in in progress must remember (in the KV, under its state).
type pending struct {
	Purpose   string    `json:"purpose"` // mfa or bind
	RequestID string    `json:"request_id,omitempty"`
	UserID    string    `json:"user_id,omitempty"`   // the directory user who must sign in (mfa)
	Surface   string    `json:"surface,omitempty"`   // bind: the chat surface, its user id, and the
	ChatUser  string    `json:"chat_user,omitempty"` // e-mail the chat platform vouches for
	ChatEmail string    `json:"chat_email,omitempty"`
	Nonce     string    `json:"nonce"`
	Verifier  string    `json:"verifier"`
	Started   time.Time `json:"started"`
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// AuthContext is the Conditional Access authentication context the step-up asks for.
func (v *Verifier) AuthContext() string { return v.cfg.AuthContext }

// claimsParam asks Entra, through the claims request parameter, for the configured
// authentication context (acrs: Entra evaluates the Conditional Access policies that target
// it, MFA among them, and names it in the token only if they were satisfied) and for
// auth_time (when the person authenticated), which v2.0 ID tokens carry only on request.
// Entra's v2.0 ID tokens carry no amr claim at all, so there is no amr mode.
func (v *Verifier) claimsParam() string {
	b, _ := json.Marshal(map[string]any{"id_token": map[string]any{
		"auth_time": map[string]any{"essential": true},
		"acrs":      map[string]any{"essential": true, "value": v.cfg.AuthContext},
	}})
	return string(b)
}

// StartMFA begins step-up verification for a request in state verifying.
func (v *Verifier) StartMFA(ctx context.Context, r *bot.Request) (bot.Challenge, error) {
	if v.cfg.AuthContext == "" {
		return bot.Challenge{}, fmt.Errorf("step-up MFA needs a Conditional Access authentication context (ENTRA_AUTH_CONTEXT, e.g. c1): Entra's ID tokens prove MFA in no other way: %w", bot.ErrUnavailable)
	}
	g, ok := v.eng.Policy().Group(r.GroupID)
	if ok && g.MFAFlow == "device_code" {
		return v.startDevice(ctx, pending{Purpose: "mfa", RequestID: r.ID, UserID: r.Requester.ID, Started: v.clock()}, true)
	}
	return v.startCode(ctx, pending{Purpose: "mfa", RequestID: r.ID, UserID: r.Requester.ID}, true)
}

// StartBinding begins the one-time sign-in that binds a chat account to a directory user.
// The account is bound only to the person who owns it: the sign-in must be by the directory
// user whose mail or UPN is the e-mail the chat platform vouches for (chat.Email), so a link
// forwarded to someone else binds nobody. Microsoft's page is pre-filled with that address.
func (v *Verifier) StartBinding(ctx context.Context, chat bot.ChatAccount) (bot.Challenge, error) {
	if chat.Email == "" {
		return bot.Challenge{}, refuse("your %s profile shows no e-mail address to pimbot, so a sign-in cannot be matched to your account; ask your administrators to let apps read e-mail addresses", chat.Surface)
	}
	return v.startCode(ctx, pending{Purpose: "bind", Surface: chat.Surface, ChatUser: chat.ID, ChatEmail: chat.Email}, v.bindNeedsMFA())
}

// bindNeedsMFA: where the policy asks for MFA, the sign-in that binds an account (and so
// decides who will act through it) must satisfy the same authentication context.
func (v *Verifier) bindNeedsMFA() bool {
	if v.cfg.AuthContext == "" {
		return false
	}
	for _, g := range v.eng.Policy().Groups {
		if g.RequireMFA {
			return true
		}
	}
	return false
}

func (v *Verifier) startCode(ctx context.Context, p pending, mfa bool) (bot.Challenge, error) {
	if v.cfg.PublicURL == "" {
		return bot.Challenge{}, errors.New("sign-in needs PIMBOT_PUBLIC_URL (the bot's public address for " + CallbackPath + "), or mfa_flow: device_code")
	}
	o, err := v.provider(ctx)
	if err != nil {
		return bot.Challenge{}, err
	}
	state := random(24)
	p.Nonce, p.Verifier, p.Started = random(24), oauth2.GenerateVerifier(), v.clock()
	data, _ := json.Marshal(p)
	if err := v.kv.SetValue(ctx, "oidc:state:"+state, string(data), v.ttl); err != nil {
		return bot.Challenge{}, fmt.Errorf("remember sign-in: %w", errors.Join(bot.ErrUnavailable, err))
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(p.Verifier),
		oauth2.SetAuthURLParam("response_mode", "query"),
		oauth2.SetAuthURLParam("nonce", p.Nonce),
		oauth2.SetAuthURLParam("prompt", "login"),
	}
	if mfa {
		opts = append(opts, oauth2.SetAuthURLParam("claims", v.claimsParam()))
	}
	if p.ChatEmail != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", p.ChatEmail)) // names the account being linked on Microsoft's page
	}
	return bot.Challenge{URL: o.oauth.AuthCodeURL(state, opts...), Expires: p.Started.Add(v.ttl)}, nil
}

// Bound returns the directory user id a chat account was bound to by a sign-in.
func (v *Verifier) Bound(ctx context.Context, surface, chatUser string) (string, bool, error) {
	return v.kv.GetValue(ctx, "bind:"+surface+":"+chatUser)
}

// Unbind undoes the link of a chat account (asked from that account), recorded as an audit
// event; the next action from it needs a new sign-in. ok is false when it was not linked.
func (v *Verifier) Unbind(ctx context.Context, chat bot.ChatAccount) (bool, error) {
	id, ok, err := v.Bound(ctx, chat.Surface, chat.ID)
	if err != nil || !ok {
		return false, err
	}
	if err := v.kv.DeleteValue(ctx, "bind:"+chat.Surface+":"+chat.ID); err != nil {
		return false, errors.Join(bot.ErrUnavailable, err)
	}
	u, err := v.eng.Directory().ResolveUser(ctx, id)
	if err != nil {
		u = bot.User{ID: id}
	}
	if err := v.eng.RecordBinding(ctx, bot.EvUnbound, chat, u, fmt.Sprintf("the %s account %s (%s) is no longer linked to %s", chat.Surface, chat.ID, chat.Email, u.Handle())); err != nil {
		v.log.Warn("record an unbinding", "err", err)
	}
	return true, nil
}

// ServeHTTP handles GET /auth/callback, where Entra sends the browser after the sign-in.
func (v *Verifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	msg, err := v.callback(r.Context(), q.Get("state"), q.Get("code"), q.Get("error"), q.Get("error_description"))
	if errors.Is(err, bot.ErrUnavailable) {
		v.log.Warn("sign-in could not be completed", "err", err)
		page(w, http.StatusServiceUnavailable, "Try again", "Microsoft or pimbot did not answer in time; nothing was changed. Open the sign-in link from the chat again: it still works.")
		return
	}
	if err != nil {
		v.log.Warn("sign-in refused", "err", err)
		page(w, http.StatusBadRequest, "Verification failed", bot.Describe(err))
		return
	}
	page(w, http.StatusOK, "Verified", msg)
}

func page(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>pimbot: %s</title><h1>%s</h1><p>%s</p><p>You can close this tab.</p>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(msg))
}

func refuse(format string, args ...any) error {
	return &bot.PermissionError{Action: "verify", Reason: fmt.Sprintf(format, args...)}
}

func (v *Verifier) callback(ctx context.Context, state, code, errCode, errDesc string) (string, error) {
	if state == "" || len(state) > 128 {
		return "", refuse("the sign-in link is incomplete; start again from the chat")
	}
	raw, ok, err := v.kv.GetValue(ctx, "oidc:state:"+state)
	if err != nil {
		return "", errors.Join(bot.ErrUnavailable, err)
	}
	if !ok {
		return "", refuse("this sign-in link has expired or was already used; ask the bot for a new one")
	}
	// One completion at a time per link. The link is spent only when a sign-in succeeds: a
	// refused sign-in (the wrong account, no MFA) or a token endpoint that failed for a
	// moment leaves it usable, so the person can simply sign in again with it.
	first, err := v.kv.PutIfAbsent(ctx, "oidc:busy:"+state, "1", time.Minute)
	if err != nil {
		return "", errors.Join(bot.ErrUnavailable, err)
	}
	if !first {
		return "", refuse("this sign-in is being completed in another tab; wait a moment and reload")
	}
	defer func() { _ = v.kv.DeleteValue(context.WithoutCancel(ctx), "oidc:busy:"+state) }()
	var p pending
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return "", fmt.Errorf("decode sign-in state: %w", err)
	}
	if errCode != "" {
		return "", refuse("Microsoft did not complete the sign-in (%s: %s); the link still works: open it again to retry", errCode, firstLine(errDesc))
	}
	if code == "" {
		return "", refuse("the sign-in returned no authorization code; the link still works: open it again")
	}
	o, err := v.provider(ctx)
	if err != nil {
		return "", err
	}
	tok, err := o.oauth.Exchange(oauth2ctx(ctx, v.http), code, oauth2.VerifierOption(p.Verifier))
	idToken, err := idTokenOf(tok, err)
	if err != nil {
		return "", err
	}
	msg, err := v.finish(ctx, o, p, idToken, p.Nonce)
	if err != nil {
		return "", err
	}
	if err := v.kv.DeleteValue(ctx, "oidc:state:"+state); err != nil {
		v.log.Warn("spend a sign-in link", "err", err)
	}
	return msg, nil
}

// finish validates the ID token and applies the outcome (MFA verified, or account bound).
func (v *Verifier) finish(ctx context.Context, o *provider, p pending, idToken, nonce string) (string, error) {
	c, err := v.validate(ctx, o, idToken, nonce)
	if err != nil {
		return "", refuse("%v", err)
	}
	switch p.Purpose {
	case "bind":
		return v.bind(ctx, p, c)
	case "mfa":
		// Whether this sign-in proves the step-up for this request is the engine's decision.
		r, err := v.eng.MFAVerified(ctx, p.RequestID, bot.StepUpProof{UserID: c.ObjectID, AuthTime: c.AuthTime, ACRS: c.ACRS, AMR: c.AMR})
		var pe *bot.PermissionError
		if errors.As(err, &pe) && c.ObjectID != p.UserID {
			return "", refuse("you signed in as %s, but the request was made by someone else; sign in with the requester's account (the link still works)", firstNonEmpty(c.UPN, c.ObjectID))
		}
		if errors.As(err, &pe) {
			return "", refuse("%s (the link still works: sign in again with it)", pe.Reason)
		}
		if err != nil {
			return "", err
		}
		next := "it goes on to the approvers"
		if r.State == bot.StateScheduled {
			next = "it starts " + strings.TrimPrefix(r.When(v.clock(), nil), "from ")
		}
		return "MFA verified for request " + r.ID + " (" + r.What() + "); " + next + ".", nil
	}
	return "", fmt.Errorf("unknown sign-in purpose %q", p.Purpose)
}

// bind links the chat account to the directory user who signed in, if that user owns it: the
// e-mail the chat platform vouches for is their mail or UPN. Otherwise (a link forwarded to
// someone else, who signed in on the genuine Microsoft page) nothing is bound, both
// accounts are told, and the audit trail records it.
func (v *Verifier) bind(ctx context.Context, p pending, c Claims) (string, error) {
	who := firstNonEmpty(c.UPN, c.Name, c.ObjectID)
	u, err := v.eng.Directory().ResolveUser(ctx, c.ObjectID)
	switch {
	case errors.Is(err, bot.ErrNotFound):
		return "", refuse("you signed in as %s, who is not in the directory; nothing was linked", who)
	case err != nil:
		return "", errors.Join(bot.ErrUnavailable, err)
	}
	chat := bot.ChatAccount{Surface: p.Surface, ID: p.ChatUser, Email: p.ChatEmail}
	if v.bindNeedsMFA() && !slices.Contains(c.ACRS, v.cfg.AuthContext) {
		return "", refuse("the sign-in did not satisfy the authentication context %s (MFA) that this bot requires for linking accounts; nothing was linked, and the link still works", v.cfg.AuthContext)
	}
	if !v.eng.Policy().Settings.Owns(p.ChatEmail, u) {
		detail := fmt.Sprintf("the %s account %s (%s) asked to be linked, but %s signed in; nothing was linked", p.Surface, p.ChatUser, p.ChatEmail, u.Handle())
		if err := v.eng.RecordBinding(ctx, bot.EvBindRefused, chat, u, detail); err != nil {
			v.log.Warn("record a refused binding", "err", err)
		}
		return "", refuse("this link was made for the %s account %s, and you signed in as %s: nothing was linked, and both accounts have been told. To link your own %s account, ask the bot from it", p.Surface, p.ChatEmail, who, p.Surface)
	}
	if err := v.kv.SetValue(ctx, "bind:"+p.Surface+":"+p.ChatUser, c.ObjectID, 0); err != nil {
		return "", errors.Join(bot.ErrUnavailable, err)
	}
	if err := v.eng.RecordBinding(ctx, bot.EvBound, chat, u, fmt.Sprintf("the %s account %s (%s) is linked to %s", p.Surface, p.ChatUser, p.ChatEmail, u.Handle())); err != nil {
		v.log.Warn("record a binding", "err", err)
	}
	return "Your " + p.Surface + " account (" + p.ChatEmail + ") is now linked to " + who + ". Go back to the chat and try again.", nil
}

// oauth2ctx makes golang.org/x/oauth2 use the verifier's HTTP client (its timeout).
func oauth2ctx(ctx context.Context, c *http.Client) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c)
}

// idTokenOf reads the ID token of a token endpoint answer, and turns the endpoint's errors
// into ours: an outage (5xx, 429, no answer) is temporary; an OAuth error is a refusal.
func idTokenOf(tok *oauth2.Token, err error) (string, error) {
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re) && re.Response != nil && (re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests):
		return "", fmt.Errorf("token endpoint: HTTP %d %s: %w", re.Response.StatusCode, re.ErrorCode, bot.ErrUnavailable)
	case errors.As(err, &re):
		return "", &tokenError{Code: firstNonEmpty(re.ErrorCode, "invalid_request"), Description: firstLine(re.ErrorDescription)}
	case err != nil:
		return "", fmt.Errorf("token endpoint: %w", errors.Join(bot.ErrUnavailable, err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", &tokenError{Code: "no_id_token", Description: "the token endpoint returned no ID token"}
	}
	return raw, nil
}

// tokenError is an OAuth error answer of the token endpoint.
type tokenError struct{ Code, Description string }

func (e *tokenError) Error() string {
	return "Microsoft refused the sign-in (" + e.Code + "): " + e.Description
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s, _, _ = strings.Cut(s, "\r")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}
