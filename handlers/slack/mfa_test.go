package slack

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/handlers/slack/slackfake"
)

// verifier stands in for package entra: it hands out sign-in links and remembers bindings.
type verifier struct {
	mu      sync.Mutex
	bound   map[string]string // surface:chat user -> directory user id
	starts  int
	binding []bot.ChatAccount // the accounts bindings were started for
}

func (v *verifier) StartMFA(ctx context.Context, r *bot.Request) (bot.Challenge, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.starts++
	return bot.Challenge{URL: "https://login.example.com/authorize?state=mfa-" + r.ID + "&x=1", Expires: r.CreatedAt.Add(10 * time.Minute)}, nil
}

func (v *verifier) AuthContext() string { return "c1" }

func (v *verifier) started() int { v.mu.Lock(); defer v.mu.Unlock(); return v.starts }

func (v *verifier) Bound(ctx context.Context, surface, chatUser string) (string, bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id, ok := v.bound[surface+":"+chatUser]
	return id, ok, nil
}

func (v *verifier) StartBinding(ctx context.Context, chat bot.ChatAccount) (bot.Challenge, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.binding = append(v.binding, chat)
	return bot.Challenge{URL: "https://login.example.com/authorize?state=bind-" + chat.ID + "&y=2"}, nil
}

func (v *verifier) Unbind(ctx context.Context, chat bot.ChatAccount) (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.bound[chat.Surface+":"+chat.ID]
	delete(v.bound, chat.Surface+":"+chat.ID)
	return ok, nil
}

func (v *verifier) bind(chatUser, dirID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.bound[Name+":"+chatUser] = dirID
}

const mfaGroup = `
  - name: secure
    id: g-secure
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    require_mfa: true
    approval_channel: {slack: C0APPROVE}
`

func policyWith(extraGroups, settings string) string {
	p := strings.Replace(testPolicy, "groups:\n", "groups:\n"+strings.TrimPrefix(extraGroups, "\n"), 1)
	return strings.Replace(p, "settings: {requests_per_minute: 0, max_pending: 0}", "settings: {requests_per_minute: 0, max_pending: 0"+settings+"}", 1)
}

func TestMFA_LinkFirstThenApprovers(t *testing.T) {
	e := newEnvPolicy(t, policyWith(mfaGroup, ""))
	v := &verifier{bound: map[string]string{}}
	e.eng.SetMFA(v)
	_, name := e.command("UALICE", "secure for 1h rotating keys")
	if reply := e.waitResponse(name); !strings.Contains(reply, "verify with Microsoft") {
		t.Fatalf("reply: %s", reply)
	}
	r := e.requests("alice@example.com")[0]
	if r.State != bot.StateVerifying {
		t.Fatalf("state %s", r.State)
	}
	dm := e.waitDM("UALICE", "needs MFA", `"url":"https://login.example.com/authorize?state=mfa-`+r.ID, `"action_id":"cancel"`)
	if strings.Contains(dm, "&amp;x=1") {
		t.Fatalf("the button URL was escaped like text: %s", dm)
	}
	if len(e.fake.Calls("chat.postMessage")) != 1 {
		t.Fatal("approvers were asked before MFA")
	}
	if _, err := e.eng.MFAVerified(e.ctx, r.ID, bot.StepUpProof{UserID: r.Requester.ID, AuthTime: e.clock.Now().Add(time.Minute), ACRS: []string{"c1"}}); err != nil {
		t.Fatal(err)
	}
	e.approvalPosted(approvals, r.ID)
	var c slackfake.Call
	for _, x := range e.fake.Calls("chat.postMessage") {
		if x.Get("channel") == approvals {
			c = x
		}
	}
	if !strings.Contains(c.Get("blocks"), "*MFA*") || !strings.Contains(c.Get("blocks"), "passed at 09:01 UTC") {
		t.Fatalf("approvers are not told MFA passed: %s", c.Get("blocks"))
	}
	// The MFA DM was sent once, the link started once.
	n := 0
	for _, d := range e.dms("UALICE") {
		if strings.Contains(d, "needs MFA") {
			n++
		}
	}
	if n != 1 || v.starts != 1 {
		t.Fatalf("MFA DMs %d, links %d", n, v.starts)
	}
}

func TestBinding_SignInInsteadOfEmail(t *testing.T) {
	policy := policyWith("", ", identity_binding: entra_signin")
	pol, err := policyfile.Parse("t.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	if pol.Settings.IdentityBinding != bindingSignin {
		t.Fatalf("binding %q", pol.Settings.IdentityBinding)
	}
	// Without a binder the surface refuses to start: it must not fall back to e-mails.
	e0 := newEnv(t)
	if _, err := New(Options{Client: e0.s.api, Engine: bot.New(bot.Config{Policy: pol, Store: e0.store, Directory: e0.dir}), KV: e0.store}); err == nil {
		t.Fatal("entra_signin without a binder was accepted")
	}

	v := &verifier{bound: map[string]string{}}
	e := newEnvPolicy(t, policy, func(o *Options) { o.Binder = v })
	_, name := e.command("UALICE", "status")
	reply := e.waitResponse(name)
	if !strings.Contains(reply, "<https://login.example.com/authorize?state=bind-UALICE&amp;y=2|Sign in with Microsoft>") {
		t.Fatalf("an unbound account must get the sign-in link: %s", reply)
	}
	// The binding is started for the account's own profile e-mail: only that person's
	// sign-in can complete it (package entra checks the sign-in against it).
	v.mu.Lock()
	started := append([]bot.ChatAccount(nil), v.binding...)
	v.mu.Unlock()
	if len(started) != 1 || started[0] != (bot.ChatAccount{Surface: Name, ID: "UALICE", Email: "alice@example.com"}) {
		t.Fatalf("bindings started for %+v", started)
	}
	// Bob, bound to his own account, acts as Bob.
	v.bind("UBOB", e.user("bob@example.com").ID)
	r := e.submit("alice@example.com", bot.SubmitInput{Group: "prod-db-admins", Reason: "bound"})
	ts := e.approvalPosted(approvals, r.ID)
	// A stranger whose Slack account was bound to Bob (a forwarded link, before bindings
	// were checked) does not act as Bob.
	v.bind("USTRANGER", e.user("bob@example.com").ID)
	name = e.click("USTRANGER", actApprove, r.ID, approvals, ts)
	if reply := e.waitResponse(name); !strings.Contains(reply, "whose address is not yours") {
		t.Fatalf("a stranger bound to bob: %s", reply)
	}
	if got := e.get(r.ID); got.State != bot.StatePending {
		t.Fatalf("the stranger's click changed the request: %s", got.State)
	}
	e.click("UBOB", actApprove, r.ID, approvals, ts)
	e.pump("approval by the bound account", func() bool { return e.get(r.ID).State != bot.StatePending })
	if got := e.get(r.ID); got.Approvals[0].By.Email != "bob@example.com" {
		t.Fatalf("approved by %+v", got.Approvals[0].By)
	}
	// Alice, not yet bound, cannot approve as herself through her e-mail either.
	name = e.click("UALICE", actApprove, r.ID, approvals, ts)
	if reply := e.waitResponse(name); !strings.Contains(reply, "Sign in with Microsoft") {
		t.Fatalf("unbound click: %s", reply)
	}
}

// A refused binding (a link forwarded to someone else) is told to both Slack accounts: the
// one the link was made for, and the one of the person who signed in with it.
func TestBinding_RefusalToldToBothAccounts(t *testing.T) {
	e := newEnv(t)
	bob := e.user("bob@example.com")
	chat := bot.ChatAccount{Surface: Name, ID: "USTRANGER", Email: "stranger@elsewhere.example"}
	if err := e.eng.RecordBinding(context.Background(), bot.EvBindRefused, chat, bob, "forwarded link"); err != nil {
		t.Fatal(err)
	}
	e.waitDM("USTRANGER", "Someone else (bob@example.com)", "nothing was linked")
	e.waitDM("UBOB", "another slack account (stranger@elsewhere.example)", "nothing was linked")
}

// A sign-in that failed or ran out is not a dead end: "Verify again" in the MFA DM, or
// /activate verify <id>, gives the requester a fresh MFA message; anyone else is refused
// and nothing changes.
func TestMFA_VerifyAgain(t *testing.T) {
	e := newEnvPolicy(t, policyWith(mfaGroup, ""))
	v := &verifier{bound: map[string]string{}}
	e.eng.SetMFA(v)
	e.command("UALICE", "secure for 1h rotating keys")
	e.pump("the request", func() bool { return len(e.requests("alice@example.com")) == 1 })
	r := e.requests("alice@example.com")[0]
	e.waitDM("UALICE", "needs MFA", `"action_id":"`+actVerifyAgain+`"`, `"value":"`+r.ID+`"`)
	mfaDMs := func() int {
		n := 0
		for _, d := range e.dms("UALICE") {
			if strings.Contains(d, "needs MFA") && strings.Contains(d, `"url":"https://login.example.com/authorize?state=mfa-`+r.ID) {
				n++
			}
		}
		return n
	}

	// The requester clicks: a fresh MFA message in her DM, from a fresh sign-in.
	e.click("UALICE", actVerifyAgain, r.ID, "DALICE", "1700000000.000100")
	e.pump("a fresh MFA DM", func() bool { return mfaDMs() == 2 })
	if v.started() != 2 {
		t.Fatalf("%d sign-ins started, want 2", v.started())
	}

	// Someone else clicks (a forwarded message, a forged payload): refused privately.
	version := e.get(r.ID).Version
	name := e.click("UMALLORY", actVerifyAgain, r.ID, "DALICE", "1700000000.000100")
	if reply := e.waitResponse(name); !strings.Contains(reply, "You can't verify this: only the requester") {
		t.Fatalf("a stranger's click: %s", reply)
	}
	if len(e.dms("UMALLORY")) != 0 || v.started() != 2 || mfaDMs() != 2 || e.get(r.ID).Version != version {
		t.Fatalf("a refused click changed something: %d DMs to mallory, %d sign-ins, %d MFA DMs", len(e.dms("UMALLORY")), v.started(), mfaDMs())
	}

	// The text form answers privately where it was typed.
	_, name = e.command("UALICE", "verify "+r.ID)
	if reply := e.waitResponse(name); !strings.Contains(reply, "needs MFA") || !strings.Contains(reply, `"response_type":"ephemeral"`) {
		t.Fatalf("/activate verify: %s", reply)
	}
	_, name = e.command("UMALLORY", "verify "+r.ID)
	if reply := e.waitResponse(name); !strings.Contains(reply, "You can't verify this") {
		t.Fatalf("/activate verify by someone else: %s", reply)
	}
	if a, _ := e.command("UALICE", "verify"); !strings.Contains(a.Body, "Usage: `/activate verify") {
		t.Fatalf("/activate verify without an id: %s", a.Body)
	}
	if v.started() != 3 || e.get(r.ID).State != bot.StateVerifying || e.get(r.ID).Version != version {
		t.Fatalf("after the text form: %d sign-ins, state %s", v.started(), e.get(r.ID).State)
	}
}

// `/activate unlink` undoes the person's own link; the next action needs a new sign-in.
func TestBinding_Unlink(t *testing.T) {
	v := &verifier{bound: map[string]string{}}
	e := newEnvPolicy(t, policyWith("", ", identity_binding: entra_signin"), func(o *Options) { o.Binder = v })
	v.bind("UBOB", e.user("bob@example.com").ID)
	_, name := e.command("UBOB", "status")
	if reply := e.waitResponse(name); strings.Contains(reply, "Sign in with Microsoft") {
		t.Fatalf("bob is linked: %s", reply)
	}
	_, name = e.command("UBOB", "unlink")
	if reply := e.waitResponse(name); !strings.Contains(reply, "no longer linked") {
		t.Fatalf("unlink: %s", reply)
	}
	if _, ok, _ := v.Bound(e.ctx, Name, "UBOB"); ok {
		t.Fatal("still bound")
	}
	_, name = e.command("UBOB", "status")
	if reply := e.waitResponse(name); !strings.Contains(reply, "Sign in with Microsoft") {
		t.Fatalf("after unlink, a new sign-in is needed: %s", reply)
	}
	_, name = e.command("UBOB", "unlink")
	if reply := e.waitResponse(name); !strings.Contains(reply, "nothing to unlink") {
		t.Fatalf("unlink twice: %s", reply)
	}
}
