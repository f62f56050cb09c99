package shell_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
)

// An approver types pending (or inbox) and sees what waits for their decision, oldest first:
// who asks, for what, when and why, with the commands of what the engine offers them; the
// requester and someone who approves nothing see that nothing waits for them.
func TestShell_PendingListsWhatWaitsForTheApprover(t *testing.T) {
	var eng *bot.Engine
	tm := start(t, pimbot.ExamplePolicy, func(e *bot.Engine) { eng = e })
	tm.expect(5*time.Second, "You are alice@example.com (Alice)")
	ctx := context.Background()
	submitted := regexp.MustCompile(`Request ([A-Z0-9]{8}) submitted`)
	submit := func(line string) string {
		t.Helper()
		m := submitted.FindStringSubmatch(tm.do(line, "submitted"))
		if m == nil {
			t.Fatalf("%s: nothing submitted", line)
		}
		return m[1]
	}
	member := submit("/activate prod-db-admins for 2h fixing the outage")
	owner := submit("/activate prod-db-admins owner for 1h rotating keys")

	tm.do("pending", "Nothing is waiting for your approval.")
	tm.do("as mallory", "You are now mallory@example.com")
	tm.do("inbox", "Nothing is waiting for your approval.")

	tm.do("as bob", "You are now bob@example.com")
	bob, err := tm.dir.ResolveUser(ctx, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	actor := bot.Actor{User: bob, Surface: "shell"}
	out := tm.do("pending", "Waiting for your approval (2)", "request "+member, "request "+owner)
	if strings.Index(out, "request "+member) > strings.Index(out, "request "+owner) {
		t.Fatalf("not oldest first:\n%s", out)
	}
	for _, want := range []struct{ id, text string }{
		{member, `Alice (alice@example.com) asks for member of prod-db-admins for 2h from now, asked `},
		{member, `Reason: "fixing the outage".`},
		{owner, `asks for owner of prod-db-admins for 1h from now`},
		{owner, `Reason: "rotating keys".`},
	} {
		if l := lineOf(t, out, "request ", want.id); !strings.Contains(l, want.text) {
			t.Errorf("the line of %s does not say %q:\n%s", want.id, want.text, l)
		}
	}
	for _, id := range []string{member, owner} {
		r, err := eng.Get(ctx, actor, id)
		if err != nil {
			t.Fatal(err)
		}
		shown, offered := hintsFor(lineOf(t, out, "request ", id), id), eng.Actions(ctx, actor, r)
		if !slices.Equal(shown, offered) || !slices.Contains(shown, bot.ActApprove) {
			t.Errorf("the line of %s suggests %v; the engine offers %v", id, shown, offered)
		}
	}

	// "last" is the newest request listed; once decided it leaves the list.
	tm.do("approve last", "Request "+owner+" approved.")
	out = tm.do("inbox", "Waiting for your approval (1)", "request "+member)
	// Notifications of the decision may be printed meanwhile; only the list's lines count.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "request "+owner) {
			t.Fatalf("a decided request is still listed:\n%s", out)
		}
	}
	tm.do("deny "+member+" use the replica", "Request "+member+" denied.")
	tm.do("pending", "Nothing is waiting for your approval.")
	tm.do("help", "pending", "the requests waiting for your approval")
}
