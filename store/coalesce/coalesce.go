// Package coalesce lets concurrent callers of one statement share a round trip and a commit:
// each caller submits its item and waits, and one flush runs everything submitted so far as
// one set-based statement and hands each caller its own result.
//
// Nothing waits on a timer. An item submitted while no flush is running starts one at once
// and goes alone; items submitted while a flush is in flight gather and go together in the
// next, so batches grow with the load and stay at one item when there is none.
//
// What a caller can rely on:
//   - Its item is applied at most once, by one statement: the batch, or, when the batch
//     failed, a statement of its own (a batch that fails is run again item by item, so that
//     one bad item fails only its own caller).
//   - A caller whose context ends before a flush took its item withdraws it: the item is
//     never applied, and the caller gets the context's error.
//   - A caller whose context ends after a flush took its item still waits for that flush and
//     gets what happened to its item, so it never has to guess. The statement itself is
//     cancelled only once every caller whose item it carries has given up; they then get
//     the statement's error, as a cancelled statement of their own would have given them.
package coalesce

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Config says how to run items.
type Config[T, R any] struct {
	// Many runs two or more items as one statement and returns one result per item, in
	// the order of items. An error means none of them was applied.
	Many func(ctx context.Context, items []T) ([]R, error)
	// One runs a single item: alone when nothing else waits, and each item of a failed
	// batch again to find the bad one.
	One func(ctx context.Context, item T) (R, error)
	// MaxBatch bounds the items of one statement. Default 100.
	MaxBatch int
	// MaxFlushes bounds the statements in flight at once. Default 1: while one runs, the
	// next batch gathers.
	MaxFlushes int
	// Sizes, when set, observes the number of items of every statement run, for metrics.
	Sizes Observer
}

// Observer takes one value per observation (a Prometheus histogram is one).
type Observer interface {
	Observe(float64)
}

// Group coalesces the calls of one statement. It needs no starting or stopping: a flush runs
// on its own goroutine while there is something to run.
type Group[T, R any] struct {
	cfg Config[T, R]

	mu       sync.Mutex
	pending  []*call[T, R]
	flushing int
}

// New returns a group that runs items through cfg.
func New[T, R any](cfg Config[T, R]) *Group[T, R] {
	if cfg.Many == nil || cfg.One == nil {
		panic("coalesce: Many and One are required")
	}
	cfg.MaxBatch = cmp.Or(cfg.MaxBatch, 100)
	cfg.MaxFlushes = cmp.Or(cfg.MaxFlushes, 1)
	return &Group[T, R]{cfg: cfg}
}

type call[T, R any] struct {
	ctx  context.Context
	item T
	done chan struct{} // closed once res and err are set
	res  R
	err  error

	flight *flight // set, under Group.mu, when a flush takes the item
}

// flight is one statement's context, cancelled once none of its callers wants the outcome.
type flight struct {
	ctx    context.Context
	cancel context.CancelFunc
	live   atomic.Int64
}

func (f *flight) leave() {
	if f.live.Add(-1) == 0 {
		f.cancel()
	}
}

// Do runs item, together with whatever other callers submit meanwhile, and returns its
// result. See the package comment for what a cancelled ctx means.
func (g *Group[T, R]) Do(ctx context.Context, item T) (R, error) {
	if err := ctx.Err(); err != nil {
		var zero R
		return zero, err
	}
	c := &call[T, R]{ctx: ctx, item: item, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	start := g.flushing < g.cfg.MaxFlushes
	if start {
		g.flushing++
	}
	g.mu.Unlock()
	if start {
		go g.flush()
	}

	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
	}
	g.mu.Lock()
	f := c.flight
	if f == nil {
		g.pending = slices.DeleteFunc(g.pending, func(p *call[T, R]) bool { return p == c })
		g.mu.Unlock()
		var zero R
		return zero, ctx.Err()
	}
	g.mu.Unlock()
	f.leave()
	<-c.done
	return c.res, c.err
}

// flush runs batches until nothing is pending.
func (g *Group[T, R]) flush() {
	for {
		batch := g.take()
		if batch == nil {
			return
		}
		g.run(batch)
	}
}

// take moves up to MaxBatch pending items into a new flight, or, when none are pending,
// ends this flusher.
func (g *Group[T, R]) take() []*call[T, R] {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := min(len(g.pending), g.cfg.MaxBatch)
	if n == 0 {
		g.flushing--
		return nil
	}
	batch := slices.Clone(g.pending[:n])
	g.pending = slices.Delete(g.pending, 0, n)
	// The statement outlives any one caller: only when all of them have left is it cancelled.
	fctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
	f := &flight{ctx: fctx, cancel: cancel}
	f.live.Store(int64(n))
	for _, c := range batch {
		c.flight = f
	}
	return batch
}

func (g *Group[T, R]) run(batch []*call[T, R]) {
	f := batch[0].flight
	defer f.cancel()
	if g.cfg.Sizes != nil {
		g.cfg.Sizes.Observe(float64(len(batch)))
	}
	if len(batch) == 1 {
		c := batch[0]
		c.res, c.err = g.one(f.ctx, c.item)
		close(c.done)
		return
	}
	items := make([]T, len(batch))
	for i, c := range batch {
		items[i] = c.item
	}
	results, err := g.many(f.ctx, items)
	switch {
	case err == nil && len(results) == len(batch):
		for i, c := range batch {
			c.res = results[i]
			close(c.done)
		}
	case err == nil, f.ctx.Err() != nil:
		// A statement that answered for the wrong number of items may have been applied,
		// and one every caller gave up on was cancelled: in neither is a bad item to find,
		// and running the items again could apply them twice.
		if err == nil {
			err = fmt.Errorf("coalesce: %d results for %d items", len(results), len(batch))
		}
		for _, c := range batch {
			c.err = err
			close(c.done)
		}
	default:
		// One bad item must not fail its neighbours: each goes again alone, and gets its
		// own outcome as soon as it has one.
		for _, c := range batch {
			c.res, c.err = g.one(f.ctx, c.item)
			close(c.done)
		}
	}
}

// many and one turn a panic into the error of the items concerned, so that a bad item cannot
// take the process down from a goroutine no handler recovers.
func (g *Group[T, R]) many(ctx context.Context, items []T) (res []R, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("coalesce: panic: %v", r)
		}
	}()
	return g.cfg.Many(ctx, items)
}

func (g *Group[T, R]) one(ctx context.Context, item T) (res R, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero R
			res, err = zero, fmt.Errorf("coalesce: panic: %v", r)
		}
	}()
	return g.cfg.One(ctx, item)
}
