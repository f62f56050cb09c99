package faults_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pimbot/pimbot"
	"github.com/pimbot/pimbot/bot"
	"github.com/pimbot/pimbot/bot/policyfile"
	"github.com/pimbot/pimbot/graphclient/local"
	"github.com/pimbot/pimbot/store"
	"github.com/redis/go-redis/v9"
)

// ownRedis runs a redis-server of the test's own on a free port, with AOF on.
type ownRedis struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
}

func startOwnRedis(t *testing.T) *ownRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed; this test starts and kills its own")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &ownRedis{t: t, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(func() { r.kill() })
	return r
}

func (r *ownRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			r.t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *ownRedis) kill() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *ownRedis) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// Requests made before a Redis restart are all there after it; while Redis is down people are
// told to try again shortly, nothing panics, and the worker resumes by itself.
func TestRedisRestart_NothingLostAndWorkResumes(t *testing.T) {
	ctx := context.Background()
	srv := startOwnRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, MaxRetries: 1})
	defer rdb.Close()
	pol, err := policyfile.Parse("example", pimbot.ExamplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	dir := local.New(pol)
	st := store.New(rdb, store.Options{})
	eng := bot.New(bot.Config{Policy: pol, Store: st, Directory: dir, Poll: 50 * time.Millisecond})
	alice, _ := dir.ResolveUser(ctx, "alice")
	bob, _ := dir.ResolveUser(ctx, "bob")
	a, b := bot.Actor{User: alice, Surface: "test"}, bot.Actor{User: bob, Surface: "test"}

	var ids []string
	for _, access := range []bot.Access{bot.Member, bot.Owner} {
		r, err := eng.Submit(ctx, a, bot.SubmitInput{Group: "prod-db-admins", Access: access, Reason: "before the restart"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { eng.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	srv.kill()
	for i := 0; i < 3; i++ { // refused with words, several times, without a panic
		_, err := eng.Submit(ctx, a, bot.SubmitInput{Group: "sandbox-admins"})
		if !errors.Is(err, bot.ErrUnavailable) || !strings.Contains(bot.Describe(err), "try again shortly") {
			t.Fatalf("submit while Redis is down: %v (%q)", err, bot.Describe(err))
		}
		if _, err := eng.Approve(ctx, b, ids[0]); !errors.Is(err, bot.ErrUnavailable) {
			t.Fatalf("approve while Redis is down: %v", err)
		}
	}
	select {
	case <-done:
		t.Fatal("the worker stopped while Redis was down")
	case <-time.After(300 * time.Millisecond):
	}

	srv.start()
	// The client reconnects by itself (go-redis retries its dials about once a second).
	for _, id := range ids {
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, err := st.Get(ctx, id)
			if err == nil && r.State == bot.StatePending {
				break
			}
			if errors.Is(err, bot.ErrNotFound) || time.Now().After(deadline) {
				t.Fatalf("request %s after the restart: %v %v", id, r, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if _, err := eng.Approve(ctx, b, ids[0]); err != nil {
		t.Fatalf("approve after the restart: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _ := st.Get(ctx, ids[0])
		if r != nil && r.State == bot.StateActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not resume: the approved request never became active")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
