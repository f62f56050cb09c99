package slack

import (
	"context"
	"sync"
	"time"
)

// pool runs slow work (views.open, engine calls that may reach the directory, chat.update)
// after Slack's request was acknowledged: a fixed number of workers and a bounded queue,
// never one goroutine per event.
type pool struct {
	mu      sync.RWMutex
	closed  bool
	tasks   chan task
	timeout time.Duration
}

type task struct {
	name string
	run  func(ctx context.Context)
}

func newPool(queue int, timeout time.Duration) *pool {
	return &pool{tasks: make(chan task, queue), timeout: timeout}
}

// submit queues a task; false when the queue is full or the pool has stopped.
func (p *pool) submit(name string, run func(ctx context.Context)) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	select {
	case p.tasks <- task{name: name, run: run}:
		return true
	default:
		return false
	}
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
			for t := range p.tasks {
				p.runOne(base, t, onPanic)
			}
		}()
	}
	<-ctx.Done()
	p.mu.Lock()
	p.closed = true
	close(p.tasks)
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
