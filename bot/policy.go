package bot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
	byName    map[string]*Group
	byID      map[string]*Group
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

// LoadPolicyFile reads and validates a policy file.
func LoadPolicyFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return ParsePolicy(path, data)
}

// PolicyError names the file, the line and the field that is wrong.
type PolicyError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *PolicyError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

type parser struct{ file string }

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &PolicyError{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// fields checks a mapping node's keys against the allowed ones and returns key -> value node.
func (p *parser) fields(n *yaml.Node, path string, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, path, "expected a mapping (key: value lines)")
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ok := false
		for _, a := range allowed {
			if k.Value == a {
				ok = true
				break
			}
		}
		if !ok {
			return nil, p.errf(k, join(path, k.Value), "unknown key; allowed here: %s", strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, p.errf(k, join(path, k.Value), "given twice")
		}
		out[k.Value] = v
	}
	return out, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, field, "expected a single value")
	}
	return strings.TrimSpace(n.Value), nil
}

func (p *parser) boolean(n *yaml.Node, field string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		return false, p.errf(n, field, "%q is not true or false", n.Value)
	}
	return b, nil
}

func (p *parser) integer(n *yaml.Node, field string) (int, error) {
	var i int
	if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
		return 0, p.errf(n, field, "%q is not a whole number", n.Value)
	}
	return i, nil
}

func (p *parser) duration(n *yaml.Node, field string) (time.Duration, error) {
	s, err := p.str(n, field)
	if err != nil {
		return 0, err
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, p.errf(n, field, "%v", err)
	}
	if d < 0 {
		return 0, p.errf(n, field, "must not be negative")
	}
	return d, nil
}

func (p *parser) list(n *yaml.Node, field string) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode { // a single value is a list of one
		s, err := p.str(n, field)
		return []string{s}, err
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, field, "expected a list, e.g. [a, b]")
	}
	var out []string
	for _, c := range n.Content {
		s, err := p.str(c, field)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, p.errf(c, field, "empty entry")
		}
		out = append(out, s)
	}
	return out, nil
}

// groupKeys are the keys a group (and defaults, except name/id/description) may set.
var groupKeys = []string{
	"access", "eligible", "require_approval", "approvers", "approvals_required",
	"allow_self_approval", "require_justification", "require_ticket", "require_mfa", "mfa_flow",
	"min_duration", "default_duration", "max_duration", "pending_timeout", "reminder_before",
	"approval_channel", "standing_access",
}

// builtinDefaults are what a group gets when neither it nor defaults: says otherwise.
func builtinDefaults() Group {
	return Group{
		Access:               []Access{Member},
		RequireApproval:      true,
		ApprovalsRequired:    1,
		RequireJustification: true,
		MinDuration:          5 * time.Minute,
		DefaultDuration:      time.Hour,
		MaxDuration:          8 * time.Hour,
		PendingTimeout:       24 * time.Hour,
		ReminderBefore:       10 * time.Minute,
		StandingAccess:       "report",
		MFAFlow:              "auth_code",
		ApprovalChannel:      map[string]string{},
	}
}

// applyGroupKeys sets g's fields from the given keys (used for defaults and each group).
func (p *parser) applyGroupKeys(g *Group, f map[string]*yaml.Node, path string) error {
	var err error
	for _, k := range groupKeys {
		n, ok := f[k]
		if !ok {
			continue
		}
		field := join(path, k)
		switch k {
		case "access":
			var xs []string
			if xs, err = p.list(n, field); err != nil {
				return err
			}
			g.Access = nil
			for _, x := range xs {
				a, ok := ParseAccess(x)
				if !ok {
					return p.errf(n, field, "%q is not an access kind; use member, owner or both", x)
				}
				g.Access = append(g.Access, a)
			}
			if len(g.Access) == 0 {
				return p.errf(n, field, "must allow member, owner or both")
			}
		case "eligible":
			g.Eligible, err = p.list(n, field)
		case "approvers":
			g.Approvers, err = p.list(n, field)
		case "require_approval":
			g.RequireApproval, err = p.boolean(n, field)
		case "allow_self_approval":
			g.AllowSelfApproval, err = p.boolean(n, field)
		case "require_justification":
			g.RequireJustification, err = p.boolean(n, field)
		case "require_ticket":
			g.RequireTicket, err = p.boolean(n, field)
		case "require_mfa":
			g.RequireMFA, err = p.boolean(n, field)
		case "mfa_flow":
			var s string
			if s, err = p.str(n, field); err == nil {
				if s != "auth_code" && s != "device_code" {
					err = p.errf(n, field, "%q is not allowed; use auth_code or device_code", s)
				}
				g.MFAFlow = s
			}
		case "approvals_required":
			if g.ApprovalsRequired, err = p.integer(n, field); err == nil && g.ApprovalsRequired < 1 {
				err = p.errf(n, field, "must be at least 1")
			}
		case "min_duration":
			g.MinDuration, err = p.duration(n, field)
		case "default_duration":
			g.DefaultDuration, err = p.duration(n, field)
		case "max_duration":
			g.MaxDuration, err = p.duration(n, field)
		case "pending_timeout":
			g.PendingTimeout, err = p.duration(n, field)
		case "reminder_before":
			g.ReminderBefore, err = p.duration(n, field)
		case "standing_access":
			var s string
			if s, err = p.str(n, field); err == nil {
				switch s {
				case "ignore", "report", "remove":
					g.StandingAccess = s
				default:
					err = p.errf(n, field, "%q is not allowed; use ignore, report or remove", s)
				}
			}
		case "approval_channel":
			var cf map[string]*yaml.Node
			if cf, err = p.fields(n, field, "slack", "teams", "shell"); err != nil {
				return err
			}
			ch := map[string]string{}
			for k, v := range g.ApprovalChannel {
				ch[k] = v
			}
			for surface, v := range cf {
				if ch[surface], err = p.str(v, join(field, surface)); err != nil {
					return err
				}
			}
			g.ApprovalChannel = ch
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ParsePolicy validates a policy file's bytes; name is used in error messages.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	p := &parser{file: name}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, &PolicyError{File: name, Msg: "the file is empty; it needs at least a groups: list"}
	} else if err != nil {
		return nil, &PolicyError{File: name, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &PolicyError{File: name, Msg: "the file is empty; it needs at least a groups: list"}
	}
	top, err := p.fields(doc.Content[0], "", "settings", "defaults", "groups", "directory")
	if err != nil {
		return nil, err
	}
	pol := &Policy{Source: name, byName: map[string]*Group{}, byID: map[string]*Group{}}
	pol.Settings = Settings{Retention: 30 * 24 * time.Hour, StartTolerance: 5 * time.Minute, RequestsPerMinute: 10, MaxPending: 5, Timezone: time.UTC,
		MFATimeout: 10 * time.Minute, IdentityBinding: "email"}
	if n, ok := top["settings"]; ok {
		if err := p.settings(n, &pol.Settings); err != nil {
			return nil, err
		}
	}
	def := builtinDefaults()
	if n, ok := top["defaults"]; ok {
		f, err := p.fields(n, "defaults", groupKeys...)
		if err != nil {
			return nil, err
		}
		if err := p.applyGroupKeys(&def, f, "defaults"); err != nil {
			return nil, err
		}
	}
	gn, ok := top["groups"]
	if !ok || gn.Kind != yaml.SequenceNode || len(gn.Content) == 0 {
		return nil, p.errf(gn, "groups", "at least one group is needed (a list of - name: ... id: ...)")
	}
	for i, n := range gn.Content {
		g, err := p.group(n, i, def)
		if err != nil {
			return nil, err
		}
		path := fmt.Sprintf("groups[%d]", i)
		if _, dup := pol.byName[strings.ToLower(g.Name)]; dup {
			return nil, p.errf(n, path+".name", "group %q is named twice", g.Name)
		}
		if _, dup := pol.byID[strings.ToLower(g.ID)]; dup {
			return nil, p.errf(n, path+".id", "group id %q is used twice", g.ID)
		}
		pol.byName[strings.ToLower(g.Name)] = g
		pol.byID[strings.ToLower(g.ID)] = g
		pol.Groups = append(pol.Groups, g)
	}
	if n, ok := top["directory"]; ok {
		if err := p.directory(n, pol); err != nil {
			return nil, err
		}
	}
	return pol, nil
}

func (p *parser) settings(n *yaml.Node, s *Settings) error {
	f, err := p.fields(n, "settings", "retention", "start_tolerance", "requests_per_minute", "max_pending", "timezone", "mfa_timeout", "identity_binding", "identity_binding_exceptions", "audit_channel")
	if err != nil {
		return err
	}
	for k, v := range f {
		field := "settings." + k
		switch k {
		case "retention":
			s.Retention, err = p.duration(v, field)
			if err == nil && s.Retention < time.Hour {
				err = p.errf(v, field, "must be at least 1h")
			}
		case "start_tolerance":
			s.StartTolerance, err = p.duration(v, field)
		case "requests_per_minute":
			s.RequestsPerMinute, err = p.integer(v, field)
		case "max_pending":
			s.MaxPending, err = p.integer(v, field)
		case "mfa_timeout":
			if s.MFATimeout, err = p.duration(v, field); err == nil && (s.MFATimeout < time.Minute || s.MFATimeout > time.Hour) {
				err = p.errf(v, field, "must be between 1m and 1h")
			}
		case "identity_binding":
			var b string
			if b, err = p.str(v, field); err == nil {
				if b != "email" && b != "entra_signin" {
					err = p.errf(v, field, "%q is not allowed; use email or entra_signin", b)
				}
				s.IdentityBinding = b
			}
		case "identity_binding_exceptions":
			if v.Kind != yaml.MappingNode {
				return p.errf(v, field, "must map chat e-mail addresses to directory addresses, e.g. {alice.smith@chat.example: alice@contoso.com}")
			}
			s.BindingExceptions = map[string]string{}
			for j := 0; j+1 < len(v.Content); j += 2 {
				kn, vn := v.Content[j], v.Content[j+1]
				var to string
				if to, err = p.str(vn, join(field, kn.Value)); err != nil {
					return err
				}
				if !strings.Contains(kn.Value, "@") || !strings.Contains(to, "@") {
					return p.errf(kn, join(field, kn.Value), "both sides must be e-mail addresses (chat profile e-mail: directory mail or UPN)")
				}
				s.BindingExceptions[strings.ToLower(strings.TrimSpace(kn.Value))] = strings.ToLower(strings.TrimSpace(to))
			}
		case "audit_channel":
			var cf map[string]*yaml.Node
			if cf, err = p.fields(v, field, "slack", "teams"); err != nil {
				return err
			}
			s.AuditChannel = map[string]string{}
			for surface, cv := range cf {
				var ch string
				if ch, err = p.str(cv, join(field, surface)); err != nil {
					return err
				}
				if ch == "" {
					return p.errf(cv, join(field, surface), "must not be empty (leave the key out for no audit channel)")
				}
				s.AuditChannel[surface] = ch
			}
		case "timezone":
			var name string
			if name, err = p.str(v, field); err == nil {
				if s.Timezone, err = time.LoadLocation(name); err != nil {
					err = p.errf(v, field, "unknown time zone %q (use an IANA name such as Europe/Paris or UTC)", name)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	if s.RequestsPerMinute < 0 || s.MaxPending < 0 {
		return p.errf(n, "settings", "limits must not be negative (0 means unlimited)")
	}
	return nil
}

func (p *parser) group(n *yaml.Node, i int, def Group) (*Group, error) {
	path := fmt.Sprintf("groups[%d]", i)
	if n.Kind == yaml.MappingNode { // name the group in every message about it
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "name" && n.Content[j+1].Kind == yaml.ScalarNode && n.Content[j+1].Value != "" {
				path = fmt.Sprintf("groups[%d] (%s)", i, n.Content[j+1].Value)
			}
		}
	}
	keys := append([]string{"name", "id", "description"}, groupKeys...)
	f, err := p.fields(n, path, keys...)
	if err != nil {
		return nil, err
	}
	g := def
	g.Access = append([]Access(nil), def.Access...)
	g.Line = n.Line
	for _, k := range []string{"name", "id"} {
		v, ok := f[k]
		if !ok {
			return nil, p.errf(n, join(fmt.Sprintf("groups[%d]", i), k), "missing; every group needs a name and an id (its Entra object id)")
		}
		s, err := p.str(v, join(path, k))
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, p.errf(v, join(path, k), "must not be empty")
		}
		if k == "name" {
			g.Name = s
		} else {
			g.ID = s
		}
	}
	if strings.ContainsAny(g.Name, " \t<>&|") {
		return nil, p.errf(f["name"], path+".name", "%q: a group name is one word people can type (letters, digits, - and _)", g.Name)
	}
	path = fmt.Sprintf("groups[%d] (%s)", i, g.Name)
	if v, ok := f["description"]; ok {
		if g.Description, err = p.str(v, path+".description"); err != nil {
			return nil, err
		}
	}
	if err := p.applyGroupKeys(&g, f, path); err != nil {
		return nil, err
	}
	at := func(key string) *yaml.Node {
		if v, ok := f[key]; ok {
			return v
		}
		return n
	}
	switch {
	case len(g.Eligible) == 0:
		return nil, p.errf(at("eligible"), path+".eligible", "nobody is eligible; list users or group:<mail|id>")
	case g.MinDuration <= 0 || g.MaxDuration <= 0:
		return nil, p.errf(at("max_duration"), path+".min_duration", "min and max durations must be positive")
	case g.MinDuration > g.MaxDuration:
		return nil, p.errf(at("min_duration"), path+".min_duration", "%s is longer than max_duration %s", FormatDuration(g.MinDuration), FormatDuration(g.MaxDuration))
	case g.DefaultDuration < g.MinDuration || g.DefaultDuration > g.MaxDuration:
		return nil, p.errf(at("default_duration"), path+".default_duration", "%s is outside min_duration..max_duration (%s..%s)", FormatDuration(g.DefaultDuration), FormatDuration(g.MinDuration), FormatDuration(g.MaxDuration))
	case g.PendingTimeout < time.Minute:
		return nil, p.errf(at("pending_timeout"), path+".pending_timeout", "must be at least 1m")
	case g.RequireApproval && len(g.Approvers) == 0:
		return nil, p.errf(at("approvers"), path+".approvers", "require_approval is true but no approvers are listed")
	case g.RequireApproval && g.ApprovalsRequired > len(g.Approvers) && !hasGroupRef(g.Approvers):
		return nil, p.errf(at("approvals_required"), path+".approvals_required", "%d approvals required but only %d approvers listed", g.ApprovalsRequired, len(g.Approvers))
	}
	return &g, nil
}

func hasGroupRef(xs []string) bool {
	for _, x := range xs {
		if strings.HasPrefix(x, "group:") {
			return true
		}
	}
	return false
}

func (p *parser) directory(n *yaml.Node, pol *Policy) error {
	f, err := p.fields(n, "directory", "users", "groups")
	if err != nil {
		return err
	}
	if un, ok := f["users"]; ok {
		if un.Kind != yaml.SequenceNode {
			return p.errf(un, "directory.users", "expected a list of {email: ..., name: ...}")
		}
		for i, u := range un.Content {
			path := fmt.Sprintf("directory.users[%d]", i)
			uf, err := p.fields(u, path, "email", "upn", "name", "id", "disabled")
			if err != nil {
				return err
			}
			var su SeedUser
			for k, v := range uf {
				if k == "disabled" {
					if su.Disabled, err = p.boolean(v, join(path, k)); err != nil {
						return err
					}
					continue
				}
				s, err := p.str(v, join(path, k))
				if err != nil {
					return err
				}
				switch k {
				case "email":
					su.Email = s
				case "upn":
					su.UPN = s
				case "name":
					su.Name = s
				case "id":
					su.ID = s
				}
			}
			if su.Email == "" && su.UPN == "" {
				return p.errf(u, path+".email", "a user needs an email or upn")
			}
			pol.Users = append(pol.Users, su)
		}
	}
	if gn, ok := f["groups"]; ok {
		if gn.Kind != yaml.SequenceNode {
			return p.errf(gn, "directory.groups", "expected a list of {mail: ..., members: [...]}")
		}
		for i, g := range gn.Content {
			path := fmt.Sprintf("directory.groups[%d]", i)
			gf, err := p.fields(g, path, "mail", "id", "name", "members", "owners")
			if err != nil {
				return err
			}
			var sg SeedGroup
			for k, v := range gf {
				field := join(path, k)
				switch k {
				case "members":
					sg.Members, err = p.list(v, field)
				case "owners":
					sg.Owners, err = p.list(v, field)
				default:
					var s string
					s, err = p.str(v, field)
					switch k {
					case "mail":
						sg.Mail = s
					case "id":
						sg.ID = s
					case "name":
						sg.Name = s
					}
				}
				if err != nil {
					return err
				}
			}
			if sg.Mail == "" && sg.ID == "" {
				return p.errf(g, path+".mail", "a directory group needs a mail or an id")
			}
			pol.DirGroups = append(pol.DirGroups, sg)
		}
	}
	return nil
}

// SortedAccess lists access kinds in a stable order.
func SortedAccess(xs []Access) []Access {
	out := append([]Access(nil), xs...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// IsPolicyError reports whether err came from policy validation.
func IsPolicyError(err error) bool {
	var pe *PolicyError
	return errors.As(err, &pe)
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
