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

// Application permissions, as the Entra admin center names them.
const (
	PermGroupMemberReadWrite = "GroupMember.ReadWrite.All"
	PermGroupReadWrite       = "Group.ReadWrite.All"
	PermUserRead             = "User.Read.All"
	PermRoleManagement       = "RoleManagement.ReadWrite.Directory"
)

// Error is a refusal from Microsoft Graph, with what support tickets need: the HTTP status,
// Graph's error code and the request id. Refusals that will not heal by retrying wrap
// bot.ErrForbidden or bot.ErrNotFound, so the engine fails the grant and tells people;
// the rest (throttling, outages, an expired token) are transient and retried.
type Error struct {
	Op         string // what pimbot was doing, e.g. "add member"
	Status     int    // HTTP status
	Code       string // Graph's error code, e.g. "Request_ResourceNotFound"
	Message    string // Graph's message (for people and logs; never branched on)
	RequestID  string // Graph's request-id, to quote to Microsoft support
	Permission string // the application permission this call needs (named on a 403)
	// RetryAfter is Graph's Retry-After (throttling, outages); -1 when absent.
	RetryAfter time.Duration
	kind       error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("graph: %s: HTTP %d %s: %s", e.Op, e.Status, e.Code, e.Message)
	if e.RequestID != "" {
		s += " (request-id " + e.RequestID + ")"
	}
	if e.Status == http.StatusForbidden {
		s += "; " + Refused403
		if e.Permission != "" {
			s += "; this call needs the application permission " + e.Permission
		}
	}
	return s
}

// Refused403 is how a 403 is worded: Graph gives the same Authorization_RequestDenied for a
// missing application permission, a group an app may not change (dynamic), a role-assignable
// group without RoleManagement.ReadWrite.Directory, a group in a restricted management
// administrative unit, and a guest the tenant's guest policy hides, so none of them is named
// as the cause.
const Refused403 = "Graph refused (permission, group type, role-assignable group, restricted administrative unit or guest policy)"

func (e *Error) Unwrap() error { return e.kind }

// Transient reports whether retrying may help (throttling, server errors, token expiry).
func (e *Error) Transient() bool { return e.kind == nil }

// RetryDelay is how long Graph asked us to wait before trying again (0: it did not say), for
// a job queue that wants to honour Retry-After beyond one call.
func (e *Error) RetryDelay() time.Duration { return max(e.RetryAfter, 0) }

// wrap turns what the SDK returned into our error. perm is the permission the call needs.
func wrap(op, perm string, err error) error {
	if err == nil {
		return nil
	}
	var od *odataerrors.ODataError
	var ae *abstractions.ApiError
	e := &Error{Op: op, Permission: perm, RetryAfter: -1}
	switch {
	case errors.As(err, &od):
		e.Status = od.ResponseStatusCode
		if me := od.GetErrorEscaped(); me != nil {
			e.Code, e.Message = deref(me.GetCode()), deref(me.GetMessage())
			if inner := me.GetInnerError(); inner != nil {
				e.RequestID = deref(inner.GetRequestId())
			}
		}
		e.fromHeaders(od.ResponseHeaders)
	case errors.As(err, &ae):
		e.Status, e.Message = ae.ResponseStatusCode, ae.Message
		e.fromHeaders(ae.ResponseHeaders)
	default:
		// Network errors and deadlines: transient. The deadline's own error stays
		// visible with errors.Is(err, context.DeadlineExceeded).
		return fmt.Errorf("graph: %s: %w", op, err)
	}
	switch {
	case e.Status == http.StatusForbidden:
		// Missing permission, a role-assignable group without RoleManagement.ReadWrite.Directory,
		// a dynamic group, a restricted management administrative unit, a guest policy.
		e.kind = bot.ErrForbidden
	case e.Status == http.StatusUnauthorized && e.Code == "Authorization_RequestDenied":
		e.kind = bot.ErrForbidden
	case e.Status == http.StatusNotFound:
		// No such group or user: it will not appear by retrying.
		e.kind = bot.ErrNotFound
	case e.Status == http.StatusBadRequest:
		// A change Graph will never accept: a synced or mail-enabled group, the last owner.
		e.kind = bot.ErrForbidden
	}
	return e
}

func (e *Error) fromHeaders(h *abstractions.ResponseHeaders) {
	if h == nil {
		return
	}
	if v := h.Get("request-id"); len(v) > 0 && e.RequestID == "" {
		e.RequestID = v[0]
	}
	e.RetryAfter = retryAfter(h.Get("retry-after"), time.Now())
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date. -1 when absent or junk.
func retryAfter(v []string, now time.Time) time.Duration {
	if len(v) == 0 {
		return -1
	}
	s := strings.TrimSpace(v[0])
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(s); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return -1
}

// maxRetryAfter caps what a Retry-After can make us wait inside one call; a longer pause is
// the job queue's business.
const maxRetryAfter = 5 * time.Minute

// retryable reports a failure worth retrying inside one call: throttling (429), server
// errors (500, 502, 503, 504) and network errors, an attempt's own timeout included (the
// caller stops when the call's context ends). Every call pimbot makes is safe to repeat:
// reads are reads, adding a holder again answers "already exists", removing again 404.
func retryable(err error) (retryAfter time.Duration, ok bool) {
	if err == nil {
		return 0, false
	}
	var e *Error
	if !errors.As(err, &e) {
		return -1, true // network error
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return e.RetryAfter, true
	}
	return 0, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// statusOf is the HTTP status of a Graph refusal, 0 for anything else.
func statusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// alreadyExists reports Graph's answer to adding someone who already holds the access.
//
// Graph gives this case no code of its own: it answers 400 with the generic code
// Request_BadRequest and the message "One or more added object references already exist
// for the following modified properties: 'members'." (or 'owners'). Status and code are
// checked first; the message is the only thing that tells this case from other 400s (a
// dynamic group, a malformed body), so the one text match pimbot makes lives here and
// nowhere else. If Graph ever rewords it, adds fail loudly (ErrForbidden) rather than
// succeeding silently.
func alreadyExists(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest && e.Code == "Request_BadRequest" &&
		strings.Contains(strings.ToLower(e.Message), "added object references already exist")
}

// lastOwner reports Graph's refusal to remove the last owner of a group: 400
// Request_BadRequest "The group must have at least one owner, hence this owner cannot be
// removed." (group-delete-owners; also when the only other owner is a service principal).
// Like alreadyExists, the message is all that tells it from other 400s.
func lastOwner(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest &&
		strings.Contains(strings.ToLower(e.Message), "at least one owner")
}

// notFound reports a 404: no such object, or (on a removal) not a holder.
func notFound(err error) bool { return statusOf(err) == http.StatusNotFound }
