package policyfile

import (
	"fmt"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"go.yaml.in/yaml/v3"
)

// The YAML reader of the policy file: strict (unknown keys are errors), and every mistake
// names the file, the line and the field.

type parser struct{ file string }

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
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
	d, err := bot.ParseDuration(s)
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

func (p *parser) settings(n *yaml.Node, s *bot.Settings) error {
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

func (p *parser) group(n *yaml.Node, i int, def bot.Group) (*bot.Group, error) {
	path := fmt.Sprintf("groups[%d]", i)
	if n.Kind == yaml.MappingNode { // name the group in every message about it
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "name" && n.Content[j+1].Kind == yaml.ScalarNode && n.Content[j+1].Value != "" {
				path = fmt.Sprintf("groups[%d] (%s)", i, n.Content[j+1].Value)
			}
		}
	}
	keys := append([]string{"name", "id", "description", "auto_approve"}, groupKeys...)
	f, err := p.fields(n, path, keys...)
	if err != nil {
		return nil, err
	}
	g := def
	g.Access = append([]bot.Access(nil), def.Access...)
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
	if v, ok := f["auto_approve"]; ok {
		if err := p.autoApprove(v, &g, path+".auto_approve"); err != nil {
			return nil, err
		}
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
		return nil, p.errf(at("min_duration"), path+".min_duration", "%s is longer than max_duration %s", bot.FormatDuration(g.MinDuration), bot.FormatDuration(g.MaxDuration))
	case g.DefaultDuration < g.MinDuration || g.DefaultDuration > g.MaxDuration:
		return nil, p.errf(at("default_duration"), path+".default_duration", "%s is outside min_duration..max_duration (%s..%s)", bot.FormatDuration(g.DefaultDuration), bot.FormatDuration(g.MinDuration), bot.FormatDuration(g.MaxDuration))
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

func (p *parser) directory(n *yaml.Node, pol *bot.Policy) error {
	f, err := p.fields(n, "directory", "users", "groups", "on_call")
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
			var su bot.SeedUser
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
			var sg bot.SeedGroup
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
	if rn, ok := f["on_call"]; ok {
		return p.rotas(rn, pol)
	}
	return nil
}
