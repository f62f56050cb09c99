package slack

import (
	"context"
	"math"
	"runtime/debug"
	"sync"
	"time"
)

// pool runs slow work (engine calls that may reach the directory, chat.update, replies)
// after Slack's request was acknowledged: a fixed number of workers, never one goroutine per
// event, and a queue bounded by the memory its tasks hold rather than by a count. A burst
// waits in the queue; only when the budget of queued bytes is spent does a submit wait for
// room, and only when no room comes within its deadline is it refused (the one case where
// Slack hears "busy").
type pool struct {
	mu      sync.Mutex
	work    *sync.Cond    // workers wait here for tasks
	room    chan struct{} // closed (and replaced) whenever queued bytes are freed
	q       []task
	head    int
	used    int64 // bytes of the queued tasks
	budget  int64
	closed  bool
	timeout time.Duration
}

type task struct {
	name string
	size int64
	run  func(ctx context.Context)
}

// taskOverhead is an estimate, on the generous side, of what a queued task costs beyond
// the data it carries: the closure, the task record, the captured origin and ids.
const taskOverhead = 1 << 10

// DefaultQueueBytes is the budget of queued work when neither Options.QueueBytes nor a Go
// memory limit (GOMEMLIMIT) says otherwise: about 65,000 queued commands.
const DefaultQueueBytes = 64 << 20

// queueBudget derives the budget of queued work: the configured one, else an eighth of
// the Go memory limit when one is set, else DefaultQueueBytes.
func queueBudget(configured int64) int64 {
	if configured > 0 {
		return configured
	}
	if limit := debug.SetMemoryLimit(-1); limit > 0 && limit < math.MaxInt64 {
		return max(limit/8, 1<<20)
	}
	return DefaultQueueBytes
}

func newPool(budget int64, timeout time.Duration) *pool {
	p := &pool{budget: max(budget, taskOverhead), timeout: timeout, room: make(chan struct{})}
	p.work = sync.NewCond(&p.mu)
	return p
}

// submit queues a task that holds about size bytes while it waits. When the budget is
// spent it waits for room until ctx ends; false when none came, or the pool has stopped.
// A task larger than the whole budget is still taken when the queue is empty.
func (p *pool) submit(ctx context.Context, name string, size int64, run func(ctx context.Context)) bool {
	size = max(size, 0) + taskOverhead
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return false
		}
		if p.used+size <= p.budget || p.used == 0 {
			p.q = append(p.q, task{name: name, size: size, run: run})
			p.used += size
			p.work.Signal()
			p.mu.Unlock()
			return true
		}
		room := p.room
		p.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return false
		}
		p.mu.Lock()
	}
}

// queued reports the tasks and bytes waiting.
func (p *pool) queued() (tasks int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q) - p.head, p.used
}

// next takes the oldest task, waiting for one; false when the pool stopped and is empty.
func (p *pool) next() (task, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.head == len(p.q) && !p.closed {
		p.work.Wait()
	}
	if p.head == len(p.q) {
		return task{}, false
	}
	t := p.q[p.head]
	p.q[p.head] = task{}
	p.head++
	switch {
	case p.head == len(p.q):
		p.q, p.head = p.q[:0], 0
	case p.head >= 1024 && p.head*2 >= len(p.q): // keep the backing array from growing without end
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q, p.head = p.q[:n], 0
	}
	p.used -= t.size
	close(p.room)
	p.room = make(chan struct{})
	return t, true
}

// run starts workers and blocks until ctx ends; then it stops taking tasks, lets the
// queued and running ones finish within grace, and cancels what is left.
func (p *pool) run(ctx context.Context, workers int, grace time.Duration, onPanic func(name string, v any)) {
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t, ok := p.next()
				if !ok {
					return
				}
				p.runOne(base, t, onPanic)
			}
		}()
	}
	<-ctx.Done()
	p.mu.Lock()
	p.closed = true
	p.work.Broadcast()
	close(p.room) // submitters waiting for room learn that the pool stopped
	p.room = make(chan struct{})
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cancel()
		<-done
	}
}

func (p *pool) runOne(base context.Context, t task, onPanic func(string, any)) {
	ctx, cancel := context.WithTimeout(base, p.timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil && onPanic != nil {
			onPanic(t.name, v)
		}
	}()
	t.run(ctx)
}
