package main

import (
	"context"
	"net/http"

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

// setupAuth serves GET /auth/callback (step-up MFA, sign-in binding) when Entra is configured.
func setupAuth(ctx context.Context, a *app, mux *http.ServeMux) ([]func(context.Context) error, error) {
	_, err := setupEntra(ctx, a, mux)
	return nil, err
}
