package bot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"unicode"
	"unicode/utf8"
)

// Sentinel kinds. Branch on them with errors.Is; never on an error's text.
var (
	// ErrNotFound: the request (or user, or group) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the record changed between read and write; the caller may retry.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: an infrastructure dependency (Redis, the directory) failed; try again shortly.
	ErrUnavailable = errors.New("temporarily unavailable")
	// ErrForbidden: the directory refused an operation that will not heal by retrying.
	ErrForbidden = errors.New("forbidden")
	// ErrNotHeld: the directory says the user does not hold the access (Graph's 404 on a
	// removal). Within minutes of an add this may be replication lag, not the truth.
	ErrNotHeld = errors.New("not held")
	// ErrLastOwner: the directory refuses to remove the last owner of a group.
	ErrLastOwner = errors.New("last owner of the group")
	// ErrFenced: the job's lease was taken over by another claim; this claim must not act.
	ErrFenced = errors.New("lease taken over")
)

// OutageError says which dependency failed or did not answer (Slack's users.info, the
// directory, the database), so that people are told what was slow rather than a guess. It
// is ErrUnavailable (errors.Is), and wraps the cause.
type OutageError struct {
	Service string // for people: "Slack (users.info)", "the directory"
	Err     error
}

// Unavailable names the dependency that failed; err may be nil.
func Unavailable(service string, err error) error { return &OutageError{Service: service, Err: err} }

func (e *OutageError) Error() string {
	if e.Err == nil {
		return e.Service + ": " + ErrUnavailable.Error()
	}
	return e.Service + ": " + e.Err.Error()
}

func (e *OutageError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// TimedOut reports whether the dependency did not answer in time (rather than failed).
func (e *OutageError) TimedOut() bool {
	var t interface{ Timeout() bool } // net.Error, url.Error: an HTTP client's timeout
	return errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, os.ErrDeadlineExceeded) ||
		(errors.As(e.Err, &t) && t.Timeout())
}

// FieldError is a validation refusal tied to one field of the activation form,
// so a surface can show it next to that field (Slack's response_action: errors).
type FieldError struct {
	Field   string // one of the Field* constants
	Message string
}

// Fields of the activation form, as named in FieldError.
const (
	FieldGroup    = "group"
	FieldAccess   = "access"
	FieldDuration = "duration"
	FieldStart    = "start"
	FieldReason   = "reason"
	FieldTicket   = "ticket"
	FieldRequest  = "request"
)

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// PermissionError says that the person may not take this action, and who may.
type PermissionError struct {
	Action string // approve, deny, cancel, deactivate, extend, view
	Reason string // e.g. "only bob@example.com or carol@example.com may approve prod-db-admins"
}

func (e *PermissionError) Error() string { return "not allowed to " + e.Action + ": " + e.Reason }

// StateError says the request is in a state where the action makes no sense
// (a second click after a decision, cancel after it ended).
type StateError struct {
	ID     string
	State  State
	Action string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("request %s is %s; it can no longer be %s", e.ID, e.State, pastTense(e.Action))
}

func pastTense(action string) string {
	switch action {
	case "approve":
		return "approved"
	case "deny":
		return "denied"
	case "cancel":
		return "canceled"
	case "deactivate":
		return "deactivated"
	case "extend":
		return "extended"
	case "verify":
		return "verified"
	}
	return action + "ed"
}

// DuplicateError: the person already has an open request for this group and access.
type DuplicateError struct {
	ExistingID string
	State      State
}

func (e *DuplicateError) Error() string {
	if e.State == StateActive {
		return fmt.Sprintf("you already hold this access through request %s; extend it instead (extend %s)", e.ExistingID, e.ExistingID)
	}
	return fmt.Sprintf("you already have request %s open for this group and access (%s); cancel it first or wait for it", e.ExistingID, e.State)
}

// LimitError: a per-user abuse limit was hit.
type LimitError struct{ Message string }

func (e *LimitError) Error() string { return e.Message }

// Describe turns any error from the engine into words for the person who acted.
// Infrastructure failures become "try again shortly", never a stack trace.
func Describe(err error) string {
	if err == nil {
		return ""
	}
	var fe *FieldError
	var pe *PermissionError
	var se *StateError
	var de *DuplicateError
	var le *LimitError
	var oe *OutageError
	switch {
	case errors.As(err, &fe):
		return Capitalize(fe.Message)
	case errors.As(err, &pe):
		return "You can't " + pe.Action + " this: " + pe.Reason + "."
	case errors.As(err, &se):
		return Capitalize(se.Error()) + "."
	case errors.As(err, &de):
		return Capitalize(de.Error()) + "."
	case errors.As(err, &le):
		return le.Message
	case errors.Is(err, ErrNotFound):
		return "No such request. Use `status` to list yours."
	case errors.Is(err, ErrConflict):
		return "Someone else changed this request at the same moment; please look at its status and try again."
	case errors.As(err, &oe) && oe.TimedOut():
		return "Something went wrong on our side (" + oe.Service + " did not answer in time); nothing was changed. Please try again shortly."
	case errors.As(err, &oe):
		return "Something went wrong on our side (" + oe.Service + " failed); nothing was changed. Please try again shortly."
	default:
		return "Something went wrong on our side (the directory or the database did not answer); nothing was changed. Please try again shortly."
	}
}

// Capitalize upper-cases the first letter of a sentence, whatever its script (it works on
// runes, not bytes: "élan" becomes "Élan", never broken UTF-8).
func Capitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}
