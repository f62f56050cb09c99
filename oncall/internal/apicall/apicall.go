// Package apicall is what the on-call providers (PagerDuty, Opsgenie) add around their SDKs'
// calls: the HTTP status and the wait a rate-limited answer asked for (the SDKs drop the
// headers), one more try after that wait when it fits the caller's deadline, and errors of
// the kinds the engine branches on (bot.ErrForbidden, bot.ErrNotFound, bot.ErrUnavailable)
// whose text never holds the secret.
package apicall

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pimbot/pimbot/bot"
)

// MaxWait is the longest a rate-limited call waits before its one retry. A service that asks
// for longer is not waited for: the approvers are asked instead of keeping a requester waiting.
const MaxWait = 10 * time.Second

// retryBudget is the time the retried call itself needs after the wait, within the deadline.
const retryBudget = 500 * time.Millisecond

// DefaultTimeout bounds one HTTP call when the caller gives no http.Client.
const DefaultTimeout = 10 * time.Second

// Answer is what the last HTTP response of one call said, beyond what the SDK returns.
type Answer struct {
	Status    int           // HTTP status; 0 when no response came
	Wait      time.Duration // how long a 429 asked to wait
	WaitKnown bool          // the response said how long (Retry-After, or the service's own header)
	RequestID string        // the service's request id, for support tickets
}

type recorder struct {
	mu   sync.Mutex
	last Answer
}

type ctxKey struct{}

// Transport records each response's status and requested wait in the context of the request
// (set up by Once), so that a call's outcome can be judged after the SDK returns.
type Transport struct {
	Base http.RoundTripper // nil: http.DefaultTransport
	// Wait reads the service's own header for how long to wait, when Retry-After is absent
	// (PagerDuty's ratelimit-reset, Opsgenie's X-RateLimit-Period-In-Sec); may be nil.
	Wait func(h http.Header) (time.Duration, bool)
	// RequestIDHeader names the header with the service's request id; may be empty.
	RequestIDHeader string
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if rec, ok := req.Context().Value(ctxKey{}).(*recorder); ok && resp != nil {
		a := Answer{Status: resp.StatusCode}
		if t.RequestIDHeader != "" {
			a.RequestID = resp.Header.Get(t.RequestIDHeader)
		}
		a.Wait, a.WaitKnown = RetryAfter(resp.Header, time.Now())
		if !a.WaitKnown && t.Wait != nil {
			a.Wait, a.WaitKnown = t.Wait(resp.Header)
		}
		rec.mu.Lock()
		rec.last = a
		rec.mu.Unlock()
	}
	return resp, err
}

// Client returns a copy of c (nil: a client with DefaultTimeout) whose transport is wrapped by
// wrap. The caller's client is not changed.
func Client(c *http.Client, wrap func(http.RoundTripper) http.RoundTripper) *http.Client {
	if c == nil {
		c = &http.Client{Timeout: DefaultTimeout}
	}
	cp := *c
	cp.Transport = wrap(c.Transport)
	return &cp
}

// RetryAfter reads a Retry-After header: a number of seconds or an HTTP date.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(s, 0)) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// Seconds reads a header holding a whole number of seconds (ratelimit-reset and the like).
func Seconds(h http.Header, name string) (time.Duration, bool) {
	s, err := strconv.Atoi(strings.TrimSpace(h.Get(name)))
	if err != nil || s < 0 {
		return 0, false
	}
	return time.Duration(s) * time.Second, true
}

// Once runs call. When its answer is a 429 that says how long to wait, and the wait is at
// most MaxWait and leaves room for another try before ctx's deadline, it waits and runs call
// once more. It returns the last attempt's answer and error.
func Once(ctx context.Context, log *slog.Logger, service string, call func(ctx context.Context) error) (Answer, error) {
	for attempt := 1; ; attempt++ {
		rec := &recorder{}
		err := call(context.WithValue(ctx, ctxKey{}, rec))
		rec.mu.Lock()
		a := rec.last
		rec.mu.Unlock()
		if err == nil || a.Status != http.StatusTooManyRequests || attempt > 1 || !fits(ctx, a) {
			return a, err
		}
		log.Info(service+" is rate-limiting pimbot; waiting, then trying once more", "wait", a.Wait)
		t := time.NewTimer(a.Wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return a, err
		case <-t.C:
		}
	}
}

func fits(ctx context.Context, a Answer) bool {
	if !a.WaitKnown || a.Wait > MaxWait {
		return false
	}
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) >= a.Wait+retryBudget
}

// Error is a failed call to an on-call service, worded for people. It wraps the kinds the
// engine branches on: bot.ErrForbidden (a refused credential), bot.ErrNotFound (an unknown
// schedule or service), bot.ErrUnavailable (temporary: a timeout, a 5xx, a 429), and
// context.DeadlineExceeded when the caller's time ran out.
type Error struct {
	Service   string // "PagerDuty", "Opsgenie"
	Status    int    // HTTP status; 0 when no answer came
	RequestID string // the service's request id, when it gave one
	msg       string
	kinds     []error
}

func (e *Error) Error() string {
	if e.RequestID != "" {
		return e.msg + " (request id " + e.RequestID + ")"
	}
	return e.msg
}

// Unwrap lists the kinds.
func (e *Error) Unwrap() []error { return e.kinds }

// Temporary reports whether trying again later may help.
func (e *Error) Temporary() bool { return errors.Is(e, bot.ErrUnavailable) }

// Service describes one on-call service's API for its errors.
type Service struct {
	Name   string // "PagerDuty"
	Secret string // the token or key: removed from any text that goes into an error
	// Refused starts the error of a refused credential and names its variable:
	// "PagerDuty refused the token (PAGERDUTY_TOKEN)".
	Refused string
	// Fix says what to do about a 401: "set PAGERDUTY_TOKEN to a valid REST API key".
	Fix string
}

// Redact removes the secret from text.
func (s Service) Redact(text string) string {
	if s.Secret == "" {
		return text
	}
	return strings.ReplaceAll(text, s.Secret, "[redacted]")
}

// Failure turns a failed call into an Error. doing says what pimbot was doing ("listing the
// on-calls of schedule P1ABCD2"); missing names the thing a 404 means does not exist
// (`PagerDuty schedule P1ABCD2`), or is empty when a 404 means something else; detail is the
// service's own message, if it gave one; err is what the SDK returned.
func (s Service) Failure(ctx context.Context, doing, missing string, a Answer, detail string, err error) *Error {
	e := &Error{Service: s.Name, Status: a.Status, RequestID: a.RequestID}
	detail = s.Redact(strings.TrimSpace(detail))
	status := strconv.Itoa(a.Status)
	if detail != "" {
		status += " " + detail
	}
	switch {
	case a.Status == 0 && ctx.Err() != nil:
		e.msg = fmt.Sprintf("%s did not answer in time while %s", s.Name, doing)
		e.kinds = []error{bot.ErrUnavailable, ctx.Err()}
	case a.Status == 0:
		// The request's URL (in a *url.Error) is left out: it may be the SDK's idea of the
		// address before BaseURL replaced it; the cause (a dial or TLS error) names the host.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		e.msg = fmt.Sprintf("could not reach %s while %s: %s", s.Name, doing, s.Redact(errText(err)))
		e.kinds = []error{bot.ErrUnavailable}
	case a.Status == http.StatusUnauthorized:
		e.msg = fmt.Sprintf("%s: %s; %s", s.Refused, status, s.Fix)
		e.kinds = []error{bot.ErrForbidden}
	case a.Status == http.StatusForbidden:
		e.msg = fmt.Sprintf("%s while %s: %s; give it read access", s.Refused, doing, status)
		e.kinds = []error{bot.ErrForbidden}
	case a.Status == http.StatusNotFound && missing != "":
		e.msg = fmt.Sprintf("%s does not exist (%s); check auto_approve.on_call in the policy file", missing, status)
		e.kinds = []error{bot.ErrNotFound}
	case a.Status == http.StatusTooManyRequests:
		wait := ""
		if a.WaitKnown {
			wait = ", asked to wait " + a.Wait.String()
		}
		e.msg = fmt.Sprintf("%s is rate-limiting pimbot (429%s) while %s; try again shortly", s.Name, wait, doing)
		e.kinds = []error{bot.ErrUnavailable}
		if ctx.Err() != nil {
			e.kinds = append(e.kinds, ctx.Err())
		}
	case a.Status >= 500 || a.Status == http.StatusRequestTimeout:
		e.msg = fmt.Sprintf("%s failed (%s) while %s; try again shortly", s.Name, status, doing)
		e.kinds = []error{bot.ErrUnavailable}
	case a.Status >= 200 && a.Status < 300:
		// The answer came but could not be read.
		e.msg = fmt.Sprintf("could not read %s's answer while %s: %s", s.Name, doing, s.Redact(errText(err)))
	default:
		e.msg = fmt.Sprintf("%s refused the request while %s (%s)", s.Name, doing, status)
		if a.Status == http.StatusNotFound {
			e.kinds = []error{bot.ErrNotFound}
		}
	}
	return e
}

func errText(err error) string {
	if err == nil {
		return "no error text"
	}
	return err.Error()
}
