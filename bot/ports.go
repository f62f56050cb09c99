package bot

import (
	"context"
	"time"
)

// Clock is injected so that tests of expiry never sleep for minutes.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

// Job kinds run by the worker. Their handlers are idempotent.
const (
	JobActivate = "activate" // add the grant at its start time
	JobEnd      = "end"      // remove the grant at its end (or at once when deactivated)
	JobTimeout  = "timeout"  // a pending request that nobody decided
	JobRemind   = "remind"   // tell the requester the end is near
	JobNotify   = "notify"   // deliver one event to one surface
	JobMFAPoll  = "mfa_poll" // ask Entra whether a device-code sign-in is done
	JobReview   = "review"   // remind the approvers, once a day, of an automatic approval nobody reviewed
)

// Job is one unit of durable, scheduled work.
type Job struct {
	ID        string    `json:"id"` // deterministic for grant jobs: "<kind>:<request id>"
	Kind      string    `json:"kind"`
	RequestID string    `json:"request_id"`
	Due       time.Time `json:"due"`
	Attempt   int       `json:"attempt,omitempty"`
	Notifier  string    `json:"notifier,omitempty"` // for notify jobs
	Event     *Event    `json:"event,omitempty"`    // for notify jobs
}

// JobID is the id of the grant job of a kind for a request.
func JobID(kind, requestID string) string { return kind + ":" + requestID }

// Claimed is a job handed to one worker under a lease, with the request it concerns
// (read in the same round trip; nil if the request no longer exists).
type Claimed struct {
	Job        Job
	Request    *Request
	TakenOver  bool // the lease of an earlier claim had run out
	LeaseUntil time.Time
	// Token fences this claim: a commit, ack, retry or release of the job carries it and is
	// refused once another claim has taken the job over (the lease ran out meanwhile).
	Token string
	// Err is set when the job or its request could not be decoded (a poison row: a record
	// written by another build, or edited by hand). The store has already moved the job to
	// the dead-letter set; the engine only raises the alert.
	Err error
}

// Lease names one claim of a job: its id and the claim's fencing token.
type Lease struct {
	JobID string
	Token string
}

// Lease is the claim's fencing reference.
func (c Claimed) Lease() Lease { return Lease{JobID: c.Job.ID, Token: c.Token} }

// Put writes one request record if its stored version is still Expect
// (0: the record must not exist yet). The record is stored with Version = Expect+1.
type Put struct {
	Request *Request
	Expect  int64
}

// Tx is everything one transition writes, applied atomically or not at all.
type Tx struct {
	Puts       []Put
	Schedule   []Job    // add or move jobs (by id) in the due set
	Unschedule []string // job ids to drop from the due set (and their leases)
	// Fence, when set, makes the whole tx conditional on that claim still holding its job's
	// lease (ErrFenced otherwise, nothing written). It only checks: the job stays leased
	// unless it is also in Ack.
	Fence      *Lease
	Ack        []Lease // claimed jobs that are done; each is acknowledged only while its claim holds the lease
	OpenLock   []Lock  // open keys to take (*DuplicateError if held by another request)
	OpenUnlock []Lock  // open keys to release (only if still held by that request)
	Audit      []AuditRecord
	Limits     *Limits // checked before anything is written (new requests only)
}

// Lock is the one open request a person may have per group and access (or per grant, for extensions).
type Lock struct {
	Key       string
	RequestID string
	UserID    string
}

// Limits are per-user abuse limits checked atomically with a new request.
type Limits struct {
	UserID    string
	PerMinute int   // requests per minute; 0 = unlimited
	MaxOpen   int   // open requests at once; 0 = unlimited
	Minute    int64 // the current minute (unix seconds / 60) from the engine's clock
}

// Store keeps requests and the job queue. Every Commit is one atomic step.
type Store interface {
	Get(ctx context.Context, id string) (*Request, error) // ErrNotFound
	// ListByUser returns the user's requests, newest first.
	ListByUser(ctx context.Context, userID string, limit int) ([]*Request, error)
	// Commit applies tx atomically. It returns ErrConflict if a Put's version check fails,
	// *DuplicateError if an open lock is held by another request.
	Commit(ctx context.Context, tx *Tx) error
	// CommitAll applies each tx as Commit does, each on its own (one refused does not stop the
	// others), in one round trip: a group commit. The errors are in the order of txs.
	CommitAll(ctx context.Context, txs []*Tx) []error
	// Claim leases up to limit due jobs (due <= now, or whose lease ran out) until now+lease.
	Claim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Claimed, error)
	// NextDue is the due time of the earliest job, or zero if none.
	NextDue(ctx context.Context) (time.Time, error)
	// Retry puts a claimed job back in the due set at the given time with Attempt+1.
	// It returns ErrFenced if the claim no longer holds the job's lease.
	Retry(ctx context.Context, l Lease, job Job, at time.Time) error
	// Release hands claimed jobs back (due now) without running them (graceful shutdown);
	// a job whose claim was taken over meanwhile is left to its new holder.
	Release(ctx context.Context, leases []Lease) error
	// AuditSince reads the audit trail from since, oldest first.
	AuditSince(ctx context.Context, since time.Time, limit int) ([]AuditRecord, error)
	// OpenRequests maps every open key (requester|group id|access, ext|parent id) to its open
	// request id, and every review key (review|group id|request id) of an automatic approval
	// that no approver has reviewed yet to its request id.
	OpenRequests(ctx context.Context) (map[string]string, error)
	Ping(ctx context.Context) error
}

// KV is a small persisted map for what surfaces must keep across restarts
// (Slack message timestamps, Teams conversation references, identity caches).
type KV interface {
	GetValue(ctx context.Context, key string) (string, bool, error)
	SetValue(ctx context.Context, key, value string, ttl time.Duration) error
	DeleteValue(ctx context.Context, key string) error
	// PutIfAbsent sets key only if it does not exist (dedupe of retried or replayed deliveries).
	PutIfAbsent(ctx context.Context, key, value string, ttl time.Duration) (bool, error)
}

// Directory is the identity directory (Entra ID through Microsoft Graph, or the local one).
// Errors that will not heal by retrying wrap ErrForbidden or ErrNotFound.
type Directory interface {
	// ResolveUser finds a user by e-mail, UPN or object id. A disabled account is returned
	// with Disabled set (not as an error), so callers can say why it may not act.
	ResolveUser(ctx context.Context, ref string) (User, error)
	// InGroup reports whether the user is a member of the group (by mail or id), transitively.
	InGroup(ctx context.Context, userID, groupRef string) (bool, error)
	// Holds reports whether the user holds the access directly (not through a nested group).
	Holds(ctx context.Context, groupID, userID string, access Access) (bool, error)
	// Add makes the user a member (or owner); adding a holder is success.
	Add(ctx context.Context, groupID, userID string, access Access) error
	// Remove takes the access away. When the directory answers that the user does not hold
	// it, the error wraps ErrNotHeld: final for an old grant, but possibly replication lag
	// within minutes of the add. Removing the last owner wraps ErrLastOwner.
	Remove(ctx context.Context, groupID, userID string, access Access) error
}

// Lagging is implemented by a directory that says how long a write may stay invisible to its
// reads and deletes: Entra replicates directory writes, and for minutes after an add a
// lagging replica may answer "not a member". A directory that does not implement it is
// assumed to lag DefaultReplicationLag; one that answers 0 is consistent at once.
type Lagging interface {
	ReplicationLag() time.Duration
}

// MemberLister is what only some directories can do: list who holds a group now.
type MemberLister interface {
	// Holders lists the users (never service principals or nested groups) who hold the
	// access directly.
	Holders(ctx context.Context, groupID string, access Access) ([]User, error)
}

// Notifier is a surface that tells people about events (Slack, Teams, the shell).
type Notifier interface {
	Name() string
	Notify(ctx context.Context, ev Event) error
}

// Event types, one per transition people hear about.
const (
	EvMFARequired    = "mfa_required"   // the requester must verify with Microsoft before anything else
	EvSubmitted      = "submitted"      // pending approval (or none needed): ask the approvers, tell the requester
	EvApprovalAdded  = "approval_added" // one vote of a quorum
	EvApproved       = "approved"       // approved; activation scheduled
	EvDenied         = "denied"
	EvCanceled       = "canceled"
	EvTimedOut       = "timed_out"
	EvActivated      = "activated"
	EvReminder       = "reminder"
	EvEnded          = "ended"
	EvExtended       = "extended"        // an approved extension moved the end of its parent
	EvFailed         = "failed"          // the directory refused the grant for good
	EvDelayed        = "delayed"         // the directory is failing; we keep trying
	EvRemovalFailing = "removal_failing" // alert: removal keeps failing; we keep retrying
	EvReviewed       = "reviewed"        // an approver looked at an automatic (on-call) approval: "looks good"
	EvReviewDue      = "review_due"      // daily: an automatic approval is still not reviewed
)

// Event is what happened to a request, for the Notifier and the audit trail.
type Event struct {
	Type    string    `json:"type"`
	Request *Request  `json:"request"` // snapshot after the transition
	Parent  *Request  `json:"parent,omitempty"`
	Actor   *User     `json:"actor,omitempty"`
	At      time.Time `json:"at"`
	Detail  string    `json:"detail,omitempty"` // deny reason, error text for alerts
	// Chat is the chat account an identity-binding event is about (EvBound, EvBindRefused).
	Chat *ChatAccount `json:"chat,omitempty"`
	// ManagedBy names what grants the access of an EvDriftElsewhere finding instead of
	// pimbot: `PIM`, `access package "Prod on-call"`.
	ManagedBy string `json:"managed_by,omitempty"`
}

// AuditRecord is one line of the audit trail.
type AuditRecord struct {
	At        time.Time `json:"at"`
	Type      string    `json:"type"`
	RequestID string    `json:"request_id,omitempty"`
	Group     string    `json:"group,omitempty"`
	Access    Access    `json:"access,omitempty"`
	Subject   string    `json:"subject,omitempty"` // the requester
	Actor     string    `json:"actor,omitempty"`   // who acted (may equal subject; "pimbot" for jobs)
	Surface   string    `json:"surface,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}
