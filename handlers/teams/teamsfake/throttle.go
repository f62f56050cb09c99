package teamsfake

import (
	"net/http"
	"strconv"
	"time"
)

// The Bot Connector throttles: "the connector answers 429 with Retry-After under load; back
// off with jitter" (Teams' rate limiting for bots,
// https://learn.microsoft.com/microsoftteams/platform/bots/how-to/rate-limit). Throttle
// makes the fake do so on demand.

type throttle struct {
	n          int // answers left to throttle; <0: every one until Throttle(route, 0, 0)
	retryAfter time.Duration
	status     int
}

// Throttle makes the next n requests of a route ("send", "update", "create") answer HTTP
// 429 with Retry-After (whole seconds) and Teams' error body, doing nothing. n < 0
// throttles every request until Throttle(route, 0, 0).
func (f *Fake) Throttle(route string, n int, retryAfter time.Duration) {
	f.throttleWith(route, n, retryAfter, http.StatusTooManyRequests)
}

// Unavailable is Throttle with 503 Service Unavailable (an outage that says when to come back).
func (f *Fake) Unavailable(route string, n int, retryAfter time.Duration) {
	f.throttleWith(route, n, retryAfter, http.StatusServiceUnavailable)
}

func (f *Fake) throttleWith(route string, n int, retryAfter time.Duration, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.throttles == nil {
		f.throttles = map[string]*throttle{}
	}
	if n == 0 {
		delete(f.throttles, route)
		return
	}
	f.throttles[route] = &throttle{n: n, retryAfter: retryAfter, status: status}
}

// throttled answers a throttled request and reports whether it did.
func (f *Fake) throttled(w http.ResponseWriter, route string) bool {
	f.mu.Lock()
	t := f.throttles[route]
	if t == nil {
		f.mu.Unlock()
		return false
	}
	if t.n > 0 {
		if t.n--; t.n == 0 {
			delete(f.throttles, route)
		}
	}
	f.throttledN++
	f.mu.Unlock()
	w.Header().Set("Retry-After", strconv.Itoa(int((t.retryAfter+time.Second-1)/time.Second)))
	if t.status == http.StatusTooManyRequests {
		connectorError(w, t.status, "TooManyRequests", "Too many requests. Please retry after the time given in the Retry-After header.")
	} else {
		connectorError(w, t.status, "ServiceUnavailable", "The service is unavailable. Please retry after the time given in the Retry-After header.")
	}
	return true
}

// Throttled counts the requests answered 429 or 503 by Throttle or Unavailable.
func (f *Fake) Throttled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.throttledN
}
