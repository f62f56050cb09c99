package shell_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/handlers/shell"
	"github.com/pimbot/pimbot/store/storetest"
)

// Access added behind the bot's back is told to the group's approvers as a DRIFT line, and
// to nobody else (the holder asked for nothing).
func TestShell_DriftIsToldToTheApprovers(t *testing.T) {
	policy := strings.Replace(string(pimbot.ExamplePolicy), "    require_approval: false\n",
		"    require_approval: false\n    standing_access: remove\n", 1)
	pol, err := policyfile.Parse("policy.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := local.New(pol)
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: dir})
	out := &syncBuf{}
	sh := shell.New(eng, strings.NewReader(""), out, shell.Options{})
	eng.AddNotifier(sh)
	prod, _ := pol.Group("prod-db-admins")
	sandbox, _ := pol.Group("sandbox-admins")
	mallory, err := dir.ResolveUser(ctx, "mallory@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(ctx, prod.ID, mallory.ID, bot.Owner); err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(ctx, sandbox.ID, mallory.ID, bot.Member); err != nil {
		t.Fatal(err)
	}
	found, err := eng.Reconcile(ctx, dir)
	if err != nil || len(found) != 2 {
		t.Fatalf("reconcile found %d (%v)", len(found), err)
	}
	for i := 0; i < 10; i++ {
		if n, err := eng.RunDue(ctx); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
	}
	got := out.String()
	wants := []string{
		"→ to approvers bob@example.com, carol@example.com: DRIFT: mallory@example.com holds owner of prod-db-admins without an active grant (standing_access: report)\n",
		"→ to approvers: DRIFT: mallory@example.com held member of sandbox-admins without an active grant and was removed (standing_access: remove)\n",
	}
	for _, w := range wants {
		if strings.Count(got, w) != 1 {
			t.Fatalf("want once %q\noutput:\n%s", w, got)
		}
	}
	if n := strings.Count(got, "→"); n != 2 {
		t.Fatalf("%d lines for 2 findings (the holder must hear nothing):\n%s", n, got)
	}
}
