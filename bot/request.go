package bot

import (
	"crypto/rand"
	"strings"
	"time"
)

// Access is what a grant gives: membership or ownership of the group.
type Access string

const (
	Member Access = "member"
	Owner  Access = "owner"
)

// ParseAccess accepts "member" or "owner" (any case).
func ParseAccess(s string) (Access, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "member", "members":
		return Member, true
	case "owner", "owners":
		return Owner, true
	}
	return "", false
}

// State of a request. The first three are open; the rest are terminal and never change again.
type State string

const (
	StateVerifying State = "verifying" // waiting for the requester's step-up verification (MFA)
	StatePending   State = "pending"   // waiting for approval
	StateScheduled State = "scheduled" // approved (or needs none), waiting for its start time
	StateActive    State = "active"    // the directory holds the grant; removal is scheduled
	StateEnded     State = "ended"     // the grant was removed (expired or deactivated)
	StateDenied    State = "denied"
	StateCanceled  State = "canceled"
	StateTimedOut  State = "timed_out"
	StateFailed    State = "failed"  // the directory refused the grant for good
	StateApplied   State = "applied" // an extension whose time was added to its parent
)

// Terminal reports whether the state can never change again.
func (s State) Terminal() bool {
	switch s {
	case StateVerifying, StatePending, StateScheduled, StateActive:
		return false
	}
	return true
}

// Waiting reports whether the request waits for something before it starts (MFA, approval
// or its start time): what the max_pending limit counts.
func (s State) Waiting() bool {
	return s == StateVerifying || s == StatePending || s == StateScheduled
}

// Label is the state in words for people.
func (s State) Label() string {
	switch s {
	case StateVerifying:
		return "waiting for MFA"
	case StatePending:
		return "pending approval"
	case StateScheduled:
		return "approved, starts soon"
	case StateTimedOut:
		return "timed out"
	}
	return string(s)
}

// GrantState is what the directory holds for a request, apart from the request's own state.
type GrantState string

const (
	GrantNone     GrantState = ""         // nothing was asked of the directory
	GrantAdding   GrantState = "adding"   // the add was asked for (or is about to be): the directory may hold it
	GrantHeld     GrantState = "held"     // the directory confirmed the add
	GrantRemoving GrantState = "removing" // the removal is under way
	GrantRemoved  GrantState = "removed"  // the directory confirmed the removal (or never held it)
)

// Kinds of request.
const (
	KindActivate = "activate"
	KindExtend   = "extend"
)

// User is a directory user.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email,omitempty"`
	UPN   string `json:"upn,omitempty"`
	Name  string `json:"name,omitempty"`
	// Disabled: the directory account is disabled (Entra accountEnabled: false); such a
	// person can neither request nor approve.
	Disabled bool `json:"disabled,omitempty"`
}

// Display is the name to show people.
func (u User) Display() string {
	switch {
	case u.Name != "":
		return u.Name
	case u.Email != "":
		return u.Email
	case u.UPN != "":
		return u.UPN
	}
	return u.ID
}

// Handle is the e-mail (or UPN, or id) that identifies the user in messages.
func (u User) Handle() string {
	switch {
	case u.Email != "":
		return u.Email
	case u.UPN != "":
		return u.UPN
	}
	return u.ID
}

// Decision is one approver's vote.
type Decision struct {
	By      User      `json:"by"`
	At      time.Time `json:"at"`
	Surface string    `json:"surface,omitempty"`
}

// Request is one activation (or extension) request and the grant it leads to.
type Request struct {
	ID       string `json:"id"`
	Version  int64  `json:"version"`
	Kind     string `json:"kind"`
	ParentID string `json:"parent_id,omitempty"` // for an extension: the active request it extends

	Group   string `json:"group"`    // policy name
	GroupID string `json:"group_id"` // directory object id
	Access  Access `json:"access"`

	Requester User   `json:"requester"`
	Surface   string `json:"surface"` // where it was made: slack, teams, shell

	Reason   string        `json:"reason,omitempty"`
	Ticket   string        `json:"ticket,omitempty"`
	Duration time.Duration `json:"duration"`
	Start    time.Time     `json:"start,omitempty"` // requested start; zero = as soon as approved

	State             State      `json:"state"`
	ApprovalsRequired int        `json:"approvals_required"`
	Approvals         []Decision `json:"approvals,omitempty"`
	Denial            *Decision  `json:"denial,omitempty"`
	DenyReason        string     `json:"deny_reason,omitempty"`
	EndedBy           *Decision  `json:"ended_by,omitempty"` // who deactivated or canceled early

	CreatedAt   time.Time `json:"created_at"`
	DecidedAt   time.Time `json:"decided_at,omitempty"`
	ActivatedAt time.Time `json:"activated_at,omitempty"`
	EndsAt      time.Time `json:"ends_at,omitempty"` // while active: when removal is due
	EndedAt     time.Time `json:"ended_at,omitempty"`
	EndReason   string    `json:"end_reason,omitempty"` // expired, deactivated, canceled, timed out...

	MFAVerifiedAt time.Time `json:"mfa_verified_at,omitempty"` // when the requester passed step-up MFA

	Grant   GrantState `json:"grant,omitempty"`    // what the directory holds
	AddedAt time.Time  `json:"added_at,omitempty"` // when the add was first asked for (replication lag is counted from it)
	// PIM is set with the intent to add when the grant is made through PIM for Groups (the
	// group's mode: pim): it is then ended through PIM too, whatever the policy says later.
	PIM bool `json:"pim,omitempty"`

	// AutoApproval is set when the on-call rule (auto_approve) approved the request instead
	// of a person; OnCallNote says why a request of such a group went to the approvers.
	AutoApproval *AutoApproval `json:"auto_approval,omitempty"`
	OnCallNote   string        `json:"on_call_note,omitempty"`

	Extensions []string `json:"extensions,omitempty"` // applied extension request ids
	Failures   int      `json:"failures,omitempty"`   // consecutive directory failures of the pending job
	LastError  string   `json:"last_error,omitempty"`
}

// Clone returns a deep copy, so a transition never mutates what it read.
func (r *Request) Clone() *Request {
	c := *r
	c.Approvals = append([]Decision(nil), r.Approvals...)
	c.Extensions = append([]string(nil), r.Extensions...)
	if r.Denial != nil {
		d := *r.Denial
		c.Denial = &d
	}
	if r.EndedBy != nil {
		d := *r.EndedBy
		c.EndedBy = &d
	}
	if r.AutoApproval != nil {
		aa := *r.AutoApproval
		if aa.Review != nil {
			rv := *aa.Review
			aa.Review = &rv
		}
		c.AutoApproval = &aa
	}
	return &c
}

// Ending reports whether an active grant is being removed: someone ended it early (EndedBy;
// its end job is due now, or at the earliest moment PIM allows) or its removal is under way
// (GrantRemoving). It can no longer be extended or deactivated. Both are typed fields: the
// free-text EndReason only says why, for people.
func (r *Request) Ending() bool {
	return r.State == StateActive && (r.EndedBy != nil || r.Grant == GrantRemoving)
}

// ApprovedBy reports whether userID already approved.
func (r *Request) ApprovedBy(userID string) bool {
	for _, a := range r.Approvals {
		if a.By.ID == userID {
			return true
		}
	}
	return false
}

// OpenKey identifies the one open request a person may have per group and access.
func (r *Request) OpenKey() string {
	return r.Requester.ID + "|" + r.GroupID + "|" + string(r.Access)
}

const idAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// NewID returns a short, unambiguous, random request id such as "R7KX2M9Q".
func NewID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b[:])
}

// NormalizeID upper-cases a typed id and strips a leading "request " or "#".
func NormalizeID(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "request "), "#")
	return strings.ToUpper(strings.TrimSpace(s))
}

// ValidID reports whether s has the shape of a request id (so junk never reaches Redis keys).
func ValidID(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(idAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
}
