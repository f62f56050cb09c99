package slack

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Slack allows about one message per second per channel, with short bursts ("Posting
// messages": https://api.slack.com/docs/rate-limits#rate-limits__limits-when-posting-messages);
// beyond that it answers HTTP 429 with Retry-After. The surface paces its own posts and
// updates per channel so that a fan-out to one approval channel does not provoke 429s.
const (
	DefaultChannelInterval = time.Second // one message per channel per second…
	// …after a burst of this many: one less than the burst Slack tolerates (the fake's
	// SlackPostBurst), so that posts that reach Slack closer together than they were sent
	// (network jitter) stay within its limit.
	DefaultChannelBurst = 2
	// paceCallBudget is the time a paced call keeps for itself after its slot: a slot later
	// than the caller's deadline minus this is not waited for (the caller is told when).
	paceCallBudget = 3 * time.Second
	paceSweepAt    = 4096 // channels remembered before idle ones are forgotten
)

// pacer is a token bucket per channel (the generic cell rate algorithm: one theoretical
// arrival time per key). It is per process: replicas each pace their own posts, and a 429
// that still comes is honoured through Retry-After.
type pacer struct {
	interval time.Duration
	burst    int
	now      func() time.Time

	mu  sync.Mutex
	tat map[string]time.Time
}

func newPacer(interval time.Duration, burst int) *pacer {
	if interval <= 0 {
		interval = DefaultChannelInterval
	}
	if burst <= 0 {
		burst = DefaultChannelBurst
	}
	return &pacer{interval: interval, burst: burst, now: time.Now, tat: map[string]time.Time{}}
}

// pacedError says that the channel's next slot comes after the caller's deadline; nothing
// was sent. It implements RetryAfter() for bot.RetryAfter.
// A pacedError with err set says that ctx ended while waiting for the slot.
type pacedError struct {
	channel string
	wait    time.Duration
	err     error
}

func (e *pacedError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("slack channel %s is paced: gave up waiting for its slot: %v", e.channel, e.err)
	}
	return fmt.Sprintf("slack channel %s is paced: next slot in %s, after this call's deadline", e.channel, e.wait.Round(time.Millisecond))
}
func (e *pacedError) Unwrap() error             { return e.err }
func (e *pacedError) RetryAfter() time.Duration { return e.wait }

// wait blocks until key's next slot (respecting ctx) and takes it. When the slot comes too
// late for ctx's deadline it takes nothing and returns a *pacedError; when ctx ends while
// waiting it returns a *pacedError wrapping ctx's error (the slot is lost, which only slows
// the channel down). Either way nothing was sent.
func (p *pacer) wait(ctx context.Context, key string) error {
	if key == "" {
		return nil
	}
	p.mu.Lock()
	now := p.now()
	t := p.tat[key]
	if t.Before(now) {
		t = now
	}
	slot := t.Add(-time.Duration(p.burst-1) * p.interval)
	if dl, ok := ctx.Deadline(); ok && slot.After(now) && slot.After(dl.Add(-paceCallBudget)) {
		p.mu.Unlock()
		return &pacedError{channel: key, wait: slot.Sub(now)}
	}
	p.tat[key] = t.Add(p.interval)
	if len(p.tat) > paceSweepAt {
		for k, v := range p.tat {
			if v.Before(now) {
				delete(p.tat, k)
			}
		}
	}
	p.mu.Unlock()
	d := slot.Sub(now)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return &pacedError{channel: key, err: ctx.Err()}
	}
}

// block holds key back for d (Slack answered 429 with Retry-After d): the next slot is no
// earlier than d from now, and slots after it are spaced by the interval, without a burst.
func (p *pacer) block(key string, d time.Duration) {
	if key == "" || d <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	until := p.now().Add(d + time.Duration(p.burst-1)*p.interval)
	if until.After(p.tat[key]) {
		p.tat[key] = until
	}
}
