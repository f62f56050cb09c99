package graphclient

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
	"github.com/pimbot/pimbot/bot"
)

// Error is a refusal from Microsoft Graph, with what support tickets need: the HTTP status,
// Graph's error code and the request id. Refusals that will not heal by retrying wrap
// bot.ErrForbidden or bot.ErrNotFound; the rest are transient.
type Error struct {
	Op         string // e.g. "add member"
	Status     int
	Code       string
	Message    string
	RequestID  string
	RetryAfter time.Duration // from Graph's Retry-After header (throttling, outages); -1 when absent
	kind       error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("graph: %s: HTTP %d %s: %s", e.Op, e.Status, e.Code, e.Message)
	if e.RequestID != "" {
		s += " (request-id " + e.RequestID + ")"
	}
	if e.Status == http.StatusForbidden {
		s += "; " + permissionHint(e.Op)
	}
	return s
}

func (e *Error) Unwrap() error { return e.kind }

// Transient reports whether retrying may help (throttling, server errors).
func (e *Error) Transient() bool { return e.kind == nil }

func permissionHint(op string) string {
	switch {
	case strings.Contains(op, "owner"):
		return "the app needs Group.ReadWrite.All (and RoleManagement.ReadWrite.Directory for a role-assignable group)"
	case strings.Contains(op, "member"):
		return "the app needs GroupMember.ReadWrite.All (and RoleManagement.ReadWrite.Directory for a role-assignable group)"
	case strings.Contains(op, "user"):
		return "the app needs User.Read.All"
	}
	return "the app needs GroupMember.Read.All"
}

// wrap turns what the SDK returned into our error. It never matches on free text except in
// alreadyExists, which isolates the one case where Graph gives nothing else to go on.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var od *odataerrors.ODataError
	var ae *abstractions.ApiError
	e := &Error{Op: op, RetryAfter: -1}
	switch {
	case errors.As(err, &od):
		e.Status = od.ResponseStatusCode
		if me := od.GetErrorEscaped(); me != nil {
			e.Code, e.Message = deref(me.GetCode()), deref(me.GetMessage())
			if inner := me.GetInnerError(); inner != nil {
				e.RequestID = deref(inner.GetRequestId())
			}
		}
		if h := od.ResponseHeaders; h != nil {
			if v := h.Get("request-id"); len(v) > 0 && e.RequestID == "" {
				e.RequestID = v[0]
			}
			e.RetryAfter = retryAfter(h.Get("retry-after"))
		}
	case errors.As(err, &ae):
		e.Status, e.Message = ae.ResponseStatusCode, ae.Message
		if ae.ResponseHeaders != nil {
			e.RetryAfter = retryAfter(ae.ResponseHeaders.Get("retry-after"))
		}
	default:
		return fmt.Errorf("graph: %s: %w", op, err) // network, timeout: transient
	}
	switch {
	case e.Status == http.StatusForbidden || e.Status == http.StatusUnauthorized && e.Code == "Authorization_RequestDenied":
		e.kind = bot.ErrForbidden
	case e.Status == http.StatusNotFound:
		e.kind = bot.ErrNotFound
	case e.Status == http.StatusBadRequest:
		e.kind = bot.ErrForbidden // a malformed or refused change (dynamic group, last owner) will not heal
	}
	return e
}

func retryAfter(v []string) time.Duration {
	if len(v) == 0 {
		return -1
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v[0])); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v[0]); err == nil {
		return max(time.Until(t), 0)
	}
	return -1
}

// retryable reports throttling and outages: 429, 503 and 504.
func retryable(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) && (e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout) {
		return e, true
	}
	return nil, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// alreadyExists reports Graph's answer to adding someone who already holds the access:
// 400 Request_BadRequest "One or more added object references already exist for the
// following modified properties: 'members'." Graph has no dedicated code for it.
func alreadyExists(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest && e.Code == "Request_BadRequest" &&
		strings.Contains(e.Message, "added object references already exist")
}

// notFound reports a 404 (removing someone who is not a holder is success).
func notFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}
