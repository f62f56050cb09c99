package bot_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
)

func TestApproversFor_LeavesTheRequesterOutUnlessSelfApprovalIsAllowed(t *testing.T) {
	bob := bot.User{ID: "b", Email: "Bob@example.com"}
	g := &bot.Group{Approvers: []string{"bob@example.com", "carol@example.com", "group:sre@example.com"}}
	if got := g.ApproversFor(bob); !slices.Equal(got, []string{"carol@example.com", "group:sre@example.com"}) {
		t.Errorf("got %v", got)
	}
	g.AllowSelfApproval = true
	if got := g.ApproversFor(bob); len(got) != 3 {
		t.Errorf("self-approval allowed: got %v", got)
	}
}

func TestStatus_ExtendedGrantShowsItsRealLength(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	r := &bot.Request{Kind: bot.KindActivate, Group: "prod-db-admins", Access: bot.Owner, Duration: 2 * time.Hour,
		State: bot.StateActive, ActivatedAt: now, EndsAt: now.Add(3 * time.Hour)}
	if got, want := r.Status(now, time.UTC), "owner of prod-db-admins for 3h, until 13:00 UTC"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if r.Duration != 2*time.Hour || r.What() != "owner of prod-db-admins for 2h" {
		t.Errorf("the asked duration changed: %v %q", r.Duration, r.What())
	}
	if got := bot.HoldsWords(r.Access, r.Group); got != "an owner of prod-db-admins" {
		t.Errorf("got %q", got)
	}
}
