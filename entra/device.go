package entra

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pimbot/pimbot/bot"
	"golang.org/x/oauth2"
)

// startDevice begins the device-code flow (no public callback URL needed): the person opens
// the verification page anywhere, enters the code and signs in; the bot polls the token
// endpoint until the sign-in is done or expires.
//
// The device-code grant is a public-client flow in Entra (the app registration must "allow
// public client flows"): no client secret is sent with it, at the device authorization
// endpoint or the token endpoint (RFC 8628 §3.1 lets a public client identify itself by
// client_id alone).
func (v *Verifier) startDevice(ctx context.Context, p pending, mfa bool) (bot.Challenge, error) {
	o, err := v.provider(ctx)
	if err != nil {
		return bot.Challenge{}, err
	}
	if o.oauth.Endpoint.DeviceAuthURL == "" {
		return bot.Challenge{}, errors.New("the tenant's sign-in configuration names no device authorization endpoint; use the browser flow")
	}
	public := o.oauth
	public.ClientSecret = ""
	var opts []oauth2.AuthCodeOption
	if mfa {
		opts = append(opts, oauth2.SetAuthURLParam("claims", v.claimsParam()))
	}
	da, err := public.DeviceAuth(oauth2ctx(ctx, v.http), opts...)
	if err != nil {
		_, err = idTokenOf(nil, err)
		return bot.Challenge{}, fmt.Errorf("device code: %w", err)
	}
	expires := time.Until(da.Expiry)
	if da.Expiry.IsZero() || expires <= 0 || expires > v.ttl {
		expires = v.ttl
	}
	da.Expiry = time.Now().Add(expires)
	if v.cfg.DevicePollInterval > 0 {
		da.Interval = int64(max(v.cfg.DevicePollInterval/time.Second, 1)) // oauth2 polls in whole seconds
	}
	go v.pollDevice(o, public, p, da)
	return bot.Challenge{URL: da.VerificationURI, UserCode: da.UserCode, Expires: v.clock().Add(expires)}, nil
}

func (v *Verifier) deviceDone(id string, err error) {
	if v.cfg.OnDeviceDone != nil {
		v.cfg.OnDeviceDone(id, err)
	}
}

// pollDevice waits for the device sign-in (oauth2 polls at the server's interval, slowing
// down when told to) and applies its outcome.
func (v *Verifier) pollDevice(o *provider, public oauth2.Config, p pending, da *oauth2.DeviceAuthResponse) {
	ctx, cancel := context.WithDeadline(context.Background(), da.Expiry)
	defer cancel()
	tok, err := public.DeviceAccessToken(oauth2ctx(ctx, v.http), da)
	idToken, err := idTokenOf(tok, err)
	if err != nil {
		if ctx.Err() != nil {
			v.log.Info("device sign-in expired", "request_id", p.RequestID)
			v.deviceDone(p.RequestID, ctx.Err())
			return
		}
		v.log.Warn("device sign-in failed", "request_id", p.RequestID, "err", err)
		v.deviceDone(p.RequestID, err)
		return
	}
	_, err = v.finish(ctx, o, p, idToken, "")
	if err != nil {
		v.log.Warn("device sign-in refused", "request_id", p.RequestID, "err", err)
	}
	v.deviceDone(p.RequestID, err)
}
