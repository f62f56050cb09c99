package slack

import (
	"fmt"
	"strings"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// homeView is the App Home: the groups the person may activate, each with an Activate
// button, and their requests. problem replaces both when the person cannot be served.
func homeView(groups []*bot.Group, rs []*bot.Request, problem string, now time.Time, loc *time.Location) slack.HomeTabViewRequest {
	blocks := []slack.Block{slack.NewHeaderBlock(plain("Just-in-time access"))}
	if problem != "" {
		blocks = append(blocks, section(":warning: "+problem))
		return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
	}
	blocks = append(blocks, contextLine("Activate a group when you need it; access ends on its own. `/activate help` explains the commands."))
	if len(groups) == 0 {
		blocks = append(blocks, section("You are not eligible for any group. Ask your administrators to add you to the policy."))
	}
	for i, g := range groups {
		if i == 40 { // the view holds at most 100 blocks
			blocks = append(blocks, contextLine(fmt.Sprintf("…and %d more: use `/activate` to pick one.", len(groups)-i)))
			break
		}
		text := "*" + esc(g.Name) + "*"
		if g.Description != "" {
			text += " — " + esc(truncate(g.Description, 200))
		}
		text += "\n" + groupFacts(g)
		blocks = append(blocks, slack.NewSectionBlock(md(text), nil,
			slack.NewAccessory(button(actHomeActivate, g.Name, "Activate", slack.StylePrimary))))
	}
	blocks = append(blocks, slack.NewDividerBlock(), slack.NewHeaderBlock(plain("Your requests")))
	blocks = append(blocks, statusBlocks(rs, now, loc)...)
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// groupFacts summarizes a group's policy in one line.
func groupFacts(g *bot.Group) string {
	kinds := make([]string, len(g.Access))
	for i, a := range g.Access {
		kinds[i] = string(a)
	}
	facts := []string{strings.Join(kinds, " or "), "up to " + bot.FormatDuration(g.MaxDuration)}
	if g.RequireApproval {
		facts = append(facts, "needs approval")
	} else {
		facts = append(facts, "no approval needed")
	}
	if g.RequireTicket {
		facts = append(facts, "needs a ticket")
	}
	return strings.Join(facts, " · ")
}
