package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient"
)

func init() { extraChecks = append(extraChecks, checkPIM) }

// checkPIM says which groups grant through which mode and, for the groups in mode: pim (PIM
// for Groups: Entra itself ends the access at the expiration), what PIM will refuse: the
// permission, and the groups PIM cannot manage ("Dynamic groups and groups synchronized from
// on-premises environment cannot be managed in PIM for Groups", groups-discover-groups; a group
// in a restricted management administrative unit refuses apps as it does for $ref changes).
// A pim group with a directory that cannot assign through PIM never gets here: newApp refuses
// it (bot.CheckModes).
func checkPIM(ctx context.Context, a *app, r *checkReport) {
	var direct, pim []string
	for _, g := range a.pol.Groups {
		if g.PIM() {
			pim = append(pim, g.Name)
		} else {
			direct = append(direct, g.Name)
		}
	}
	if len(pim) == 0 {
		r.ok("mode: every group is direct ($ref membership; pimbot's end job ends the access)")
		return
	}
	r.ok("mode: direct ($ref membership): %s; pim (PIM for Groups, Entra also ends the access at the expiration): %s",
		orNone(direct), strings.Join(pim, ", "))
	g, ok := a.dir.(*graphclient.Directory)
	if !ok {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	tok, err := g.Token(tctx)
	cancel()
	tokKnown := err == nil && tok.Known
	if tokKnown && !tok.Has(graphclient.PermPIMGroups) {
		r.fail("graph: the app lacks the application permission %s, which the groups in mode: pim (%s) need to assign through PIM for Groups; add it and grant admin consent",
			graphclient.PermPIMGroups, strings.Join(pim, ", "))
	}
	for _, grp := range a.pol.Groups {
		if !grp.PIM() {
			continue
		}
		if grp.MinDuration < bot.PIMMinDuration {
			r.warn("group %s (mode: pim): min_duration %s is shorter than the %s PIM for Groups assigns for at least; shorter requests are rounded up to %s",
				grp.Name, bot.FormatDuration(grp.MinDuration), bot.FormatDuration(bot.PIMMinDuration), bot.FormatDuration(bot.PIMMinDuration))
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		info, err := g.Group(cctx, grp.ID)
		cancel()
		if err != nil {
			continue // checkGraph reports it
		}
		var why []string
		if info.Dynamic {
			why = append(why, "it has dynamic membership")
		}
		if info.Synced {
			why = append(why, "it is synced from on-premises Active Directory")
		}
		if info.Restricted {
			why = append(why, "it is in a restricted management administrative unit")
		}
		if len(why) > 0 {
			r.fail("group %s (%s) cannot be in mode: pim: PIM for Groups cannot manage it (%s); use another group", grp.Name, grp.ID, strings.Join(why, ", "))
			continue
		}
		r.ok("group %s (mode: pim): PIM for Groups can manage it; its first request onboards it into PIM, which cannot be undone", grp.Name)
		checkPIMPolicy(ctx, g, grp, tok, tokKnown, r)
	}
}

// checkPIMPolicy reads the group's PIM for Groups policy (GET /policies/roleManagementPolicyAssignments
// for the group, with its rules) and explains where its rules for an administrator's active
// assignment (Expiration_Admin_Assignment, Enablement_Admin_Assignment) conflict with the
// group's pimbot policy: a maximum assignment duration shorter than max_duration (Entra refuses
// the longer assignment or extension), MFA on assignment (an app cannot perform it: every grant
// fails), a ticket on assignment (pimbot sends none); a justification is fine, pimbot always
// sends one. See graphclient/pimpolicy.go for Microsoft's references.
func checkPIMPolicy(ctx context.Context, g *graphclient.Directory, grp *bot.Group, tok graphclient.TokenInfo, known bool, r *checkReport) {
	if known && !tok.Has(graphclient.PermPIMPolicyRead) && !tok.Has(graphclient.PermPIMPolicyReadWrite) {
		r.warn("group %s (mode: pim): cannot compare its PIM policy with pimbot's: the app lacks %s (only check needs it); add it and grant admin consent to have check read the policy",
			grp.Name, graphclient.PermPIMPolicyRead)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	pols, err := g.PIMPolicies(cctx, grp.ID)
	cancel()
	if err != nil {
		r.warn("group %s (mode: pim): cannot read its PIM policy (%s); check cannot compare it with pimbot's", grp.Name, graphWords(err))
		return
	}
	for _, a := range grp.Access {
		p, ok := pols[a]
		if !ok {
			r.ok("group %s (mode: pim): no PIM policy for %s assignments yet (the group is not onboarded into PIM); run check again after its first grant to compare PIM's rules with pimbot's", grp.Name, a)
			continue
		}
		what := fmt.Sprintf("group %s (mode: pim): PIM policy for %s assignments", grp.Name, a)
		switch {
		case p.MaxDuration > 0 && grp.MaxDuration > p.MaxDuration:
			r.fail("%s allows an active assignment of at most %s (%s), shorter than max_duration %s: Entra refuses a longer grant or an extension past %s; lower max_duration to %s or raise \"Expire active assignments after\" in the group's PIM settings",
				what, bot.FormatDuration(p.MaxDuration), graphclient.RuleExpirationAdminAssignment, bot.FormatDuration(grp.MaxDuration), bot.FormatDuration(p.MaxDuration), bot.FormatDuration(p.MaxDuration))
		case p.MaxDuration > 0:
			r.ok("%s allows active assignments of up to %s (%s), at least max_duration %s", what, bot.FormatDuration(p.MaxDuration), graphclient.RuleExpirationAdminAssignment, bot.FormatDuration(grp.MaxDuration))
		default:
			r.ok("%s sets no maximum duration for active assignments (%s); pimbot's assignments always carry an expiration", what, graphclient.RuleExpirationAdminAssignment)
		}
		if p.Requires("MultiFactorAuthentication") {
			r.fail("%s requires multi-factor authentication on active assignment (%s: MultiFactorAuthentication), which an app cannot perform: every grant pimbot makes would be refused; turn \"Require Azure MFA on active assignment\" off in the group's PIM settings (pimbot's own require_mfa checks the requester instead)",
				what, graphclient.RuleEnablementAdminAssignment)
		}
		if p.Requires("Justification") {
			r.ok("%s requires a justification on active assignment (%s: Justification): pimbot sends one with every assignment (request id, requester, reason and ticket)", what, graphclient.RuleEnablementAdminAssignment)
		}
		if p.Requires("Ticketing") {
			r.fail("%s requires ticket information on active assignment (%s: Ticketing), which pimbot does not send: every grant would be refused; turn the ticket requirement off in the group's PIM settings (pimbot's require_ticket keeps the ticket in the justification)",
				what, graphclient.RuleEnablementAdminAssignment)
		}
	}
}
