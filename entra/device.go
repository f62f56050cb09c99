package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pimbot/pimbot/bot"
	"golang.org/x/oauth2"
)

// The device-code flow (no public callback URL needed): the person opens the verification
// page anywhere, enters the code and signs in, while the job queue polls the token endpoint
// (bot.JobMFAPoll). The sign-in in progress is kept in the KV, so it survives a restart and
// any replica can finish it.
//
// The device-code grant is a public-client flow in Entra (the app registration must "allow
// public client flows"): no client secret is sent with it, at the device authorization
// endpoint or the token endpoint (RFC 8628 §3.1 lets a public client identify itself by
// client_id alone).

var _ bot.DevicePoller = (*Verifier)(nil)

// deviceState is a device sign-in in progress, under "oidc:device:<request id>".
type deviceState struct {
	Pending    pending   `json:"pending"`
	DeviceCode string    `json:"device_code"`
	Expiry     time.Time `json:"expiry"`
	Interval   int64     `json:"interval"` // seconds between polls, as the server asked
}

func deviceKey(requestID string) string { return "oidc:device:" + requestID }

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
	st := deviceState{Pending: p, DeviceCode: da.DeviceCode, Expiry: time.Now().Add(expires), Interval: max(da.Interval, 1)}
	if v.cfg.DevicePollInterval > 0 {
		st.Interval = 1 // the shortest oauth2 can wait
	}
	data, _ := json.Marshal(st)
	if err := v.kv.SetValue(ctx, deviceKey(p.RequestID), string(data), expires+time.Minute); err != nil {
		return bot.Challenge{}, fmt.Errorf("remember the device sign-in: %w", errors.Join(bot.ErrUnavailable, err))
	}
	if err := v.eng.ScheduleMFAPoll(ctx, p.RequestID, v.clock().Add(v.pollEvery(st))); err != nil {
		return bot.Challenge{}, fmt.Errorf("schedule the device sign-in poll: %w", errors.Join(bot.ErrUnavailable, err))
	}
	return bot.Challenge{URL: da.VerificationURI, UserCode: da.UserCode, Expires: v.clock().Add(expires)}, nil
}

func (v *Verifier) pollEvery(st deviceState) time.Duration {
	if v.cfg.DevicePollInterval > 0 {
		return v.cfg.DevicePollInterval
	}
	return time.Duration(st.Interval) * time.Second
}

func (v *Verifier) deviceDone(id string, err error) {
	if v.cfg.OnDeviceDone != nil {
		v.cfg.OnDeviceDone(id, err)
	}
}

// PollDevice asks the token endpoint once whether the request's device sign-in is done, and
// applies the outcome when it is (bot.DevicePoller).
func (v *Verifier) PollDevice(ctx context.Context, r *bot.Request) (time.Duration, error) {
	raw, ok, err := v.kv.GetValue(ctx, deviceKey(r.ID))
	if err != nil {
		return 5 * time.Second, errors.Join(bot.ErrUnavailable, err)
	}
	if !ok {
		return 0, nil // none in progress (finished, or never started here)
	}
	var st deviceState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		_ = v.kv.DeleteValue(ctx, deviceKey(r.ID))
		return 0, fmt.Errorf("decode the device sign-in of %s: %w", r.ID, err)
	}
	end := func(err error) (time.Duration, error) {
		_ = v.kv.DeleteValue(context.WithoutCancel(ctx), deviceKey(r.ID))
		v.deviceDone(r.ID, err)
		return 0, err
	}
	if time.Now().After(st.Expiry) {
		v.log.Info("device sign-in expired", "request_id", r.ID)
		return end(context.DeadlineExceeded)
	}
	o, err := v.provider(ctx)
	if err != nil {
		return v.pollEvery(st), err
	}
	public := o.oauth
	public.ClientSecret = ""
	// One poll: oauth2 waits one interval (1 s) and asks; a sign-in still pending runs into
	// this deadline, and the queue asks again after the server's interval.
	pctx, cancel := context.WithTimeout(oauth2ctx(ctx, v.http), 1500*time.Millisecond)
	defer cancel()
	tok, err := public.DeviceAccessToken(pctx, &oauth2.DeviceAuthResponse{DeviceCode: st.DeviceCode, Interval: 1, Expiry: st.Expiry})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return v.pollEvery(st), nil // still pending
	}
	idToken, err := idTokenOf(tok, err)
	if errors.Is(err, bot.ErrUnavailable) {
		return v.pollEvery(st), err // Microsoft did not answer: ask again
	}
	if err != nil {
		v.log.Warn("device sign-in failed", "request_id", r.ID, "err", err)
		return end(err)
	}
	if _, err := v.finish(ctx, o, st.Pending, idToken, ""); err != nil {
		v.log.Warn("device sign-in refused", "request_id", r.ID, "err", err)
		return end(err)
	}
	return end(nil)
}
