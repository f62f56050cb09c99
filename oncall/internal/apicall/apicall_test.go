package apicall

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"soon", 0, false},
	} {
		h := http.Header{}
		if tc.value != "" {
			h.Set("Retry-After", tc.value)
		}
		got, ok := RetryAfter(h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Retry-After %q: got %s %v, want %s %v", tc.value, got, ok, tc.want, tc.ok)
		}
	}
}

// server answers 429 with Retry-After `wait` seconds n times, then 200.
func server(t *testing.T, n int, wait string) (*http.Client, string, *atomic.Int32) {
	t.Helper()
	calls := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if int(calls.Add(1)) <= n {
			if wait != "" {
				w.Header().Set("Retry-After", wait)
			}
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return Client(nil, func(base http.RoundTripper) http.RoundTripper { return &Transport{Base: base} }), srv.URL, calls
}

func get(c *http.Client, url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	}
}

func TestOnceWaitsOnlyWhenTheWaitFits(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name      string
		deadline  time.Duration
		wait      string
		wantCalls int
		wantErr   bool
	}{
		{"a wait of 0 s is retried at once", 5 * time.Second, "0", 2, false},
		{"no Retry-After: no retry", 5 * time.Second, "", 1, true},
		{"a wait past MaxWait: no retry", time.Minute, "11", 1, true},
		{"a wait past the deadline: no retry", 2 * time.Second, "5", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, url, calls := server(t, 1, tc.wait)
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			a, err := Once(ctx, log, "Test", get(c, url))
			if (err != nil) != tc.wantErr || int(calls.Load()) != tc.wantCalls {
				t.Errorf("err %v after %d calls; want error %v after %d", err, calls.Load(), tc.wantErr, tc.wantCalls)
			}
			if tc.wantErr && a.Status != http.StatusTooManyRequests {
				t.Errorf("answer %+v, want the 429", a)
			}
		})
	}
}

func TestFailureKindsAndRedaction(t *testing.T) {
	t.Parallel()
	s := Service{Name: "Svc", Secret: "s3cret", Refused: "Svc refused the key (SVC_KEY)", Fix: "set SVC_KEY"}
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		kind   error
		not    []error
	}{
		{401, bot.ErrForbidden, []error{bot.ErrUnavailable}},
		{403, bot.ErrForbidden, []error{bot.ErrUnavailable}},
		{404, bot.ErrNotFound, []error{bot.ErrUnavailable}},
		{429, bot.ErrUnavailable, []error{bot.ErrForbidden, bot.ErrNotFound}},
		{500, bot.ErrUnavailable, []error{bot.ErrForbidden, bot.ErrNotFound}},
		{0, bot.ErrUnavailable, []error{bot.ErrForbidden, bot.ErrNotFound}},
	} {
		err := s.Failure(ctx, "doing a thing", "Svc schedule X", Answer{Status: tc.status}, "bad key s3cret", errors.New("dial: s3cret"))
		if !errors.Is(err, tc.kind) {
			t.Errorf("%d: %v is not %v", tc.status, err, tc.kind)
		}
		for _, k := range tc.not {
			if errors.Is(err, k) {
				t.Errorf("%d: %v is also %v", tc.status, err, k)
			}
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%d: the secret is in %q", tc.status, err)
		}
	}
}
