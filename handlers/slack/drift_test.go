package slack

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// eveName is a display name from the directory with Slack markup in it: a channel ping, a
// user mention and bold.
const eveName = "<!channel> *Eve* <@UBOB>"

// driftPolicy is the test policy with eve in the directory, selfish and ticketed removing
// access without a grant, and the others reporting it (the default).
func driftPolicy(extraSettings string) string {
	p := strings.Replace(testPolicy, "    - {email: erin@example.com, name: Erin}\n",
		"    - {email: erin@example.com, name: Erin}\n    - {email: eve@example.com, name: \""+eveName+"\"}\n", 1)
	p = strings.Replace(p, "    id: g-self\n", "    id: g-self\n    standing_access: remove\n", 1)
	p = strings.Replace(p, "    id: g-ticket\n", "    id: g-ticket\n    standing_access: remove\n", 1)
	if extraSettings != "" {
		p = strings.Replace(p, "settings: {requests_per_minute: 0, max_pending: 0}", "settings: {requests_per_minute: 0, max_pending: 0, "+extraSettings+"}", 1)
	}
	return p
}

// Access found without a grant is told once in the group's Slack approval channel, with the
// holder and the group named and every piece of markup from the directory made inert; a
// group without a Slack approval channel hears nothing on Slack, and nobody gets a DM.
func TestDrift_ToldInTheApprovalChannelOnly(t *testing.T) {
	e := newEnvPolicy(t, driftPolicy(""))
	eve := e.user("eve@example.com")
	for _, g := range []string{"g-prod", "g-self", "g-ticket", "g-dm", "g-sandbox"} {
		if err := e.dir.Add(e.ctx, g, eve.ID, bot.Member); err != nil {
			t.Fatal(err)
		}
	}
	e.dir.SetFault(func(op, groupID, userID string) error {
		if op == "remove" && groupID == "g-ticket" {
			return errors.New("graph: 403 Authorization_RequestDenied <!here> & co")
		}
		return nil
	})
	mark := e.fake.Mark()
	found, err := e.eng.Reconcile(e.ctx, e.dir)
	if len(found) != 5 || err == nil {
		t.Fatalf("reconcile found %d findings (err %v); want 5 and the failed removal named", len(found), err)
	}
	e.drain()

	posts := e.fake.Since(mark, "chat.postMessage")
	byLead := map[string]slackfake.Call{}
	for _, c := range posts {
		if c.Error != "" {
			t.Fatalf("chat.postMessage failed: %s", c.Error)
		}
		if c.Get("channel") != approvals {
			t.Fatalf("drift went to %s (want only the approval channel %s): %s", c.Get("channel"), approvals, c.Get("text"))
		}
		for _, lead := range []string{"reported", "removed.", "removal failed"} {
			if strings.Contains(c.Get("text"), lead) {
				byLead[lead] = c
			}
		}
	}
	// prod (report), selfish (removed) and ticketed (removal failed) have the channel; dm-approvers
	// and sandbox have none.
	if len(posts) != 3 || len(byLead) != 3 {
		var texts []string
		for _, c := range posts {
			texts = append(texts, c.Get("text"))
		}
		t.Fatalf("%d posts, want 3 (reported, removed, removal failed):\n%s", len(posts), strings.Join(texts, "\n"))
	}
	wants := map[string]string{
		"reported":       "is member of *prod-db-admins* without a pimbot grant — reported",
		"removed.":       "was member of *selfish* without a pimbot grant — removed.",
		"removal failed": "is member of *ticketed* without a pimbot grant — removal failed, retrying next round.",
	}
	for lead, want := range wants {
		c := byLead[lead]
		all := c.Get("text") + "\n" + c.Get("blocks")
		for _, w := range []string{want, "*&lt;!channel&gt; *Eve* &lt;@UBOB&gt;* (eve@example.com)"} {
			if !strings.Contains(all, w) {
				t.Fatalf("the %q message does not say %q:\n%s", lead, w, all)
			}
		}
		if strings.Contains(all, "<!") || strings.Contains(all, "<@") {
			t.Fatalf("markup from the directory reached Slack unescaped:\n%s", all)
		}
	}
	if b := byLead["removal failed"].Get("blocks"); !strings.Contains(b, "403 Authorization_RequestDenied &lt;!here&gt; &amp; co") {
		t.Fatalf("the failed removal does not carry the directory's error, escaped:\n%s", b)
	}
	if e.holds("eve@example.com", "g-self", bot.Member) || !e.holds("eve@example.com", "g-ticket", bot.Member) {
		t.Fatal("selfish should have lost eve, ticketed kept her (its removal failed)")
	}
	// Delivered once: running the queue again posts nothing more.
	again := e.fake.Mark()
	e.drain()
	if n := len(e.fake.Since(again, "chat.postMessage")); n != 0 {
		t.Fatalf("%d more posts after the queue was drained", n)
	}
}

// A post that Slack refuses for a while is retried by the job queue and lands once.
func TestDrift_RetriedUntilPostedOnce(t *testing.T) {
	e := newEnvPolicy(t, driftPolicy(""))
	eve := e.user("eve@example.com")
	if err := e.dir.Add(e.ctx, "g-prod", eve.ID, bot.Owner); err != nil {
		t.Fatal(err)
	}
	mark := e.fake.Mark()
	e.fake.Fail("chat.postMessage", "ratelimited")
	if _, err := e.eng.Reconcile(e.ctx, e.dir); err != nil {
		t.Fatal(err)
	}
	e.drain()
	if got := okPosts(e.fake.Since(mark, "chat.postMessage")); len(got) != 0 {
		t.Fatalf("posted despite the refusal: %v", got)
	}
	e.clock.Advance(bot.Backoff(1) + 1)
	e.drain()
	got := okPosts(e.fake.Since(mark, "chat.postMessage"))
	if len(got) != 1 || !strings.Contains(got[0], "is owner of prod-db-admins without a pimbot grant — reported") {
		t.Fatalf("after the retry: %v", got)
	}
}

func okPosts(calls []slackfake.Call) []string {
	var out []string
	for _, c := range calls {
		if c.Error == "" {
			out = append(out, c.Get("channel")+": "+c.Get("text"))
		}
	}
	return out
}

// Access that PIM manages in a direct group is not called access without a grant, and
// nobody is told to remove it.
func TestDrift_ManagedElsewhereIsSaidSo(t *testing.T) {
	ev := bot.Event{Type: bot.EvDriftElsewhere, Request: &bot.Request{Group: "prod-db-admins", Access: bot.Member,
		Requester: bot.User{ID: "u1", Email: "bob@example.com", Name: "Bob"}}}
	m := driftMessage(ev)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.Contains(got, "Managed elsewhere") || !strings.Contains(got, "active PIM assignment") ||
		strings.Contains(got, "without a grant") || strings.Contains(got, "Remove it") {
		t.Fatalf("the managed-elsewhere finding reads:\n%s", got)
	}
	if line, ok := bot.AuditLine(ev, nil); !ok || !strings.Contains(line, "managed elsewhere") || strings.Contains(line, "without a pimbot grant") {
		t.Fatalf("audit line %q (ok %v)", line, ok)
	}
	ev.ManagedBy = `access package "Prod on-call"`
	if b, _ := json.Marshal(driftMessage(ev)); !strings.Contains(string(b), `through the access package \"Prod on-call\"`) || strings.Contains(string(b), "PIM") {
		t.Fatalf("an access package's holder is not said to hold it through the package:\n%s", b)
	}
}
