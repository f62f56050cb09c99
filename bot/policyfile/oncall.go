package policyfile

import (
	"fmt"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"go.yaml.in/yaml/v3"
)

// autoApprove reads a group's auto_approve:
//
//	auto_approve:
//	  on_call:
//	    pagerduty: {schedules: [P1ABCD2], services: [PXYZ123]}   # any of these
//	    opsgenie:  {schedules: [db-primary]}
//	    local:     {schedules: [db-primary]}                      # directory.on_call rotas
//	  max_duration: 2h          # automatic approval only up to this; longer asks the approvers
//	  require_incident: true    # PagerDuty: only while a service has a triggered/acknowledged incident
func (p *parser) autoApprove(n *yaml.Node, g *bot.Group, path string) error {
	f, err := p.fields(n, path, "on_call", "max_duration", "require_incident")
	if err != nil {
		return err
	}
	aa := &bot.AutoApprove{MaxDuration: g.DefaultDuration}
	on, ok := f["on_call"]
	if !ok {
		return p.errf(n, path+".on_call", "missing; name the on-call rotas whose people are approved automatically (pagerduty, opsgenie or local)")
	}
	of, err := p.fields(on, path+".on_call", bot.OnCallPagerDuty, bot.OnCallOpsgenie, bot.OnCallLocal)
	if err != nil {
		return err
	}
	services := 0
	for _, provider := range []string{bot.OnCallPagerDuty, bot.OnCallOpsgenie, bot.OnCallLocal} {
		sn, ok := of[provider]
		if !ok {
			continue
		}
		field := join(path+".on_call", provider)
		allowed := []string{"schedules"}
		if provider == bot.OnCallPagerDuty {
			allowed = append(allowed, "services")
		}
		sf, err := p.fields(sn, field, allowed...)
		if err != nil {
			return err
		}
		src := bot.OnCallSource{Provider: provider}
		if v, ok := sf["schedules"]; ok {
			if src.Schedules, err = p.list(v, join(field, "schedules")); err != nil {
				return err
			}
		}
		if v, ok := sf["services"]; ok {
			if src.Services, err = p.list(v, join(field, "services")); err != nil {
				return err
			}
		}
		if len(src.Schedules)+len(src.Services) == 0 {
			return p.errf(sn, field, "names no rota; list schedules (or, for PagerDuty, services)")
		}
		services += len(src.Services)
		aa.OnCall = append(aa.OnCall, src)
	}
	if len(aa.OnCall) == 0 {
		return p.errf(on, path+".on_call", "names no rota; use pagerduty, opsgenie or local")
	}
	if v, ok := f["max_duration"]; ok {
		if aa.MaxDuration, err = p.duration(v, path+".max_duration"); err != nil {
			return err
		}
	}
	if aa.MaxDuration < g.MinDuration || aa.MaxDuration > g.MaxDuration {
		at := n
		if v, ok := f["max_duration"]; ok {
			at = v
		}
		return p.errf(at, path+".max_duration", "%s is outside the group's min_duration..max_duration (%s..%s)",
			bot.FormatDuration(aa.MaxDuration), bot.FormatDuration(g.MinDuration), bot.FormatDuration(g.MaxDuration))
	}
	if v, ok := f["require_incident"]; ok {
		if aa.RequireIncident, err = p.boolean(v, path+".require_incident"); err != nil {
			return err
		}
		if aa.RequireIncident && services == 0 {
			return p.errf(v, path+".require_incident", "needs PagerDuty services to look for incidents on (on_call.pagerduty.services)")
		}
	}
	if !g.RequireApproval {
		return p.errf(n, path, "the group needs no approval (require_approval: false), so there is nothing to approve automatically; remove auto_approve or set require_approval: true")
	}
	g.AutoApprove = aa
	return nil
}

// rotas reads directory.on_call, the local on-call rotas:
//
//	on_call:
//	  - {name: db-primary, people: [alice@example.com, carol@example.com], shift: 168h, since: 2026-01-05T09:00:00Z}
func (p *parser) rotas(n *yaml.Node, pol *bot.Policy) error {
	if n.Kind != yaml.SequenceNode {
		return p.errf(n, "directory.on_call", "expected a list of {name: ..., people: [...], shift: ...}")
	}
	seen := map[string]bool{}
	for i, rn := range n.Content {
		path := fmt.Sprintf("directory.on_call[%d]", i)
		f, err := p.fields(rn, path, "name", "people", "shift", "since")
		if err != nil {
			return err
		}
		var r bot.SeedRota
		if v, ok := f["name"]; !ok {
			return p.errf(rn, path+".name", "missing; a rota needs a name (auto_approve.on_call.local.schedules names it)")
		} else if r.Name, err = p.str(v, path+".name"); err != nil {
			return err
		}
		if seen[strings.ToLower(r.Name)] {
			return p.errf(f["name"], path+".name", "rota %q is named twice", r.Name)
		}
		seen[strings.ToLower(r.Name)] = true
		if v, ok := f["people"]; ok {
			if r.People, err = p.list(v, path+".people"); err != nil {
				return err
			}
		}
		if len(r.People) == 0 {
			return p.errf(rn, path+".people", "nobody is on call; list e-mail addresses")
		}
		if v, ok := f["shift"]; ok {
			if r.Shift, err = p.duration(v, path+".shift"); err != nil {
				return err
			}
		}
		if v, ok := f["since"]; ok {
			var s string
			if s, err = p.str(v, path+".since"); err != nil {
				return err
			}
			if r.Since, err = time.Parse(time.RFC3339, s); err != nil {
				return p.errf(v, path+".since", "%q is not a time; use RFC 3339, e.g. 2026-01-05T09:00:00Z", s)
			}
		}
		pol.Rotas = append(pol.Rotas, r)
	}
	return nil
}

// checkRotas refuses a group whose auto_approve names a local rota that directory.on_call
// does not define.
func (p *parser) checkRotas(pol *bot.Policy, groups *yaml.Node) error {
	have := map[string]bool{}
	for _, r := range pol.Rotas {
		have[strings.ToLower(r.Name)] = true
	}
	for i, g := range pol.Groups {
		if g.AutoApprove == nil {
			continue
		}
		for _, src := range g.AutoApprove.OnCall {
			if src.Provider != bot.OnCallLocal {
				continue
			}
			for _, name := range src.Schedules {
				if !have[strings.ToLower(name)] {
					return p.errf(groups.Content[i], fmt.Sprintf("groups[%d] (%s).auto_approve.on_call.local.schedules", i, g.Name),
						"no local rota named %q; define it under directory.on_call", name)
				}
			}
		}
	}
	return nil
}
