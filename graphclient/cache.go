package graphclient

import (
	"context"
	"sync"
	"time"
)

// cache keeps Graph answers for a short time, so that a Slack modal or a burst of clicks
// does not wait on Graph, and asks Graph once when many callers miss the same key at once.
type cache[T any] struct {
	now func() time.Time
	max int // entries kept; expired entries are dropped when it is reached

	mu       sync.Mutex
	m        map[string]entry[T]
	inflight map[string]*flight[T]
}

type entry[T any] struct {
	v       T
	err     error
	expires time.Time
}

type flight[T any] struct {
	done chan struct{}
	v    T
	err  error
}

func newCache[T any](now func() time.Time, max int) *cache[T] {
	return &cache[T]{now: now, max: max, m: map[string]entry[T]{}, inflight: map[string]*flight[T]{}}
}

// get returns a fresh entry.
func (c *cache[T]) get(key string) (T, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !c.now().Before(e.expires) {
		var zero T
		return zero, nil, false
	}
	return e.v, e.err, true
}

// stale returns an entry whatever its age (used when Graph fails: a known group id does not change).
func (c *cache[T]) stale(key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	return e.v, ok && e.err == nil
}

func (c *cache[T]) put(key string, v T, err error, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m) // a flood of distinct keys: start over rather than grow without bound
		}
	}
	c.m[key] = entry[T]{v: v, err: err, expires: now.Add(ttl)}
}

// do returns the cached answer, or runs fetch once for all concurrent callers of key and
// caches its answer for ttl(err) (0: not cached). fetch runs apart from any one caller (one
// who gives up does not fail the others; its own deadline comes from Directory.call), and
// each caller leaves when its ctx ends.
func (c *cache[T]) do(ctx context.Context, key string, ttl func(error) time.Duration, fetch func(context.Context) (T, error)) (T, error) {
	if v, err, ok := c.get(key); ok {
		return v, err
	}
	c.mu.Lock()
	f, running := c.inflight[key]
	if !running {
		f = &flight[T]{done: make(chan struct{})}
		c.inflight[key] = f
	}
	c.mu.Unlock()
	if !running {
		go func() {
			f.v, f.err = fetch(context.WithoutCancel(ctx))
			c.put(key, f.v, f.err, ttl(f.err))
			c.mu.Lock()
			delete(c.inflight, key)
			c.mu.Unlock()
			close(f.done)
		}()
	}
	select {
	case <-f.done:
		return f.v, f.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
