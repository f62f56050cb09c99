package bot

import (
	"errors"
	"sort"
	"strings"
	"time"
)

// Group is one group's policy after defaults were applied.
type Group struct {
	Name                 string
	ID                   string
	Description          string
	Access               []Access
	Eligible             []string // user e-mails/UPNs/ids, or group:<mail|id>
	RequireApproval      bool
	Approvers            []string
	ApprovalsRequired    int
	AllowSelfApproval    bool
	RequireJustification bool
	RequireTicket        bool
	RequireMFA           bool
	MFAFlow              string // auth_code (a browser sign-in) or device_code (no public callback URL)
	MinDuration          time.Duration
	DefaultDuration      time.Duration
	MaxDuration          time.Duration
	PendingTimeout       time.Duration
	ReminderBefore       time.Duration
	ApprovalChannel      map[string]string // surface -> channel id
	StandingAccess       string            // ignore | report | remove
	Mode                 string            // direct ($ref membership) | pim (PIM for Groups assignments with an expiration)
	AutoApprove          *AutoApprove      // approval for whoever is on call; nil: none
	Line                 int               // where the group starts in the file
}

// Allows reports whether the group lets people activate this access.
func (g *Group) Allows(a Access) bool {
	for _, x := range g.Access {
		if x == a {
			return true
		}
	}
	return false
}

// Settings are process-wide knobs of the policy file.
type Settings struct {
	Retention         time.Duration // how long finished requests are kept
	StartTolerance    time.Duration // how far in the past a start time may be
	RequestsPerMinute int           // per user; 0 = unlimited
	MaxPending        int           // requests waiting (MFA, approval, start) per user; 0 = unlimited
	Timezone          *time.Location
	MFATimeout        time.Duration // how long a requester has to complete step-up MFA
	IdentityBinding   string        // email (chat profile e-mail) or entra_signin (a one-time sign-in)
	// BindingExceptions maps a chat profile e-mail (lower case) to the directory mail or UPN of
	// its owner, for the people whose chat address is not their directory one
	// (identity_binding_exceptions). Every other binding needs the two to be equal.
	BindingExceptions map[string]string
	// AuditChannel is, per surface (slack, teams), a channel that receives a one-line summary
	// of each audit-worthy event; none when unset.
	AuditChannel map[string]string
}

// SeedUser and SeedGroup fill the local directory (used without Graph credentials).
type SeedUser struct {
	ID, Email, UPN, Name string
	Disabled             bool // the account is disabled (Entra accountEnabled: false)
}

type SeedGroup struct {
	ID, Mail, Name string
	Members        []string // user e-mails/ids or group:<mail|id>
	Owners         []string
}

// Policy is the validated policy file.
type Policy struct {
	Source    string
	Settings  Settings
	Groups    []*Group
	Users     []SeedUser
	DirGroups []SeedGroup
	Rotas     []SeedRota // local on-call rotas (provider local)
	byName    map[string]*Group
	byID      map[string]*Group
}

// NewPolicy starts an empty policy read from source, with the default settings (the policy
// file reader fills it).
func NewPolicy(source string) *Policy {
	return &Policy{Source: source, Settings: DefaultSettings(), byName: map[string]*Group{}, byID: map[string]*Group{}}
}

// DefaultSettings are the settings of a policy file that sets none.
func DefaultSettings() Settings {
	return Settings{Retention: 30 * 24 * time.Hour, StartTolerance: 5 * time.Minute, RequestsPerMinute: 10, MaxPending: 5,
		Timezone: time.UTC, MFATimeout: 10 * time.Minute, IdentityBinding: "email"}
}

// Errors of AddGroup.
var (
	ErrGroupNameTaken = errors.New("a group of that name exists already")
	ErrGroupIDTaken   = errors.New("a group with that id exists already")
)

// AddGroup adds a group to the policy, after those added before; a second group with the
// same name or id is refused (ErrGroupNameTaken, ErrGroupIDTaken).
func (p *Policy) AddGroup(g *Group) error {
	if _, dup := p.byName[strings.ToLower(g.Name)]; dup {
		return ErrGroupNameTaken
	}
	if _, dup := p.byID[strings.ToLower(g.ID)]; dup {
		return ErrGroupIDTaken
	}
	p.byName[strings.ToLower(g.Name)] = g
	p.byID[strings.ToLower(g.ID)] = g
	p.Groups = append(p.Groups, g)
	return nil
}

// Group finds a group by name (case-insensitive) or object id.
func (p *Policy) Group(ref string) (*Group, bool) {
	k := strings.ToLower(strings.TrimSpace(ref))
	if g, ok := p.byName[k]; ok {
		return g, true
	}
	g, ok := p.byID[k]
	return g, ok
}

// GroupNames lists the group names in file order.
func (p *Policy) GroupNames() []string {
	out := make([]string, len(p.Groups))
	for i, g := range p.Groups {
		out[i] = g.Name
	}
	return out
}

// SortedAccess lists access kinds in a stable order.
func SortedAccess(xs []Access) []Access {
	out := append([]Access(nil), xs...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Owns reports whether the directory user u owns the chat account whose profile e-mail (as the
// chat platform vouches for it) is chatEmail: it is their mail or UPN, or the operator listed
// the pair in identity_binding_exceptions.
func (s Settings) Owns(chatEmail string, u User) bool {
	e := strings.ToLower(strings.TrimSpace(chatEmail))
	if e == "" {
		return false
	}
	if to, ok := s.BindingExceptions[e]; ok {
		e = to
	}
	return strings.EqualFold(e, u.Email) || strings.EqualFold(e, u.UPN)
}
