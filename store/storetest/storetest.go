// Package storetest gives tests a Redis: REDIS_URL, or 127.0.0.1:6379 when it answers,
// else an embedded one (with one log line saying so). With PIMBOT_TEST_REDIS=required
// (as CI sets it) a missing real Redis fails the test instead of falling back.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pimbot/pimbot/store"
	"github.com/redis/go-redis/v9"
)

var (
	once     sync.Once
	shared   redis.UniversalClient
	opts     *redis.Options
	embedded bool
	initErr  error
)

func connect() {
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := store.Connect(ctx, url, nil)
	if err == nil {
		shared = c.Client
		opts, _ = redis.ParseURL(url)
		return
	}
	if os.Getenv("PIMBOT_TEST_REDIS") == "required" {
		initErr = err
		return
	}
	e, eerr := store.Embedded(nil)
	if eerr != nil {
		initErr = eerr
		return
	}
	os.Stderr.WriteString("storetest: no Redis at " + store.Redact(url) + " (" + err.Error() + "); using the embedded in-process Redis\n")
	shared, embedded = e.Client, true
	opts = e.Client.(*redis.Client).Options()
}

// Dedicated opens a new client to the test Redis (for hooks that must not see other tests).
func Dedicated(t testing.TB) *redis.Client {
	t.Helper()
	Client(t)
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Client returns the shared test Redis client.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	once.Do(connect)
	if initErr != nil {
		t.Fatalf("a real Redis is required (PIMBOT_TEST_REDIS=required): %v", initErr)
	}
	return shared
}

// Embedded reports whether tests run on the embedded Redis.
func Embedded() bool { once.Do(connect); return embedded }

// Prefix returns a fresh key prefix for one test and deletes its keys afterwards.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "t-" + hex.EncodeToString(b[:])
	c := Client(t)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "{"+p+"}:*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for _, k := range keys {
			c.Del(ctx, k)
		}
	})
	return p
}

// New returns a store on the test Redis under a fresh prefix.
func New(t testing.TB) *store.Redis {
	t.Helper()
	return store.New(Client(t), store.Options{Prefix: Prefix(t)})
}
