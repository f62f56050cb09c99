package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// startDevice begins the device-code flow (no public callback URL needed): the person opens
// the verification page anywhere, enters the code and signs in; the bot polls the token
// endpoint until the sign-in is done or expires.
func (v *Verifier) startDevice(ctx context.Context, p pending, mfa bool) (bot.Challenge, error) {
	form := url.Values{"client_id": {v.cfg.ClientID}, "scope": {"openid profile"}}
	if mfa {
		form.Set("claims", v.claimsParam())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.tenantURL("/oauth2/v2.0/devicecode"), strings.NewReader(form.Encode()))
	if err != nil {
		return bot.Challenge{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := v.http.Do(req)
	if err != nil {
		return bot.Challenge{}, fmt.Errorf("device code: %w", errors.Join(bot.ErrUnavailable, err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var dc struct {
		DeviceCode      string `json:"device_code"`
		UserCode        string `json:"user_code"`
		VerificationURI string `json:"verification_uri"`
		ExpiresIn       int    `json:"expires_in"`
		Interval        int    `json:"interval"`
		Error           string `json:"error"`
		Description     string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &dc); err != nil || resp.StatusCode != http.StatusOK || dc.DeviceCode == "" {
		return bot.Challenge{}, &tokenError{Code: firstNonEmpty(dc.Error, fmt.Sprintf("HTTP %d", resp.StatusCode)), Description: firstLine(dc.Description)}
	}
	expires := time.Duration(dc.ExpiresIn) * time.Second
	if expires <= 0 || expires > v.ttl {
		expires = v.ttl
	}
	interval := time.Duration(dc.Interval) * time.Second
	if interval < time.Second {
		interval = 5 * time.Second
	}
	go v.pollDevice(p, dc.DeviceCode, interval, time.Now().Add(expires))
	return bot.Challenge{URL: dc.VerificationURI, UserCode: dc.UserCode, Expires: v.clock().Add(expires)}, nil
}

func (v *Verifier) deviceDone(id string, err error) {
	if v.cfg.OnDeviceDone != nil {
		v.cfg.OnDeviceDone(id, err)
	}
}

func (v *Verifier) pollDevice(p pending, deviceCode string, interval time.Duration, deadline time.Time) {
	if v.cfg.DevicePollInterval > 0 {
		interval = v.cfg.DevicePollInterval
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			v.log.Info("device sign-in expired", "request_id", p.RequestID)
			v.deviceDone(p.RequestID, ctx.Err())
			return
		case <-t.C:
		}
		idToken, err := v.redeem(ctx, url.Values{
			"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
			"device_code": {deviceCode},
		})
		var te *tokenError
		if errors.As(err, &te) && (te.Code == "authorization_pending" || te.Code == "slow_down") {
			if te.Code == "slow_down" {
				interval += 5 * time.Second
			}
			continue
		}
		if err != nil {
			v.log.Warn("device sign-in failed", "request_id", p.RequestID, "err", err)
			v.deviceDone(p.RequestID, err)
			return
		}
		_, err = v.finish(ctx, p, idToken, "")
		if err != nil {
			v.log.Warn("device sign-in refused", "request_id", p.RequestID, "err", err)
		}
		v.deviceDone(p.RequestID, err)
		return
	}
}
