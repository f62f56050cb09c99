package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
)

// The embedded default (miniredis) runs the same Lua scripts as a real Redis.
func TestEmbeddedRedis_RunsTheWholeLifecycle(t *testing.T) {
	ctx := context.Background()
	conn, err := store.Embedded(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pol, err := policyfile.Parse("example", pimbot.ExamplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(conn.Client, store.Options{})
	dir := local.New(pol)
	eng := bot.New(bot.Config{Policy: pol, Store: s, Directory: dir})
	alice, _ := dir.ResolveUser(ctx, "alice")
	bob, _ := dir.ResolveUser(ctx, "bob")
	r, err := eng.Submit(ctx, bot.Actor{User: alice}, bot.SubmitInput{Group: "prod-db-admins", Reason: "x", Duration: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Approve(ctx, bot.Actor{User: bob}, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, r.ID)
	if got.State != bot.StateActive {
		t.Fatalf("state %s", got.State)
	}
	if _, err := eng.Deactivate(ctx, bot.Actor{User: alice}, r.ID); err != nil {
		t.Fatal(err)
	}
	eng.RunDue(ctx)
	if got, _ := s.Get(ctx, r.ID); got.State != bot.StateEnded {
		t.Fatalf("state %s", got.State)
	}
	recs, err := s.AuditSince(ctx, time.Now().Add(-time.Hour), 0)
	if err != nil || len(recs) < 4 {
		t.Fatalf("audit: %d records, %v", len(recs), err)
	}
}
