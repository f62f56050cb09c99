// Package obs observes the outbound calls pimbot makes to chat platforms and Microsoft
// Graph: an http.RoundTripper that reports each call's service, operation, status and
// latency to an Observer. It depends on the standard library only, so every surface can
// use it; cmd/pimbot turns the observations into Prometheus metrics.
package obs

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Observer receives one finished outbound call. Status is the HTTP status code ("200",
// "429") or "error" when no response came back (connection refused, timeout, canceled).
// It must be safe for concurrent use and must not block.
type Observer interface {
	ObserveCall(service, operation, status string, d time.Duration)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(service, operation, status string, d time.Duration)

func (f ObserverFunc) ObserveCall(service, operation, status string, d time.Duration) {
	f(service, operation, status, d)
}

// Transport wraps Base and reports every round trip. One round trip is one attempt: a
// client that retries (the Graph SDK does, on 429) is seen attempt by attempt when its
// retry layer sits above this transport.
type Transport struct {
	Base      http.RoundTripper // nil: http.DefaultTransport
	Service   string            // "slack", "graph", "teams", "entra"
	Operation func(*http.Request) string
	Observer  Observer
}

// Wrap returns base instrumented for service, with the operation naming that fits it.
// A nil observer returns base unchanged.
func Wrap(base http.RoundTripper, service string, o Observer) http.RoundTripper {
	if o == nil {
		return base
	}
	op := RESTOperation
	if service == "slack" {
		op = SlackOperation
	}
	return &Transport{Base: base, Service: service, Operation: op, Observer: o}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	start := time.Now()
	resp, err := base.RoundTrip(r)
	if t.Observer != nil {
		status := "error"
		if err == nil && resp != nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		op := RESTOperation
		if t.Operation != nil {
			op = t.Operation
		}
		t.Observer.ObserveCall(t.Service, op(r), status, time.Since(start))
	}
	return resp, err
}

// SlackOperation names a Slack Web API call by its method: "chat.postMessage".
func SlackOperation(r *http.Request) string {
	p := strings.TrimSuffix(r.URL.Path, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if p == "" || len(p) > 64 || !isWord(p) {
		return "other"
	}
	return p
}

// RESTOperation names a REST call by its method and path, with every segment that looks
// like an identifier (object ids, e-mail addresses, conversation ids, numbers) replaced
// by {id}, so that the number of label values stays small:
// "POST /v1.0/groups/{id}/members/$ref", "POST /v3/conversations/{id}/activities".
func RESTOperation(r *http.Request) string {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	for i, s := range segs {
		if !keepSegment(s) {
			segs[i] = "{id}"
		}
	}
	if len(segs) > 8 {
		segs = append(segs[:8], "...")
	}
	return r.Method + " /" + strings.Join(segs, "/")
}

// keepSegment reports whether a path segment is a fixed name ("members", "$ref", "oauth2")
// rather than an identifier: it starts with a letter or $, holds only letters, digits and
// . _ - $, and at most two digits (object ids, GUIDs and timestamps have many).
func keepSegment(s string) bool {
	if s == "" || isVersion(s) {
		return true
	}
	if len(s) > 40 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z' || s[0] == '$') {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '$', c == '.', c == '_', c == '-':
		case c >= '0' && c <= '9':
			digits++
		default:
			return false
		}
	}
	return digits <= 2
}

// isVersion matches API versions such as v1.0, v3, beta.
func isVersion(s string) bool {
	if s == "beta" {
		return true
	}
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && s[i] != '.' {
			return false
		}
	}
	return true
}

func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
