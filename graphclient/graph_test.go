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
	gSRE   = "7c1e0f8a-0000-4000-8000-0000000000a1"
	gEng   = "7c1e0f8a-0000-4000-8000-0000000000a2"
	uAlice = "11111111-0000-4000-8000-000000000001"
	uBob   = "11111111-0000-4000-8000-000000000002"
	uErin  = "11111111-0000-4000-8000-000000000005"
)

func tenant(t *testing.T) (*graphfake.Server, *graphclient.Directory) {
	t.Helper()
	f := graphfake.New()
	t.Cleanup(f.Close)
	f.Token = "test-token"
	f.AddUser(graphfake.User{ID: uAlice, Mail: "alice@example.com", UPN: "alice@example.com", Name: "Alice"})
	f.AddUser(graphfake.User{ID: uBob, Mail: "bob@example.com", UPN: "bob_example.com#EXT#@contoso.onmicrosoft.com", Name: "Bob"})
	f.AddUser(graphfake.User{ID: uErin, Mail: "erin@example.com", UPN: "erin@contoso.onmicrosoft.com", Name: "Erin"})
	f.AddGroup(gProd, "prod-db-admins@example.com")
	f.AddGroup(gSRE, "sre@example.com", uErin)
	f.AddGroup(gEng, "engineering@example.com", uAlice, gSRE) // nested: erin is in engineering through sre
	d, err := graphclient.New(graphclient.Config{BaseURL: f.BaseURL(), AccessToken: "test-token"})
	if err != nil {
		t.Fatal(err)
	}
	return f, d
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
		for i := 0; i < 2; i++ { // the second remove answers 404: success
			if err := d.Remove(ctx, gProd, uAlice, a); err != nil {
				t.Fatalf("remove %s #%d: %v", a, i+1, err)
			}
		}
		if f.Holds(gProd, uAlice, a == bot.Owner) {
			t.Fatalf("still a %s after remove", a)
		}
	}
	// Every call carried the token: the allowed host matched the fake's host name.
	for _, c := range f.Calls() {
		if c.Auth != "Bearer test-token" {
			t.Fatalf("%s %s went out with Authorization %q", c.Method, c.Path, c.Auth)
		}
	}
}

func TestRefusalsThatWillNotHeal(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	err := d.Add(ctx, "7c1e0f8a-0000-4000-8000-00000000dead", uAlice, bot.Member)
	var ge *graphclient.Error
	if !errors.Is(err, bot.ErrNotFound) || !errors.As(err, &ge) || ge.Status != 404 || ge.Code != "Request_ResourceNotFound" || ge.RequestID == "" {
		t.Fatalf("missing group: %v", err)
	}
	// The last owner cannot be removed: a 400 that will not heal.
	d.Add(ctx, gProd, uAlice, bot.Owner)
	if err := d.Remove(ctx, gProd, uAlice, bot.Owner); !errors.Is(err, bot.ErrForbidden) {
		t.Fatalf("last owner: %v", err)
	}
	// 403: the app lacks the permission; the message names it.
	f.Fault(func(r *http.Request) (int, string) {
		if r.Method == "POST" {
			return 403, ""
		}
		return 0, ""
	})
	err = d.Add(ctx, gProd, uBob, bot.Member)
	if !errors.Is(err, bot.ErrForbidden) || !strings.Contains(err.Error(), "GroupMember.ReadWrite.All") {
		t.Fatalf("403: %v", err)
	}
}

func TestResolveUser_ByIDUPNAndMail(t *testing.T) {
	_, d := tenant(t)
	ctx := context.Background()
	for _, ref := range []string{uBob, "bob@example.com", "BOB_example.com#EXT#@contoso.onmicrosoft.com"} {
		u, err := d.ResolveUser(ctx, ref)
		if err != nil || u.ID != uBob || u.Email != "bob@example.com" {
			t.Fatalf("%s: %+v %v", ref, u, err)
		}
	}
	if _, err := d.ResolveUser(ctx, "nobody@example.com"); !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := d.ResolveUser(ctx, "x' or 1 eq 1 or mail eq 'y"); !errors.Is(err, bot.ErrNotFound) {
		t.Fatalf("quote in filter: %v", err)
	}
}

func TestInGroup_TransitiveAndCached(t *testing.T) {
	f, d := tenant(t)
	ctx := context.Background()
	cases := []struct {
		user, group string
		want        bool
	}{
		{uErin, "engineering@example.com", true}, // through sre
		{uAlice, "engineering@example.com", true},
		{uBob, "engineering@example.com", false},
		{uErin, gSRE, true},
		{uErin, "nosuch@example.com", false},
	}
	for _, c := range cases {
		got, err := d.InGroup(ctx, c.user, c.group)
		if err != nil || got != c.want {
			t.Fatalf("%s in %s = %v, %v; want %v", c.user, c.group, got, err, c.want)
		}
	}
	before := len(f.Calls())
	d.InGroup(ctx, uErin, "engineering@example.com")
	if len(f.Calls()) != before {
		t.Fatal("a repeated eligibility check went to Graph instead of the cache")
	}
}

func TestThrottling_429StormIsRidden(t *testing.T) {
	f, d := tenant(t)
	var n atomic.Int32
	f.Fault(func(r *http.Request) (int, string) {
		if r.Method == "POST" && n.Add(1) <= 2 { // two 429s, then through
			return 429, "1"
		}
		return 0, ""
	})
	start := time.Now()
	if err := d.Add(context.Background(), gProd, uAlice, bot.Member); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 2*time.Second {
		t.Fatalf("Retry-After: 1 was not honoured (%s for two 429s)", waited)
	}
	if !f.Holds(gProd, uAlice, false) {
		t.Fatal("not added")
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
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for round := 0; round < 2; round++ {
		for _, id := range ids {
			wg.Add(2)
			go func() { defer wg.Done(); errs <- d.Add(ctx, gProd, id, bot.Member) }()
			go func() { defer wg.Done(); _, err := d.InGroup(ctx, id, "engineering@example.com"); errs <- err }()
		}
		wg.Wait()
		for _, id := range ids {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- d.Remove(ctx, gProd, id, bot.Member) }()
		}
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if f.Holds(gProd, id, false) {
			t.Fatalf("%s still a member", id)
		}
	}
}

func TestHoldersListsUsers(t *testing.T) {
	_, d := tenant(t)
	ctx := context.Background()
	d.Add(ctx, gProd, uAlice, bot.Member)
	d.Add(ctx, gProd, uBob, bot.Member)
	hs, err := d.Holders(ctx, gProd, bot.Member)
	if err != nil || len(hs) != 2 {
		t.Fatalf("%v %v", hs, err)
	}
}
