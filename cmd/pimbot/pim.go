package main

import (
	"context"
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
	if err == nil && tok.Known && !tok.Has(graphclient.PermPIMGroups) {
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
	}
}
