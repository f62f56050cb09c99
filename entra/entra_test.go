package entra_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/entra"
	"github.com/pimbot/pimbot/entra/entrafake"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
	"github.com/pimbot/pimbot/store/storetest"
)

const policy = `
groups:
  - name: prod
    id: g-prod
    eligible: [alice@example.com]
    approvers: [bob@example.com]
    require_mfa: true
  - name: sandbox
    id: g-sandbox
    eligible: [alice@example.com]
    require_approval: false
    require_mfa: true
    mfa_flow: device_code
directory:
  users:
    - {email: alice@example.com, id: oid-alice}
    - {email: bob@example.com, id: oid-bob}
    - {email: mallory@example.com, id: oid-mallory}
`

const tenantID = "72f988bf-86f1-41af-91ab-2d7cd011db47"

type world struct {
	ctx   context.Context
	eng   *bot.Engine
	idp   *entrafake.Server
	v     *entra.Verifier
	bot   *httptest.Server
	dir   *local.Directory
	st    *store.Redis
	alice bot.Actor
}

func newWorld(t *testing.T, opts ...func(*entra.Config)) *world {
	t.Helper()
	pol, err := policyfile.Parse("p.yaml", []byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.New(t)
	dir := local.New(pol)
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: dir})
	idp := entrafake.New(tenantID, "app-1", "contoso.onmicrosoft.com")
	t.Cleanup(idp.Close)
	w := &world{ctx: context.Background(), eng: eng, idp: idp, dir: dir, st: st}
	mux := http.NewServeMux()
	w.bot = httptest.NewServer(mux)
	t.Cleanup(w.bot.Close)
	// The tenant is named by its domain, as AZURE_TENANT_ID often is; discovery gives the
	// GUID form its tokens are issued under.
	cfg := entra.Config{LoginURL: idp.URL, TenantID: "contoso.onmicrosoft.com", ClientID: "app-1", ClientSecret: "s3cret", PublicURL: w.bot.URL,
		AuthContext: "c1", DevicePollInterval: 20 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	w.v, err = entra.New(cfg, eng, st)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET "+entra.CallbackPath, w.v)
	eng.SetMFA(w.v)
	u, _ := dir.ResolveUser(w.ctx, "alice")
	w.alice = bot.Actor{User: u, Surface: "shell"}
	return w
}

func (w *world) submit(t *testing.T, group string) *bot.Request {
	t.Helper()
	r, err := w.eng.Submit(w.ctx, w.alice, bot.SubmitInput{Group: group, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != bot.StateVerifying {
		t.Fatalf("state %s, want verifying", r.State)
	}
	return r
}

// pump runs the engine's due jobs (the device sign-in's polls among them) until cond holds.
func (w *world) pump(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if _, err := w.eng.RunDue(w.ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// follow opens the verification link as a browser would and returns the final page.
func follow(t *testing.T, link string) (int, string) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (w *world) state(t *testing.T, id string) bot.State {
	t.Helper()
	r, err := w.eng.Get(w.ctx, w.alice, id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

func TestMFA_AuthCodeFlow(t *testing.T) {
	cases := []struct {
		name   string
		person entrafake.Person
		ok     bool
		words  string
	}{
		{"context satisfied", entrafake.Person{OID: "oid-alice", UPN: "alice@example.com", ACRS: []string{"c1"}}, true, "MFA verified for request"},
		{"password only", entrafake.Person{OID: "oid-alice"}, false, "did not satisfy the authentication context c1"},
		{"amr says mfa, no context", entrafake.Person{OID: "oid-alice", AMR: []string{"pwd", "mfa"}, EmitAMR: true}, false, "did not satisfy the authentication context c1"},
		{"another context", entrafake.Person{OID: "oid-alice", ACRS: []string{"c2"}}, false, "did not satisfy the authentication context c1"},
		{"wrong user", entrafake.Person{OID: "oid-bob", UPN: "bob@example.com", ACRS: []string{"c1"}}, false, "you signed in as bob@example.com"},
		{"wrong nonce", entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}, WrongNonce: true}, false, "the nonce does not match"},
		{"expired token", entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}, Expired: true}, false, "it has expired"},
		{"another key", entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}, OtherKey: true}, false, "the sign-in token is not valid: failed to verify signature"},
		{"another app", entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}, WrongAudience: true}, false, "issued for another application"},
		{"another issuer", entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}, WrongIssuer: true}, false, "its issuer is not this tenant"},
		{"old sign-in", entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}, AuthTime: time.Now().Add(-time.Hour)}, false, "older than the request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			r := w.submit(t, "prod")
			ch, err := w.eng.StartMFA(w.ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"prompt=login", "code_challenge_method=S256", "claims=", "acrs", "auth_time", "redirect_uri=" + url.QueryEscape(w.bot.URL+entra.CallbackPath)} {
				if !strings.Contains(ch.URL, want) {
					t.Fatalf("authorize URL lacks %q: %s", want, ch.URL)
				}
			}
			w.idp.SignIn(c.person)
			status, body := follow(t, ch.URL)
			if !strings.Contains(body, c.words) {
				t.Fatalf("page (%d) lacks %q:\n%s", status, c.words, body)
			}
			want := bot.StateVerifying
			if c.ok {
				want = bot.StatePending
			}
			if got := w.state(t, r.ID); got != want || (status == 200) != c.ok {
				t.Fatalf("state %s (HTTP %d), want %s", got, status, want)
			}
			if c.ok {
				got, _ := w.eng.Get(w.ctx, w.alice, r.ID)
				if got.MFAVerifiedAt.IsZero() {
					t.Fatal("the MFA time is not recorded")
				}
			}
		})
	}
}

func TestMFA_StateIsSingleUse(t *testing.T) {
	w := newWorld(t)
	r := w.submit(t, "prod")
	ch, _ := w.eng.StartMFA(w.ctx, r)
	w.idp.SignIn(entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}})
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(ch.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if status, body := follow(t, callback); status != 200 {
		t.Fatalf("first use: %d %s", status, body)
	}
	status, body := follow(t, callback)
	if status != 400 || !strings.Contains(body, "expired or was already used") {
		t.Fatalf("replayed state: %d %s", status, body)
	}
	status, body = follow(t, w.bot.URL+entra.CallbackPath+"?state=made-up&code=x")
	if status != 400 || !strings.Contains(body, "expired or was already used") {
		t.Fatalf("unknown state: %d %s", status, body)
	}
	status, body = follow(t, w.bot.URL+entra.CallbackPath+"?code=x&state=%3Cscript%3E")
	if strings.Contains(body, "<script>") {
		t.Fatal("the page reflects input unescaped")
	}
	_ = status
}

func TestMFA_TimesOutWithoutVerification(t *testing.T) {
	w := newWorld(t)
	r := w.submit(t, "prod")
	// Nothing reaches the approvers while verifying, and cancel works.
	if _, err := w.eng.Approve(w.ctx, bot.Actor{User: bot.User{ID: "oid-bob", Email: "bob@example.com"}}, r.ID); err == nil {
		t.Fatal("approved before MFA")
	}
	if _, err := w.eng.Cancel(w.ctx, w.alice, r.ID); err != nil {
		t.Fatal(err)
	}
}

func TestMFA_DeviceCodeFlow(t *testing.T) {
	w := newWorld(t)
	r := w.submit(t, "sandbox")
	ch, err := w.eng.StartMFA(w.ctx, r)
	if err != nil || ch.UserCode == "" || ch.URL != "https://microsoft.com/devicelogin" {
		t.Fatalf("challenge %+v %v", ch, err)
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}})
	w.idp.ApproveDevice()
	w.pump(t, "the device sign-in to complete", func() bool { return w.state(t, r.ID) != bot.StateVerifying })
	if got := w.state(t, r.ID); got != bot.StateScheduled {
		t.Fatalf("state %s, want scheduled (sandbox needs no approval)", got)
	}
}

func TestMFA_DeviceCodeWithoutMFAIsRefused(t *testing.T) {
	done := make(chan error, 1)
	w := newWorld(t, func(c *entra.Config) { c.OnDeviceDone = func(_ string, err error) { done <- err } })
	r := w.submit(t, "sandbox")
	if _, err := w.eng.StartMFA(w.ctx, r); err != nil {
		t.Fatal(err)
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-alice", AMR: []string{"pwd"}})
	w.idp.ApproveDevice()
	w.pump(t, "the device sign-in to end", func() bool { return len(done) > 0 })
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not satisfy the authentication context c1") {
			t.Fatalf("device sign-in ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the device sign-in never ended")
	}
	if got := w.state(t, r.ID); got != bot.StateVerifying {
		t.Fatalf("state %s: a password-only sign-in must not verify", got)
	}
}

func TestBinding_SignInBindsChatAccount(t *testing.T) {
	w := newWorld(t, func(c *entra.Config) { c.AuthContext = "" }) // no MFA rules: a plain sign-in binds
	if _, ok, _ := w.v.Bound(w.ctx, "slack", "U123"); ok {
		t.Fatal("bound before any sign-in")
	}
	ch, err := w.v.StartBinding(w.ctx, bot.ChatAccount{Surface: "slack", ID: "U123", Email: "Bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ch.URL, "claims=") {
		t.Fatal("binding must not demand MFA")
	}
	if !strings.Contains(ch.URL, "login_hint=Bob%40example.com") {
		t.Fatalf("Microsoft's page is not told which account is being linked: %s", ch.URL)
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-bob", UPN: "bob@example.com", AMR: []string{"pwd"}})
	if status, body := follow(t, ch.URL); status != 200 || !strings.Contains(body, "linked to bob@example.com") {
		t.Fatalf("%d %s", status, body)
	}
	if oid, ok, _ := w.v.Bound(w.ctx, "slack", "U123"); !ok || oid != "oid-bob" {
		t.Fatalf("bound to %q %v", oid, ok)
	}
	if n := w.audited(t, bot.EvBound); n != 1 {
		t.Fatalf("%d binding audit records", n)
	}
}

// Mallory forwards her link to Bob ("please verify"); Bob signs in on the genuine page.
// Mallory's chat account is bound to nobody, and the refusal is on the record.
func TestBinding_ForwardedLinkBindsNobody(t *testing.T) {
	w := newWorld(t, func(c *entra.Config) { c.AuthContext = "" })
	ch, err := w.v.StartBinding(w.ctx, bot.ChatAccount{Surface: "slack", ID: "UMALLORY", Email: "mallory@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-bob", UPN: "bob@example.com", AMR: []string{"pwd"}})
	status, body := follow(t, ch.URL)
	if status != 400 || !strings.Contains(body, "nothing was linked") || !strings.Contains(body, "mallory@example.com") {
		t.Fatalf("%d %s", status, body)
	}
	if oid, ok, _ := w.v.Bound(w.ctx, "slack", "UMALLORY"); ok {
		t.Fatalf("mallory's account was bound to %s", oid)
	}
	if n := w.audited(t, bot.EvBindRefused); n != 1 {
		t.Fatalf("%d refused-binding audit records", n)
	}
	// A chat account whose platform shows no e-mail cannot start a binding at all.
	if _, err := w.v.StartBinding(w.ctx, bot.ChatAccount{Surface: "slack", ID: "UNOMAIL"}); err == nil {
		t.Fatal("a binding started without the chat platform's e-mail")
	}
}

func (w *world) audited(t *testing.T, typ string) int {
	t.Helper()
	recs, err := w.st.AuditSince(w.ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Type == typ {
			n++
		}
	}
	return n
}

func TestMFA_NotConfiguredRefusesClearly(t *testing.T) {
	pol, _ := policyfile.Parse("p.yaml", []byte(policy))
	dir := local.New(pol)
	eng := bot.New(bot.Config{Policy: pol, Store: storetest.New(t), Directory: dir})
	u, _ := dir.ResolveUser(context.Background(), "alice")
	_, err := eng.Submit(context.Background(), bot.Actor{User: u}, bot.SubmitInput{Group: "prod", Reason: "x"})
	if err == nil || !strings.Contains(err.Error(), "MFA verification with Microsoft is required") {
		t.Fatalf("err = %v", err)
	}
}

// A refused sign-in (the wrong account) is not a dead end: the same link works for the
// requester afterwards. So does a sign-in that met a transient token endpoint error.
func TestMFA_LinkSurvivesARefusalAndATransientError(t *testing.T) {
	w := newWorld(t)
	r := w.submit(t, "prod")
	ch, err := w.eng.StartMFA(w.ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-bob", UPN: "bob@example.com", ACRS: []string{"c1"}})
	if status, body := follow(t, ch.URL); status != 400 || !strings.Contains(body, "the link still works") {
		t.Fatalf("wrong account: %d %s", status, body)
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}})
	w.idp.FailToken(1)
	if status, body := follow(t, ch.URL); status != 503 || !strings.Contains(body, "it still works") {
		t.Fatalf("token endpoint outage: %d %s", status, body)
	}
	if got := w.state(t, r.ID); got != bot.StateVerifying {
		t.Fatalf("state %s after two failed sign-ins", got)
	}
	if status, body := follow(t, ch.URL); status != 200 || !strings.Contains(body, "MFA verified") {
		t.Fatalf("the requester with the same link: %d %s", status, body)
	}
	if status, body := follow(t, ch.URL); status != 400 || !strings.Contains(body, "expired or was already used") {
		t.Fatalf("after success the link is spent: %d %s", status, body)
	}
}

// Without an authentication context no sign-in can prove MFA with Entra: the verifier says
// so instead of sending people to a sign-in that can never pass.
func TestMFA_WithoutAnAuthContextRefusesClearly(t *testing.T) {
	w := newWorld(t, func(c *entra.Config) { c.AuthContext = "" })
	_, err := w.eng.Submit(w.ctx, w.alice, bot.SubmitInput{Group: "prod", Reason: "x"})
	if err == nil || !strings.Contains(err.Error(), "authentication context") {
		t.Fatalf("submit: %v", err)
	}
}

// Where the policy asks for MFA, the sign-in that binds an account must satisfy the same
// authentication context: it decides who will act through that account.
func TestBinding_ObeysMFAWhereThePolicyAsksForIt(t *testing.T) {
	w := newWorld(t) // the policy has groups with require_mfa, and the context c1
	ch, err := w.v.StartBinding(w.ctx, bot.ChatAccount{Surface: "slack", ID: "UBOB", Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ch.URL, "claims=") || !strings.Contains(ch.URL, "c1") {
		t.Fatalf("the binding sign-in does not ask for the context: %s", ch.URL)
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-bob", UPN: "bob@example.com"})
	if status, body := follow(t, ch.URL); status != 400 || !strings.Contains(body, "did not satisfy the authentication context c1") {
		t.Fatalf("password only: %d %s", status, body)
	}
	if _, ok, _ := w.v.Bound(w.ctx, "slack", "UBOB"); ok {
		t.Fatal("bound without MFA")
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-bob", UPN: "bob@example.com", ACRS: []string{"c1"}})
	if status, body := follow(t, ch.URL); status != 200 {
		t.Fatalf("with MFA, same link: %d %s", status, body)
	}
	if oid, ok, _ := w.v.Bound(w.ctx, "slack", "UBOB"); !ok || oid != "oid-bob" {
		t.Fatalf("bound to %q %v", oid, ok)
	}
}

// The authority must be reached over https (plain http on loopback only), and discovery must
// name this tenant's issuer at that authority.
func TestDiscovery_AuthorityAndIssuerAreChecked(t *testing.T) {
	pol, _ := policyfile.Parse("p.yaml", []byte(policy))
	st := storetest.New(t)
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: local.New(pol)})
	for _, login := range []string{"http://login.example.com", "ftp://login.example.com"} {
		if _, err := entra.New(entra.Config{LoginURL: login, TenantID: tenantID, ClientID: "app-1"}, eng, st); err == nil || !strings.Contains(err.Error(), "https") {
			t.Fatalf("%s: %v", login, err)
		}
	}
	// A tenant id that is not the one discovery names: nothing is trusted.
	idp := entrafake.New(tenantID, "app-1", "fabrikam.onmicrosoft.com")
	t.Cleanup(idp.Close)
	v, err := entra.New(entra.Config{LoginURL: idp.URL, TenantID: "fabrikam.onmicrosoft.com", ClientID: "app-1", PublicURL: "https://pimbot.example.com"}, eng, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.StartBinding(context.Background(), bot.ChatAccount{Surface: "slack", ID: "U1", Email: "bob@example.com"}); err != nil {
		t.Fatalf("a domain alias of the tenant: %v", err)
	}
	other := "00000000-0000-4000-8000-000000000000"
	idp2 := entrafake.New(tenantID, "app-1", other) // answers under another GUID, names its own
	t.Cleanup(idp2.Close)
	v2, _ := entra.New(entra.Config{LoginURL: idp2.URL, TenantID: other, ClientID: "app-1", PublicURL: "https://pimbot.example.com"}, eng, st)
	if _, err := v2.StartBinding(context.Background(), bot.ChatAccount{Surface: "slack", ID: "U1", Email: "bob@example.com"}); err == nil || !strings.Contains(err.Error(), "not tenant") {
		t.Fatalf("an issuer of another tenant: %v", err)
	}
}

// A device sign-in in progress survives a restart: its state is in Redis and its polls are
// jobs, so a new process (or any replica) finishes it.
func TestMFA_DeviceSignInSurvivesARestart(t *testing.T) {
	w := newWorld(t)
	r := w.submit(t, "sandbox")
	if _, err := w.eng.StartMFA(w.ctx, r); err != nil {
		t.Fatal(err)
	}
	// The process that started it is gone; another starts on the same Redis.
	finished := make(chan error, 1)
	pol, _ := policyfile.Parse("p.yaml", []byte(policy))
	eng2 := bot.New(bot.Config{Policy: pol, Store: w.st, Directory: w.dir})
	v2, err := entra.New(entra.Config{LoginURL: w.idp.URL, TenantID: "contoso.onmicrosoft.com", ClientID: "app-1", ClientSecret: "s3cret",
		PublicURL: w.bot.URL, AuthContext: "c1", DevicePollInterval: 20 * time.Millisecond,
		OnDeviceDone: func(_ string, err error) { finished <- err }}, eng2, w.st)
	if err != nil {
		t.Fatal(err)
	}
	eng2.SetMFA(v2)
	w.idp.SignIn(entrafake.Person{OID: "oid-alice", ACRS: []string{"c1"}})
	w.idp.ApproveDevice()
	w2 := *w
	w2.eng = eng2
	w2.pump(t, "the new process to finish the device sign-in", func() bool { return w2.state(t, r.ID) != bot.StateVerifying })
	if got := w2.state(t, r.ID); got != bot.StateScheduled {
		t.Fatalf("state %s", got)
	}
	select {
	case err := <-finished:
		if err != nil {
			t.Fatalf("the new process's poll ended with %v", err)
		}
	default:
		t.Fatal("the sign-in was not finished by the new process")
	}
}

// Undoing a link is an audit event, and the account is no longer bound.
func TestBinding_UnbindIsAudited(t *testing.T) {
	w := newWorld(t, func(c *entra.Config) { c.AuthContext = "" })
	chat := bot.ChatAccount{Surface: "slack", ID: "UBOB", Email: "bob@example.com"}
	ch, err := w.v.StartBinding(w.ctx, chat)
	if err != nil {
		t.Fatal(err)
	}
	w.idp.SignIn(entrafake.Person{OID: "oid-bob", UPN: "bob@example.com"})
	if status, _ := follow(t, ch.URL); status != 200 {
		t.Fatal("bind")
	}
	if ok, err := w.v.Unbind(w.ctx, chat); !ok || err != nil {
		t.Fatalf("unbind: %v %v", ok, err)
	}
	if _, ok, _ := w.v.Bound(w.ctx, "slack", "UBOB"); ok {
		t.Fatal("still bound")
	}
	if n := w.audited(t, bot.EvUnbound); n != 1 {
		t.Fatalf("%d unbinding audit records", n)
	}
	if ok, _ := w.v.Unbind(w.ctx, chat); ok {
		t.Fatal("unbound twice")
	}
}
