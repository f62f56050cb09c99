// Package policyfile reads pimbot's policy file (YAML) into a bot.Policy: strictly (unknown
// keys are errors), and every mistake names the file, the line and the field. It lives apart
// from package bot so that the core depends on the standard library only.
package policyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"go.yaml.in/yaml/v3"
)

// Load reads and validates a policy file.
func Load(path string) (*bot.Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, data)
}

// Error names the file, the line and the field that is wrong.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// groupKeys are the keys a group (and defaults, except name/id/description) may set.
var groupKeys = []string{
	"access", "eligible", "require_approval", "approvers", "approvals_required",
	"allow_self_approval", "require_justification", "require_ticket", "require_mfa", "mfa_flow",
	"min_duration", "default_duration", "max_duration", "pending_timeout", "reminder_before",
	"approval_channel", "standing_access", "mode",
}

// builtinDefaults are what a group gets when neither it nor defaults: says otherwise.
func builtinDefaults() bot.Group {
	return bot.Group{
		Access:               []bot.Access{bot.Member},
		RequireApproval:      true,
		ApprovalsRequired:    1,
		RequireJustification: true,
		MinDuration:          5 * time.Minute,
		DefaultDuration:      time.Hour,
		MaxDuration:          8 * time.Hour,
		PendingTimeout:       24 * time.Hour,
		ReminderBefore:       10 * time.Minute,
		StandingAccess:       "report",
		Mode:                 bot.ModeDirect,
		MFAFlow:              "auth_code",
		ApprovalChannel:      map[string]string{},
	}
}

// applyGroupKeys sets g's fields from the given keys (used for defaults and each group).
func (p *parser) applyGroupKeys(g *bot.Group, f map[string]*yaml.Node, path string) error {
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
				a, ok := bot.ParseAccess(x)
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
		case "mode":
			var s string
			if s, err = p.str(n, field); err == nil {
				switch s {
				case bot.ModeDirect, bot.ModePIM:
					g.Mode = s
				default:
					err = p.errf(n, field, "%q is not allowed; use direct ($ref membership) or pim (PIM for Groups: Entra itself ends the access)", s)
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

// Parse validates a policy file's bytes; name is used in error messages.
func Parse(name string, data []byte) (*bot.Policy, error) {
	p := &parser{file: name}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Msg: "the file is empty; it needs at least a groups: list"}
	} else if err != nil {
		return nil, &Error{File: name, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: name, Msg: "the file is empty; it needs at least a groups: list"}
	}
	top, err := p.fields(doc.Content[0], "", "settings", "defaults", "groups", "directory")
	if err != nil {
		return nil, err
	}
	pol := bot.NewPolicy(name)
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
		switch err := pol.AddGroup(g); {
		case errors.Is(err, bot.ErrGroupNameTaken):
			return nil, p.errf(n, path+".name", "group %q is named twice", g.Name)
		case errors.Is(err, bot.ErrGroupIDTaken):
			return nil, p.errf(n, path+".id", "group id %q is used twice", g.ID)
		}
	}
	if n, ok := top["directory"]; ok {
		if err := p.directory(n, pol); err != nil {
			return nil, err
		}
	}
	if err := p.checkRotas(pol, gn); err != nil {
		return nil, err
	}
	return pol, nil
}

// IsError reports whether err came from policy validation.
func IsError(err error) bool {
	var pe *Error
	return errors.As(err, &pe)
}
