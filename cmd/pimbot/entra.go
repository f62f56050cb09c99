package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/pimbot/pimbot/entra"
)

// setupEntra installs step-up MFA and sign-in binding when an app registration is configured
// (AZURE_TENANT_ID + AZURE_CLIENT_ID, or ENTRA_CLIENT_ID for a separate sign-in app), and
// serves GET /auth/callback on mux when mux is not nil.
func setupEntra(ctx context.Context, a *app, mux *http.ServeMux) (*entra.Verifier, error) {
	tenant := a.getenv("AZURE_TENANT_ID")
	client := a.getenv("ENTRA_CLIENT_ID")
	secret := a.getenv("ENTRA_CLIENT_SECRET")
	if client == "" {
		client, secret = a.getenv("AZURE_CLIENT_ID"), a.getenv("AZURE_CLIENT_SECRET")
	}
	if tenant == "" || client == "" {
		return nil, nil
	}
	v, err := entra.New(entra.Config{
		LoginURL: a.getenv("ENTRA_LOGIN_URL"), TenantID: tenant, ClientID: client, ClientSecret: secret,
		PublicURL: a.getenv("PIMBOT_PUBLIC_URL"), AuthContext: a.getenv("ENTRA_AUTH_CONTEXT"), Logger: a.log,
	}, a.engine, a.store)
	if err != nil {
		return nil, err
	}
	a.engine.SetMFA(v)
	if mux != nil {
		mux.Handle("GET "+entra.CallbackPath, v)
	}
	return v, nil
}

func init() { extraChecks = append(extraChecks, checkMFA) }

// checkMFA says which step-up mode is in force, and fails when groups require MFA that no
// sign-in could ever prove: Entra's v2.0 ID tokens carry no amr claim, so MFA is proven
// only by a Conditional Access authentication context (acrs).
func checkMFA(ctx context.Context, a *app, r *checkReport) {
	var groups []string
	for _, g := range a.pol.Groups {
		if g.RequireMFA {
			groups = append(groups, g.Name)
		}
	}
	ac := a.getenv("ENTRA_AUTH_CONTEXT")
	registered := a.getenv("AZURE_TENANT_ID") != "" && (a.getenv("ENTRA_CLIENT_ID") != "" || a.getenv("AZURE_CLIENT_ID") != "")
	switch {
	case len(groups) == 0:
		r.ok("mfa: no group requires step-up MFA")
	case !registered:
		r.fail("mfa: %s require MFA, but no Entra app registration is configured (AZURE_TENANT_ID and AZURE_CLIENT_ID or ENTRA_CLIENT_ID): their requests are refused", strings.Join(groups, ", "))
	case ac == "":
		r.fail("mfa: %s require MFA, but ENTRA_AUTH_CONTEXT is not set: Entra's ID tokens carry no amr claim, so MFA can only be proven by a Conditional Access authentication context (create one, e.g. c1, target a policy that requires MFA at it, and set ENTRA_AUTH_CONTEXT=c1)", strings.Join(groups, ", "))
	default:
		r.ok("mfa: authentication context mode: a sign-in proves MFA when Entra names the context %s in acrs (Conditional Access must require MFA for it); groups %s", ac, strings.Join(groups, ", "))
	}
	var device []string
	for _, g := range a.pol.Groups {
		if g.RequireMFA && g.MFAFlow == "device_code" {
			device = append(device, g.Name)
		}
	}
	if len(device) > 0 {
		r.ok("mfa: %s use the device-code flow, a public-client flow: the app registration must allow public client flows (no secret is sent with it)", strings.Join(device, ", "))
	}
}

// setupAuth serves GET /auth/callback (step-up MFA, sign-in binding) when Entra is configured.
func setupAuth(ctx context.Context, a *app, mux *http.ServeMux) ([]func(context.Context) error, error) {
	_, err := setupEntra(ctx, a, mux)
	return nil, err
}
