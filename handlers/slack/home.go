package slack

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/slack-go/slack"
)

// homeView is the App Home: what waits for the person's approval (only when something
// does), the groups the person may activate, each with an Activate button, and their
// requests with the buttons of what the engine offers them (acts, by request id). problem
// replaces all of it when the person cannot be served.
func homeView(groups []*bot.Group, rs []*bot.Request, acts map[string][]bot.Action, waiting inbox, problem string, now time.Time, loc *time.Location) slack.HomeTabViewRequest {
	blocks := []slack.Block{slack.NewHeaderBlock(plain("Just-in-time access"))}
	if problem != "" {
		blocks = append(blocks, section(":warning: "+problem))
		return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
	}
	blocks = append(blocks, contextLine("Activate a group when you need it; access ends on its own. `/activate help` explains the commands."))
	blocks = append(blocks, homeInboxBlocks(waiting, now, loc)...) // at most 13 blocks
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
	blocks = append(blocks, statusBlocks(rs, acts, now, loc)...)
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

// homeTTL is how long the surface remembers that a person opened their App Home: their
// Home is republished when one of their requests changes until this long after they last
// opened it.
const homeTTL = 30 * 24 * time.Hour

// keyHome marks a directory user whose App Home was opened; the value is their Slack id.
func keyHome(dirID string) string { return "slack:home:" + dirID }

// homeRuns coalesces App Home refreshes per Slack user: at most one is queued or running
// at a time, and a refresh asked for while one runs makes it run once more, so that the
// last view published was drawn after the last change asked for it (two workers drawing
// the same Home at once could publish the older state last).
type homeRuns struct {
	sync.Mutex
	m map[string]*homeWant // by Slack user id
}

type homeWant struct{ again, opened bool }

// refreshHome queues a redraw of a person's App Home. opened says that they just opened
// it (app_home_opened), which is remembered so that later changes redraw it too.
func (s *Surface) refreshHome(slackID string, opened bool) {
	k, homeRuns := slackID, &s.homes
	homeRuns.Lock()
	if w, busy := homeRuns.m[k]; busy {
		w.again = true
		w.opened = w.opened || opened
		homeRuns.Unlock()
		return
	}
	homeRuns.m[k] = &homeWant{}
	homeRuns.Unlock()
	if !s.later("app home", func(ctx context.Context) { s.homeLoop(ctx, k, opened) }) {
		homeRuns.Lock()
		delete(homeRuns.m, k)
		homeRuns.Unlock()
	}
}

// homeLoop publishes the Home until nobody asked for it again while it was being drawn.
// What was asked while the task waited in the queue is covered by its first drawing.
func (s *Surface) homeLoop(ctx context.Context, k string, opened bool) {
	homeRuns := &s.homes
	finished := false
	defer func() {
		if !finished { // a panic: let the next change queue a refresh again
			homeRuns.Lock()
			delete(homeRuns.m, k)
			homeRuns.Unlock()
		}
	}()
	for {
		homeRuns.Lock()
		if w := homeRuns.m[k]; w != nil {
			opened = opened || w.opened
			w.again, w.opened = false, false
		}
		homeRuns.Unlock()
		s.publishHome(ctx, k, opened)
		homeRuns.Lock()
		w := homeRuns.m[k]
		if w == nil || !w.again || ctx.Err() != nil {
			delete(homeRuns.m, k)
			finished = true
			homeRuns.Unlock()
			if w != nil && w.again { // out of time: a fresh task for what came meanwhile
				s.refreshHome(k, w.opened)
			}
			return
		}
		homeRuns.Unlock()
		opened = false
	}
}

// refreshRequesterHome redraws the App Home of the requester of ev if they opened it in
// the last homeTTL. The redraw runs in the background: Notify neither waits for it nor
// fails or retries because of it.
func (s *Surface) refreshRequesterHome(ctx context.Context, ev bot.Event) {
	id := ev.Request.Requester.ID
	if id == "" {
		return
	}
	slackID, ok, err := s.kv.GetValue(ctx, keyHome(id))
	if err != nil {
		s.log.Warn("slack: cannot read whether the requester opened the App Home", "request_id", ev.Request.ID, "err", err)
		return
	}
	if ok && slackID != "" {
		s.refreshHome(slackID, false)
	}
}
