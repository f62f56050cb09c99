package shell_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/handlers/shell"
	"github.com/pimbot/pimbot/store/storetest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type term struct {
	t    *testing.T
	in   *io.PipeWriter
	out  *syncBuf
	mark int
	done chan error
	dir  *local.Directory
}

// start runs a shell on the policy; setup runs on the engine before the shell starts.
func start(t *testing.T, policy []byte, setup ...func(*bot.Engine)) *term {
	t.Helper()
	pol, err := policyfile.Parse("policy.yaml", policy)
	if err != nil {
		t.Fatal(err)
	}
	dir := local.New(pol)
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: dir})
	for _, f := range setup {
		f(eng)
	}
	pr, pw := io.Pipe()
	out := &syncBuf{}
	sh := shell.New(eng, pr, out, shell.Options{Tick: 50 * time.Millisecond})
	eng.AddNotifier(sh)
	tm := &term{t: t, in: pw, out: out, done: make(chan error, 1), dir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { tm.done <- sh.Run(ctx) }()
	t.Cleanup(func() { pw.Close(); cancel(); <-tm.done })
	return tm
}

// do types a line and waits until the output since the line contains every want.
func (tm *term) do(line string, want ...string) string {
	tm.t.Helper()
	tm.mark = len(tm.out.String())
	if _, err := io.WriteString(tm.in, line+"\n"); err != nil {
		tm.t.Fatal(err)
	}
	return tm.expect(5*time.Second, want...)
}

func (tm *term) expect(within time.Duration, want ...string) string {
	tm.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := tm.out.String()[tm.mark:]
		missing := ""
		for _, w := range want {
			if !strings.Contains(got, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return got
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waited %s for %q; output since the command:\n%s", within, missing, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShell_EveryRoleEndToEnd(t *testing.T) {
	tm := start(t, pimbot.ExamplePolicy)
	tm.expect(5*time.Second, "You are alice@example.com (Alice)")
	tm.do("/activate prod-db-admins for 2h fixing the outage",
		"submitted: member of prod-db-admins for 2h from now, waiting for approval",
		"→ to approvers bob@example.com, carol@example.com: Alice asks for member of prod-db-admins for 2h from now. Reason: \"fixing the outage\"",
		"→ to alice: request")
	tm.do("as mallory", "You are now mallory@example.com")
	tm.do("approve last", "You can't approve this: only bob@example.com or carol@example.com may approve requests for prod-db-admins.")
	tm.do("as bob", "You are now bob@example.com")
	out := tm.do("approve last", "approved.", "→ to alice: request", "is active: you are a member of prod-db-admins until", "sign out and in")
	if strings.Count(out, "is active") != 1 {
		t.Fatalf("activation told %d times:\n%s", strings.Count(out, "is active"), out)
	}
	tm.do("approve last", "it can no longer be approved")
	tm.do("members prod-db-admins", "prod-db-admins members: alice@example.com")
	tm.do("as alice", "You are now alice")
	tm.do("status", "active", "member of prod-db-admins for 2h", "deactivate")
	tm.do("deactivate last", "is being deactivated", "ended (deactivated by alice@example.com): you are no longer a member of prod-db-admins")
	tm.do("members prod-db-admins", "prod-db-admins members: (nobody)")
	tm.do("frobnicate", `Unknown command "frobnicate"`)
	tm.do("/activate prod-db-admins for 9h x", "9h is not allowed for prod-db-admins; choose between 5m and 4h")
	tm.do("as nobody", `No directory user "nobody"`)
}

func TestShell_FormOneQuestionAtATime(t *testing.T) {
	tm := start(t, pimbot.ExamplePolicy)
	tm.do("/activate", "Group (prod-db-admins, incident-db-admins, sandbox-admins)")
	tm.do("prod-db-admins", "Member or owner [member]")
	tm.do("owner", "Duration (5m to 4h) [1h]")
	tm.do("twelve", `"twelve" is not a duration`, "Duration (5m to 4h) [1h]")
	tm.do("12h", "12h is not allowed for prod-db-admins; choose between 5m and 4h", "Duration (5m to 4h)")
	tm.do("2h", "Start (now")
	tm.do("", "Reason:")
	tm.do("rotating keys", "submitted: owner of prod-db-admins for 2h from now, waiting for approval")
	tm.do("/activate", "Group")
	tm.do("cancel", "Nothing was requested.")
}

// One real-time window: a short grant really ends by itself.
func TestShell_RealTimeExpiry(t *testing.T) {
	policy := strings.Replace(string(pimbot.ExamplePolicy), "min_duration: 1m         # short enough", "min_duration: 1s         # short enough", 1)
	tm := start(t, []byte(policy))
	tm.do("/activate sandbox-admins for 2s", "no approval needed", "is active")
	tm.do("members sandbox-admins", "sandbox-admins members: alice@example.com")
	tm.mark = len(tm.out.String())
	tm.expect(10*time.Second, "ended (expired): you are no longer a member of sandbox-admins")
	tm.do("members sandbox-admins", "sandbox-admins members: (nobody)")
}
