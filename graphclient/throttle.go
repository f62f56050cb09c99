package graphclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// ThrottleStreak is how many 429s in a row, with no other answer between them, make the
// whole process hold off. One throttled call says little (Graph also throttles per resource);
// a streak means the app is throttled, and then every call sent before Retry-After only earns
// another 429 and still counts against the app's quota. So the process pauses until
// Retry-After, then sends one call (a probe): if Graph answers it, everyone goes on; if it
// answers 429 again, everyone pauses again.
const ThrottleStreak = 8

// throttle is that process-wide pause.
type throttle struct {
	mu      sync.Mutex
	until   time.Time
	streak  int
	probing chan struct{} // while a probe is out; closed when it is answered
}

// observe records the answer to one attempt; probe: it was the probe.
func (t *throttle) observe(err error, probe bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if probe && t.probing != nil {
		close(t.probing)
		t.probing = nil
	}
	var e *Error
	switch {
	case err == nil:
		t.streak = 0
	case !errors.As(err, &e):
		return // the network failed: that tells nothing about throttling
	case e.Status != http.StatusTooManyRequests:
		t.streak = 0
	default:
		t.streak++
		if t.streak >= ThrottleStreak {
			wait := e.RetryAfter
			if wait < 0 {
				wait = time.Second
			}
			if u := time.Now().Add(wait); u.After(t.until) {
				t.until = u
			}
		}
	}
}

// wait holds off while the process is paused or a probe is out, and makes the caller the
// probe when the pause is over but no answer has come since. A pause that outlasts ctx's
// deadline is not waited for.
func (t *throttle) wait(ctx context.Context) (probe bool, err error) {
	for {
		t.mu.Lock()
		d := time.Until(t.until)
		var out chan struct{}
		switch {
		case d > 0:
		case t.streak < ThrottleStreak:
			t.mu.Unlock()
			return false, nil
		case t.probing == nil:
			t.probing = make(chan struct{})
			t.mu.Unlock()
			return true, nil
		default:
			out = t.probing
		}
		t.mu.Unlock()
		if out != nil {
			select {
			case <-out:
				continue
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		d += rand.N(d/10 + 50*time.Millisecond)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return false, fmt.Errorf("graph: the app is throttled by Graph; calls are paused for %s more", d.Round(time.Second))
		}
		tm := time.NewTimer(d)
		select {
		case <-ctx.Done():
			tm.Stop()
			return false, ctx.Err()
		case <-tm.C:
		}
	}
}

// paused reports a pause in force.
func (t *throttle) paused() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Now().Before(t.until)
}

// giveUp hands the probe back unsent.
func (t *throttle) giveUp() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.probing != nil {
		close(t.probing)
		t.probing = nil
	}
}
