// Package fakefault is the failure knobs the on-call fakes share: answer the next calls with
// a server error or a 429 that asks to wait. Each fake writes the answer in its service's own
// headers and error body.
package fakefault

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Fault is one queued failure.
type Fault struct {
	Status int           // 500, 503, … or 429
	Wait   time.Duration // for a 429: how long the service asks to wait
}

// WaitSeconds is Wait in whole seconds, as rate-limit headers carry it.
func (f Fault) WaitSeconds() string {
	return strconv.Itoa(int(f.Wait.Round(time.Second) / time.Second))
}

// Queue holds the failures the next calls answer with, in order. Embed it in a fake: its Fail
// and RateLimit become the fake's.
type Queue struct {
	mu     sync.Mutex
	faults []Fault
}

// Fail makes the next n calls answer status (500, 503, …).
func (q *Queue) Fail(n, status int) { q.add(n, Fault{Status: status}) }

// RateLimit makes the next n calls answer 429, asking to wait `wait`.
func (q *Queue) RateLimit(n int, wait time.Duration) {
	q.add(n, Fault{Status: http.StatusTooManyRequests, Wait: wait})
}

func (q *Queue) add(n int, f Fault) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range n {
		q.faults = append(q.faults, f)
	}
}

// Next takes the failure the current call answers with, if one is queued.
func (q *Queue) Next() (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.faults) == 0 {
		return Fault{}, false
	}
	f := q.faults[0]
	q.faults = q.faults[1:]
	return f, true
}
