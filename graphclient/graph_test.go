package graphclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/graphclient"
	"github.com/pimbot/pimbot/graphclient/graphfake"
)

const (
	gProd  = "7c1e0f8a-0000-4000-8000-000000000001"
	gRole  = "7c1e0f8a-0000-4000-8000-000000000002"
	gSRE   = "7c1e0f8a-0000-4000-8000-0000000000a1"
	gEng   = "7c1e0f8a-0000-4000-8000-0000000000a2"
	uAlice = "11111111-0000-4000-8000-000000000001"
	uBob   = "11111111-0000-4000-8000-000000000002"
	uCarol = "11111111-0000-4000-8000-000000000003"
	uErin  = "11111111-0000-4000-8000-000000000005"
)

// tenant is a fake tenant: alice (mail = UPN), bob (a guest: mail != UPN), erin (in
// engineering through the nested sre group), and the directory pointed at it.
func tenant(t *testing.T) (*graphfake.Server, *graphclient.Directory) {
	t.Helper()
	f := graphfake.Start(t)
	f.Token = "test-token"
	f.AddUser(graphfake.User{ID: uAlice, Mail: "alice@example.com", UPN: "alice@example.com", Name: "Alice"})
	f.AddUser(graphfake.User{ID: uBob, Mail: "bob@example.com", UPN: "bob_example.com#EXT#@contoso.onmicrosoft.com", Name: "Bob"})
	f.AddUser(graphfake.User{ID: uCarol, Mail: "carol@example.com", UPN: "carol@example.com", Name: "Carol"})
	f.AddUser(graphfake.User{ID: uErin, Mail: "erin@example.com", UPN: "erin@contoso.onmicrosoft.com", Name: "Erin"})
	f.AddGroup(gProd, "prod-db-admins@example.com")
	f.PutGroup(graphfake.Group{ID: gRole, Mail: "tier0@example.com", Name: "tier0", RoleAssignable: true})
	f.AddGroup(gSRE, "sre@example.com", uErin)
	f.AddGroup(gEng, "engineering@example.com", uAlice, gSRE) // nested: erin is in engineering through sre
	return f, directory(t, f, "test-token")
}

func directory(t testing.TB, f *graphfake.Server, token string) *graphclient.Directory {
	t.Helper()
	d, err := graphclient.New(graphclient.Config{BaseURL: f.BaseURL(), AccessToken: token})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAddRemove_MemberAndOwner_Idempotent(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	for _, a := range []bot.Access{bot.Member, bot.Owner} {
		for i := 0; i < 2; i++ { // the second add answers 400 "already exist": success
			if err := d.Add(ctx, gProd, uAlice, a); err != nil {
				t.Fatalf("add %s #%d: %v", a, i+1, err)
			}
		}
		if !f.Holds(gProd, uAlice, a == bot.Owner) {
			t.Fatalf("not a %s after add", a)
		}
	}
	if err := d.Add(ctx, gProd, uBob, bot.Owner); err != nil { // a second owner, so alice's removal is allowed
		t.Fatal(err)
	}
	for _, a := range []bot.Access{bot.Member, bot.Owner} {
		if err := d.Remove(ctx, gProd, uAlice, a); err != nil {
			t.Fatalf("remove %s: %v", a, err)
		}
		// The second remove answers 404: "not held", which the engine weighs (replication lag).
		if err := d.Remove(ctx, gProd, uAlice, a); !errors.Is(err, bot.ErrNotHeld) {
			t.Fatalf("remove %s again: %v, want ErrNotHeld", a, err)
		}
		if f.Holds(gProd, uAlice, a == bot.Owner) {
			t.Fatalf("still a %s after remove", a)
		}
	}
	var answers []string
	for _, c := range f.Calls() {
		answers = append(answers, fmt.Sprintf("%s %s %d", c.Method, strings.TrimPrefix(c.Path, "/v1.0/groups/"+gProd), c.Status))
		// Every call carried the token: the allowed host matched the fake's host name.
		if c.Auth != "Bearer test-token" {
			t.Errorf("%s %s went out with Authorization %q", c.Method, c.Path, c.Auth)
		}
		if c.Gzip {
			t.Errorf("%s %s: a gzipped body (the compression handler is still in the chain)", c.Method, c.Path)
		}
		if c.Method == "POST" && c.Body != `{"@odata.id":"`+f.BaseURL()+`/directoryObjects/`+strings.ToLower(uAlice)+`"}` && !strings.Contains(c.Body, uBob) {
			t.Errorf("$ref body: %s", c.Body)
		}
	}
	want := []string{
		"POST /members/$ref 204", "POST /members/$ref 400", "POST /owners/$ref 204", "POST /owners/$ref 400", "POST /owners/$ref 204",
		"DELETE /members/" + uAlice + "/$ref 204", "DELETE /members/" + uAlice + "/$ref 404",
		"DELETE /owners/" + uAlice + "/$ref 204", "DELETE /owners/" + uAlice + "/$ref 404",
	}
	if strings.Join(answers, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Graph saw:\n%s\nwant:\n%s", strings.Join(answers, "\n"), strings.Join(want, "\n"))
	}
}

func TestRefusalsThatWillNotHeal(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	var ge *graphclient.Error

	err := d.Add(ctx, "7c1e0f8a-0000-4000-8000-00000000dead", uAlice, bot.Member)
	if !errors.Is(err, bot.ErrNotFound) || !errors.As(err, &ge) || ge.Status != 404 || ge.Code != "Request_ResourceNotFound" || ge.RequestID == "" || ge.Transient() {
		t.Fatalf("missing group: %v", err)
	}
	if err := d.Add(ctx, gProd, "11111111-0000-4000-8000-0000000000ff", bot.Member); !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("missing user: %v", err)
	}
	// The last owner cannot be removed: a 400 that will not heal.
	if err := d.Add(ctx, gProd, uAlice, bot.Owner); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, gProd, uAlice, bot.Owner); !errors.Is(err, bot.ErrLastOwner) || !errors.As(err, &ge) || ge.Status != 400 || ge.Transient() {
		t.Fatalf("last owner: %v, want ErrLastOwner", err)
	}
	// Also when the only other owner is a service principal (Graph counts it; pimbot does not).
	f.Grant(gProd, "33333333-0000-4000-8000-0000000000aa", true)
	if err := d.Remove(ctx, gProd, uAlice, bot.Owner); err != nil {
		t.Fatalf("with an app co-owner, the fake (as Graph) lets the user go: %v", err)
	}
	if hs, err := d.Holders(ctx, gProd, bot.Owner); err != nil || len(hs) != 0 {
		t.Fatalf("user owners: %v %v (a service principal is not a user)", hs, err)
	}

	// The app has GroupMember.ReadWrite.All only: owners and role-assignable groups are refused
	// (403 Authorization_RequestDenied), and the error names the permission.
	limited := directory(t, f, f.Mint("GroupMember.ReadWrite.All", "User.Read.All"))
	cases := []struct {
		group  string
		access bot.Access
		perm   string
	}{
		{gProd, bot.Owner, "Group.ReadWrite.All"},
		{gRole, bot.Member, "RoleManagement.ReadWrite.Directory"},
	}
	for _, c := range cases {
		err := limited.Add(ctx, c.group, uBob, c.access)
		if !errors.Is(err, bot.ErrForbidden) || !errors.As(err, &ge) || ge.Status != 403 || ge.Code != "Authorization_RequestDenied" || !strings.Contains(err.Error(), c.perm) {
			t.Fatalf("add %s to %s: %v", c.access, c.group, err)
		}
	}
	if err := limited.Add(ctx, gProd, uBob, bot.Member); err != nil {
		t.Fatalf("the permission the app has: %v", err)
	}

	// Transient: throttling and outages wrap neither kind.
	f.Fault(func(r *http.Request) (int, string) { return 503, "" })
	short, err := graphclient.New(graphclient.Config{BaseURL: f.BaseURL(), AccessToken: "test-token", MaxRetries: 1, CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = short.Add(ctx, gProd, uCarol, bot.Member)
	if errors.Is(err, bot.ErrForbidden) || errors.Is(err, bot.ErrNotFound) || !errors.As(err, &ge) || ge.Status != 503 || !ge.Transient() {
		t.Fatalf("503: %v", err)
	}
}

func TestResolveUser_ByIDUPNAndMail(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	// bob's mail is not his UPN (a guest): by UPN, by mail, by id.
	for _, ref := range []string{uBob, "bob@example.com", "BOB_example.com#EXT#@contoso.onmicrosoft.com", " Bob@Example.com "} {
		u, err := d.ResolveUser(ctx, ref)
		if err != nil || u.ID != uBob || u.Email != "bob@example.com" || u.UPN != "bob_example.com#ext#@contoso.onmicrosoft.com" {
			t.Fatalf("%s: %+v %v", ref, u, err)
		}
	}
	// erin signs in as erin@contoso.onmicrosoft.com; her mail is erin@example.com.
	if u, err := d.ResolveUser(ctx, "erin@example.com"); err != nil || u.ID != uErin {
		t.Fatalf("erin by mail: %+v %v", u, err)
	}
	if u, err := d.ResolveUser(ctx, "erin@contoso.onmicrosoft.com"); err != nil || u.ID != uErin {
		t.Fatalf("erin by UPN: %+v %v", u, err)
	}
	for _, bad := range []string{"nobody@example.com", "x' or 1 eq 1 or mail eq 'y", "../groups", "", "11111111-0000-4000-8000-0000000000ff", "a@b@example.com"} {
		if _, err := d.ResolveUser(ctx, bad); !errors.Is(err, bot.ErrNotFound) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	// Answers are cached: asking again costs no Graph call (also for "no such user").
	before := len(f.Calls())
	d.ResolveUser(ctx, "bob@example.com")
	d.ResolveUser(ctx, "nobody@example.com")
	if n := len(f.Calls()) - before; n != 0 {
		t.Fatalf("%d Graph calls for answers already known", n)
	}
}

func TestInGroup_TransitiveBatchedAndCached(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	cases := []struct {
		user, group string
		want        bool
	}{
		{uErin, "engineering@example.com", true}, // through sre
		{uAlice, "group:engineering@example.com", true},
		{uBob, "engineering@example.com", false},
		{uErin, gSRE, true},
		{uAlice, gSRE, false},
		{uErin, "nosuch@example.com", false},
		{"11111111-0000-4000-8000-0000000000ff", gSRE, false}, // no such user
	}
	for _, c := range cases {
		got, err := d.InGroup(ctx, c.user, c.group)
		if err != nil || got != c.want {
			t.Fatalf("%s in %s = %v, %v; want %v", c.user, c.group, got, err, c.want)
		}
	}
	// Both groups are known now: carol's first question asks about both in one call, and
	// her second is answered from the cache.
	before := len(f.Calls())
	if in, err := d.InGroup(ctx, uCarol, gSRE); err != nil || in {
		t.Fatal(in, err)
	}
	if in, err := d.InGroup(ctx, uCarol, "engineering@example.com"); err != nil || in {
		t.Fatal(in, err)
	}
	calls := f.Calls()[before:]
	if len(calls) != 1 || !strings.HasSuffix(calls[0].Path, "/checkMemberGroups") || !strings.Contains(calls[0].Body, gEng) || !strings.Contains(calls[0].Body, gSRE) {
		t.Fatalf("want one checkMemberGroups for both groups, got %+v", calls)
	}
}

// A storm of 429s: for two seconds Graph answers every call 429 with Retry-After: 1. Fifty
// adds at once all land, none is re-sent before its Retry-After, no more than MaxInFlight
// calls are ever in flight, and the process holds off instead of re-sending every add.
func TestThrottling_429StormIsRidden(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 50; i++ {
		id := fmt.Sprintf("22222222-0000-4000-8000-%012d", i)
		f.AddUser(graphfake.User{ID: id, Mail: fmt.Sprintf("s%d@example.com", i), UPN: fmt.Sprintf("s%d@example.com", i)})
		ids = append(ids, id)
	}
	stormEnds := time.Now().Add(2 * time.Second)
	f.Fault(func(r *http.Request) (int, string) {
		if time.Now().Before(stormEnds) {
			return 429, "1"
		}
		return 0, ""
	})
	var wg sync.WaitGroup
	errs := make(chan error, len(ids))
	for _, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- d.Add(ctx, gProd, id, bot.Member) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if !f.Holds(gProd, id, false) {
			t.Fatalf("%s not added", id)
		}
	}
	if p := f.PeakInFlight(); p > graphclient.MaxInFlight {
		t.Fatalf("%d calls in flight at once, the bound is %d", p, graphclient.MaxInFlight)
	}
	// Each add's attempts: 429s spaced by at least Retry-After, then one 204.
	byUser := map[string][]graphfake.Call{}
	for _, c := range f.Calls() {
		if c.Method == "POST" {
			uid := c.Body[strings.LastIndex(c.Body, "/")+1 : len(c.Body)-2]
			byUser[uid] = append(byUser[uid], c)
		}
	}
	throttled := 0
	for uid, cs := range byUser {
		if len(cs) > 1+graphclient.MaxRetries || cs[len(cs)-1].Status != 204 {
			t.Fatalf("%s: %d attempts, last %d", uid, len(cs), cs[len(cs)-1].Status)
		}
		for i := 1; i < len(cs); i++ {
			throttled++
			if gap := cs[i].At.Sub(cs[i-1].At); gap < time.Second {
				t.Fatalf("%s re-sent %s after a 429 with Retry-After: 1", uid, gap)
			}
		}
	}
	// A streak of 429s pauses the whole process until Retry-After, then one probe goes out:
	// Graph sees the first burst, a probe per Retry-After, and the adds once it lets them
	// through, not every add re-sent every second.
	posts := 0
	for _, cs := range byUser {
		posts += len(cs)
	}
	t.Logf("%d POSTs for %d adds (%d answered 429)", posts, len(ids), throttled)
	if throttled < graphclient.ThrottleStreak {
		t.Fatalf("only %d throttled answers; the storm did not happen", throttled)
	}
	if limit := len(ids) + 2*graphclient.MaxInFlight; posts > limit {
		t.Fatalf("%d POSTs reached Graph during the storm, want at most %d", posts, limit)
	}
}

// Server errors without Retry-After are retried with backoff within the call.
func TestServerErrorsAreRetried(t *testing.T) {
	f, d := tenant(t)
	var n atomic.Int32
	f.Fault(func(r *http.Request) (int, string) {
		switch n.Add(1) {
		case 1:
			return 500, ""
		case 2:
			return 504, ""
		}
		return 0, ""
	})
	f.Grant(gProd, uAlice, false)
	if err := d.Remove(context.Background(), gProd, uAlice, bot.Member); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 3 {
		t.Fatalf("%d attempts, want 3 (500, 504, then the answer)", n.Load())
	}
}

// Every call has a deadline: a Graph that does not answer costs CallTimeout, not forever.
func TestEveryCallHasADeadline(t *testing.T) {
	f := graphfake.Start(t)
	f.Latency = 10 * time.Second
	d, err := graphclient.New(graphclient.Config{BaseURL: f.BaseURL(), AccessToken: "t", CallTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = d.Add(context.Background(), gProd, uAlice, bot.Member)
	if err == nil || errors.Is(err, bot.ErrForbidden) || errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("a hanging Graph: %v (want a transient error)", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the call took %s; its deadline is 200ms", took)
	}
}

// Fifty adds and removes at once through the one shared client (run with -race).
func TestConcurrentCallsThroughOneClient(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 25; i++ {
		id := fmt.Sprintf("22222222-0000-4000-8000-%012d", i)
		f.AddUser(graphfake.User{ID: id, Mail: fmt.Sprintf("u%d@example.com", i), UPN: fmt.Sprintf("u%d@example.com", i)})
		ids = append(ids, id)
		if i%2 == 1 { // half start as members and owners, to be removed while the others are added
			f.Grant(gProd, id, false)
			f.Grant(gProd, id, true)
		}
	}
	f.Grant(gProd, uCarol, true) // so that the last owner is never in question
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i, id := range ids {
		for _, a := range []bot.Access{bot.Member, bot.Owner} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if i%2 == 0 {
					errs <- d.Add(ctx, gProd, id, a)
				} else if err := d.Remove(ctx, gProd, id, a); err != nil {
					errs <- err
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := d.ResolveUser(ctx, fmt.Sprintf("u%d@example.com", i))
			if err == nil {
				_, err = d.InGroup(ctx, id, "engineering@example.com")
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		for _, owner := range []bool{false, true} {
			if f.Holds(gProd, id, owner) != (i%2 == 0) {
				t.Fatalf("user %d owner=%v: holds=%v", i, owner, !(i%2 == 0))
			}
		}
	}
}

func TestHolders_FollowsPagesAndListsUsersOnly(t *testing.T) {
	f, d := tenant(t)
	f.MaxPage = 2
	for _, u := range []string{uAlice, uBob, uCarol, uErin} {
		f.Grant(gEng, u, false)
	}
	hs, err := d.Holders(context.Background(), gEng, bot.Member) // alice, bob, carol, erin and the nested sre group
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hs {
		got = append(got, h.Email)
	}
	if strings.Join(got, ",") != "alice@example.com,bob@example.com,carol@example.com,erin@example.com" {
		t.Fatalf("holders: %v", got)
	}
	pages := 0
	for _, c := range f.Calls() {
		if strings.HasSuffix(c.Path, "/members") {
			pages++
		}
	}
	if pages < 3 {
		t.Fatalf("%d pages read; the fake served pages of 2", pages)
	}
}

// The fake fails loudly on a body labelled gzip that is not gzip (what the SDK's compression
// handler sends on a retry); the directory never sends one, also when retrying a POST.
func TestGzipLabelledBodies(t *testing.T) {
	f := graphfake.New()
	defer f.Close()
	f.AddGroup(gProd, "prod@example.com")
	f.AddUser(graphfake.User{ID: uAlice, Mail: "alice@example.com", UPN: "alice@example.com"})
	req, _ := http.NewRequest("POST", f.BaseURL()+"/groups/"+gProd+"/members/$ref",
		strings.NewReader(`{"@odata.id":"https://graph.microsoft.com/v1.0/directoryObjects/`+uAlice+`"}`))
	req.Header.Set("Authorization", "Bearer x")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || len(f.Violations()) != 1 || f.Holds(gProd, uAlice, false) {
		t.Fatalf("a plain body labelled gzip: %d, violations %q", resp.StatusCode, f.Violations())
	}

	g := graphfake.Start(t) // fails the test on any violation
	g.AddGroup(gProd, "prod@example.com")
	g.AddUser(graphfake.User{ID: uAlice, Mail: "alice@example.com", UPN: "alice@example.com"})
	var n atomic.Int32
	g.Fault(func(r *http.Request) (int, string) {
		if n.Add(1) == 1 {
			return 429, "0"
		}
		return 0, ""
	})
	if err := directory(t, g, "t").Add(context.Background(), gProd, uAlice, bot.Member); err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Calls() {
		if c.Gzip {
			t.Fatalf("%s %s sent a gzip-labelled body", c.Method, c.Path)
		}
	}
}

// Twenty clicks at once for the same person cost one Graph call, and one caller giving up
// does not fail the others.
func TestLookupsAreSharedBetweenConcurrentCallers(t *testing.T) {
	f, d := tenant(t)
	f.Latency = 100 * time.Millisecond
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.ResolveUser(gone, "carol@example.com"); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller that gave up: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := d.ResolveUser(context.Background(), "carol@example.com")
			if err == nil && u.ID != uCarol {
				err = fmt.Errorf("got %+v", u)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, c := range f.Calls() {
		if c.Method == "GET" && strings.HasPrefix(c.Path, "/v1.0/users/") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d Graph lookups of carol, want 1", n)
	}
}

// Holds reads one direct membership (or ownership) with GET .../members/{id}/graph.user.
func TestHolds_DirectOnly(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	f.Grant(gProd, uBob, true)
	for _, c := range []struct {
		group, user string
		access      bot.Access
		want        bool
	}{
		{gEng, uAlice, bot.Member, true},
		{gEng, uErin, bot.Member, false}, // through the nested sre group only
		{gProd, uBob, bot.Owner, true},
		{gProd, uBob, bot.Member, false},
		{"7c1e0f8a-0000-4000-8000-00000000dead", uAlice, bot.Member, false},
	} {
		got, err := d.Holds(ctx, c.group, c.user, c.access)
		if err != nil || got != c.want {
			t.Errorf("Holds(%s, %s, %s) = %v %v, want %v", c.group, c.user, c.access, got, err, c.want)
		}
	}
}

// A disabled account (accountEnabled: false) is resolved with Disabled set.
func TestResolveUser_DisabledAccount(t *testing.T) {
	f, d := tenant(t)
	f.SetDisabled(uCarol, true)
	u, err := d.ResolveUser(context.Background(), "carol@example.com")
	if err != nil || !u.Disabled {
		t.Fatalf("carol: %+v %v, want Disabled", u, err)
	}
	if a, err := d.ResolveUser(context.Background(), uAlice); err != nil || a.Disabled {
		t.Fatalf("alice: %+v %v", a, err)
	}
}

// Within the replication lag a removal answers 404 although the member is there: the error
// says "not held" and the membership stays until a later try.
func TestRemove_ReplicationLag(t *testing.T) {
	f, d := tenant(t)
	f.SetLag(time.Hour)
	ctx := context.Background()
	if err := d.Add(ctx, gProd, uAlice, bot.Member); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, gProd, uAlice, bot.Member); !errors.Is(err, bot.ErrNotHeld) {
		t.Fatalf("remove within the lag: %v, want ErrNotHeld", err)
	}
	if !f.Holds(gProd, uAlice, false) {
		t.Fatal("a lagging replica's 404 removed the member")
	}
	f.SetLag(0)
	if err := d.Remove(ctx, gProd, uAlice, bot.Member); err != nil || f.Holds(gProd, uAlice, false) {
		t.Fatalf("remove after the lag: %v", err)
	}
}
