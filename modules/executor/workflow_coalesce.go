package executor

import (
	"context"
	"sync"
	"time"
)

// advances runs at most one advance of a workflow at a time in this process. Advances of
// one workflow serialise on its row's lock anyway; each waiting for that lock would hold a
// connection of the pool, and a burst of completions (a fan-out's items ending together)
// would take them all. So an advance asked for while one runs waits for the pass queued
// behind it, which takes in every ending committed before it begins: many completions, one
// pass.
type advances struct {
	mu   sync.Mutex
	runs map[int64]*advanceRun
}

// advanceRun is a workflow's running pass, with the pass queued behind it if any.
type advanceRun struct {
	next *advancePass
}

// advancePass is a pass some callers wait for.
type advancePass struct {
	done chan struct{}
	err  error
}

// advance advances workflow id (see advanceOnce), sharing a pass with other callers in this
// process; it returns once a pass that began after the call has committed.
func (m *Module) advance(ctx context.Context, id int64) error {
	a := &m.advancing
	a.mu.Lock()
	if a.runs == nil {
		a.runs = make(map[int64]*advanceRun)
	}
	if r, running := a.runs[id]; running {
		if r.next == nil {
			r.next = &advancePass{done: make(chan struct{})}
		}
		pass := r.next
		a.mu.Unlock()
		select {
		case <-pass.done:
			return pass.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := &advanceRun{}
	a.runs[id] = r
	a.mu.Unlock()

	err := m.advanceOnce(ctx, id)
	// This caller runs the passes queued behind its own, so that a waiter never depends on
	// a caller that has gone.
	for {
		a.mu.Lock()
		pass := r.next
		r.next = nil
		if pass == nil {
			delete(a.runs, id)
			a.mu.Unlock()
			return err
		}
		a.mu.Unlock()
		pass.err = m.advanceOnce(ctx, id)
		close(pass.done)
	}
}

// wakeups are timers that advance a workflow when a delayed task or retry is due, so that a
// delay of 200 ms waits 200 ms rather than until the next pass of the workflow loop. They are
// a shortcut: a process that dies with its timers leaves the loop to start what is due.
type wakeups struct {
	mu  sync.Mutex
	ctx context.Context
}

func (w *wakeups) start(ctx context.Context) {
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
}

// wakeAfter is the longest a timer is kept: later starts are the loop's.
const wakeAfter = time.Minute

// after runs fn at at, unless the process stops first. A failure is left to the loop.
func (w *wakeups) after(at time.Time, fn func(ctx context.Context) error) {
	w.mu.Lock()
	ctx := w.ctx
	w.mu.Unlock()
	d := time.Until(at)
	if ctx == nil || d > wakeAfter {
		return
	}
	// A timer that fires after the process began to stop does nothing; none outlives a minute.
	time.AfterFunc(d, func() {
		if ctx.Err() == nil {
			_ = fn(ctx)
		}
	})
}
