package coalesce

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder is a statement over ints: each item's result is its double, and every run is
// recorded. gate, when set, holds every run until it is closed.
type recorder struct {
	mu    sync.Mutex
	runs  [][]int // the items of each run, in order; a run of One has one item
	ones  int
	ctxs  []context.Context
	gate  chan struct{}
	began chan struct{} // receives once per run that started
	bad   map[int]bool  // items that fail a run containing them
}

func (r *recorder) record(ctx context.Context, items []int, one bool) error {
	r.mu.Lock()
	r.runs = append(r.runs, slices.Clone(items))
	r.ctxs = append(r.ctxs, ctx)
	if one {
		r.ones++
	}
	gate, began := r.gate, r.began
	r.mu.Unlock()
	if began != nil {
		began <- struct{}{}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, it := range items {
		if r.bad[it] {
			return fmt.Errorf("item %d is bad", it)
		}
	}
	return nil
}

func (r *recorder) group(maxBatch int) *Group[int, int] {
	return New(Config[int, int]{
		MaxBatch: maxBatch,
		Many: func(ctx context.Context, items []int) ([]int, error) {
			if err := r.record(ctx, items, false); err != nil {
				return nil, err
			}
			out := make([]int, len(items))
			for i, it := range items {
				out[i] = 2 * it
			}
			return out, nil
		},
		One: func(ctx context.Context, item int) (int, error) {
			if err := r.record(ctx, []int{item}, true); err != nil {
				return 0, err
			}
			return 2 * item, nil
		},
	})
}

func (r *recorder) allRuns() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs)
}

func pending[T, R any](g *Group[T, R]) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

type outcome struct {
	item, res int
	err       error
}

// submit calls Do for each item on its own goroutine; the outcomes arrive on the channel.
func submit(ctx context.Context, g *Group[int, int], items ...int) <-chan outcome {
	out := make(chan outcome, len(items))
	for _, it := range items {
		go func() {
			res, err := g.Do(ctx, it)
			out <- outcome{it, res, err}
		}()
	}
	return out
}

func collect(t *testing.T, ch <-chan outcome, n int) map[int]outcome {
	t.Helper()
	got := make(map[int]outcome)
	for range n {
		select {
		case o := <-ch:
			got[o.item] = o
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d callers returned", len(got), n)
		}
	}
	return got
}

// holdFirst starts a run of item that stays in flight until the returned function is called.
func holdFirst(t *testing.T, r *recorder, g *Group[int, int], item int) (<-chan outcome, func()) {
	t.Helper()
	r.gate, r.began = make(chan struct{}), make(chan struct{}, 100)
	first := submit(context.Background(), g, item)
	<-r.began
	return first, func() { close(r.gate) }
}

func TestAloneWhenIdle(t *testing.T) {
	r := &recorder{}
	g := r.group(0)
	for i := 1; i <= 3; i++ {
		res, err := g.Do(context.Background(), i)
		require.NoError(t, err)
		require.Equal(t, 2*i, res)
	}
	require.Equal(t, [][]int{{1}, {2}, {3}}, r.allRuns(), "one at a time, each goes at once and alone")
	require.Equal(t, 3, r.ones, "a lone item runs the single statement")
}

func TestConcurrentCallersShareOneStatement(t *testing.T) {
	r := &recorder{}
	g := r.group(0)
	first, release := holdFirst(t, r, g, 1)
	rest := submit(context.Background(), g, 2, 3, 4, 5)
	require.Eventually(t, func() bool { return pending(g) == 4 }, 5*time.Second, time.Millisecond)
	release()

	require.Equal(t, 2, (<-first).res)
	got := collect(t, rest, 4)
	for it := 2; it <= 5; it++ {
		require.NoError(t, got[it].err)
		require.Equal(t, 2*it, got[it].res, "each caller gets its own result")
	}
	runs := r.allRuns()
	require.Len(t, runs, 2, "the four that gathered behind the first went as one")
	require.ElementsMatch(t, []int{2, 3, 4, 5}, runs[1])
	require.Equal(t, 1, r.ones)
}

func TestBatchesAreBounded(t *testing.T) {
	r := &recorder{}
	g := r.group(3)
	first, release := holdFirst(t, r, g, 0)
	rest := submit(context.Background(), g, 1, 2, 3, 4, 5, 6, 7)
	require.Eventually(t, func() bool { return pending(g) == 7 }, 5*time.Second, time.Millisecond)
	release()
	<-first
	got := collect(t, rest, 7)
	require.Len(t, got, 7)
	var sizes []int
	for _, run := range r.allRuns()[1:] {
		sizes = append(sizes, len(run))
	}
	require.Equal(t, []int{3, 3, 1}, sizes)
}

func TestFailedBatchIsRetriedItemByItem(t *testing.T) {
	r := &recorder{bad: map[int]bool{3: true}}
	g := r.group(0)
	first, release := holdFirst(t, r, g, 1)
	rest := submit(context.Background(), g, 2, 3, 4)
	require.Eventually(t, func() bool { return pending(g) == 3 }, 5*time.Second, time.Millisecond)
	release()
	<-first
	got := collect(t, rest, 3)
	require.NoError(t, got[2].err)
	require.Equal(t, 4, got[2].res)
	require.NoError(t, got[4].err)
	require.Equal(t, 8, got[4].res)
	require.EqualError(t, got[3].err, "item 3 is bad", "only the bad item's caller fails")

	runs := r.allRuns()
	require.Len(t, runs, 5, "the first, the failed batch, then each of its three alone")
	require.ElementsMatch(t, []int{2, 3, 4}, runs[1])
	require.ElementsMatch(t, [][]int{{2}, {3}, {4}}, runs[2:])
}

func TestWrongResultCountFailsTheBatch(t *testing.T) {
	block, started := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var ones []int
	g := New(Config[int, int]{
		Many: func(_ context.Context, items []int) ([]int, error) { return []int{1}, nil },
		One: func(_ context.Context, item int) (int, error) {
			if item == 0 {
				close(started)
				<-block
			}
			mu.Lock()
			defer mu.Unlock()
			ones = append(ones, item)
			return item, nil
		},
	})
	first := submit(context.Background(), g, 0)
	<-started
	rest := submit(context.Background(), g, 1, 2)
	require.Eventually(t, func() bool { return pending(g) == 2 }, 5*time.Second, time.Millisecond)
	close(block)
	<-first
	got := collect(t, rest, 2)
	require.ErrorContains(t, got[1].err, "1 results for 2 items")
	require.ErrorContains(t, got[2].err, "1 results for 2 items")
	require.Equal(t, []int{0}, ones, "a batch that answered wrongly may have been applied: it is not run again")
}

func TestPanicBecomesTheCallersError(t *testing.T) {
	g := New(Config[int, int]{
		Many: func(context.Context, []int) ([]int, error) { panic("boom") },
		One:  func(context.Context, int) (int, error) { panic("boom") },
	})
	_, err := g.Do(context.Background(), 1)
	require.ErrorContains(t, err, "panic: boom")
	_, err = g.Do(context.Background(), 2)
	require.ErrorContains(t, err, "panic: boom", "the group still works after a panic")
}

// A caller that gives up before a flush takes its item withdraws it: it is never run.
func TestCancelledWhileWaitingIsWithdrawn(t *testing.T) {
	r := &recorder{}
	g := r.group(0)
	first, release := holdFirst(t, r, g, 1)
	ctx, cancel := context.WithCancel(context.Background())
	gone := submit(ctx, g, 2)
	stay := submit(context.Background(), g, 3)
	require.Eventually(t, func() bool { return pending(g) == 2 }, 5*time.Second, time.Millisecond)
	cancel()
	o := <-gone
	require.ErrorIs(t, o.err, context.Canceled)
	require.Equal(t, 1, pending(g), "withdrawn from the pending items")
	release()
	<-first
	require.Equal(t, 6, (<-stay).res)
	for _, run := range r.allRuns() {
		require.NotContains(t, run, 2, "a withdrawn item is never run")
	}

	_, err := g.Do(ctx, 4)
	require.ErrorIs(t, err, context.Canceled, "an item submitted with an ended context is refused")
	require.NotContains(t, slices.Concat(r.allRuns()...), 4)
}

// A caller that gives up once its item is in flight still learns what became of it, and the
// statement goes on for it and its neighbours.
func TestCancelledInFlightStillGetsItsOutcome(t *testing.T) {
	r := &recorder{gate: make(chan struct{}), began: make(chan struct{}, 100)}
	g := r.group(0)
	first := submit(context.Background(), g, 1)
	<-r.began
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	a := submit(ctxA, g, 2)
	b := submit(context.Background(), g, 3)
	require.Eventually(t, func() bool { return pending(g) == 2 }, 5*time.Second, time.Millisecond)
	g.mu.Lock()
	calls := slices.Clone(g.pending)
	g.mu.Unlock()
	// Let the first go, and hold the batch of 2 and 3 in flight behind a new gate.
	r.mu.Lock()
	firstGate := r.gate
	r.gate = make(chan struct{})
	r.mu.Unlock()
	close(firstGate)
	<-first
	<-r.began

	cancelA()
	f := calls[0].flight
	require.Eventually(t, func() bool { return f.live.Load() == 1 }, 5*time.Second, time.Millisecond, "the caller gave up")
	require.NoError(t, f.ctx.Err(), "the statement goes on while another caller still waits for it")

	r.mu.Lock()
	close(r.gate)
	r.mu.Unlock()
	oa, ob := <-a, <-b
	require.NoError(t, oa.err, "the caller that gave up still learns that its item was applied")
	require.Equal(t, 4, oa.res)
	require.NoError(t, ob.err)
	require.Equal(t, 6, ob.res)
}

// When every caller of a statement in flight gives up, the statement is cancelled and they
// get its error: the batch is applied whole or not at all, as one statement is.
func TestStatementCancelledWhenAllCallersLeave(t *testing.T) {
	r := &recorder{}
	g := r.group(0)
	r.gate, r.began = make(chan struct{}), make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	out := submit(ctx, g, 1)
	<-r.began
	cancel()
	o := <-out
	require.ErrorIs(t, o.err, context.Canceled, "the statement's error: it was cancelled")
	r.mu.Lock()
	require.Error(t, r.ctxs[0].Err(), "the statement's context was cancelled")
	r.gate = nil
	r.mu.Unlock()

	res, err := g.Do(context.Background(), 5)
	require.NoError(t, err, "the group goes on")
	require.Equal(t, 10, res)
}

// Under many concurrent callers every item is applied exactly once and answered with its
// own result.
func TestEveryItemExactlyOnce(t *testing.T) {
	var mu sync.Mutex
	applied := make(map[int]int)
	apply := func(items []int) []int {
		mu.Lock()
		defer mu.Unlock()
		out := make([]int, len(items))
		for i, it := range items {
			applied[it]++
			out[i] = -it
		}
		return out
	}
	fail := errors.New("every batch with a multiple of 7 fails")
	g := New(Config[int, int]{
		MaxBatch: 8,
		Many: func(_ context.Context, items []int) ([]int, error) {
			for _, it := range items {
				if it%7 == 0 {
					return nil, fail
				}
			}
			return apply(items), nil
		},
		One: func(_ context.Context, item int) (int, error) { return apply([]int{item})[0], nil },
	})
	const n = 2000
	var wg sync.WaitGroup
	results := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = g.Do(context.Background(), i) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, -i, results[i])
		require.Equal(t, 1, applied[i], "item %d applied once", i)
	}
}

// With room for two statements in flight, a second item does not wait behind the first.
func TestMaxFlushes(t *testing.T) {
	r := &recorder{gate: make(chan struct{}), began: make(chan struct{}, 100)}
	g := r.group(0)
	g.cfg.MaxFlushes = 2
	out := submit(context.Background(), g, 1)
	<-r.began
	more := submit(context.Background(), g, 2)
	<-r.began // a second statement started while the first is still held
	require.Equal(t, [][]int{{1}, {2}}, r.allRuns())
	close(r.gate)
	require.Equal(t, 2, (<-out).res)
	require.Equal(t, 4, (<-more).res)
}

// sizes records the batch sizes a group observes.
type sizes struct {
	mu   sync.Mutex
	seen []float64
}

func (s *sizes) Observe(v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, v)
}

// Sizes observes one size per statement run: what each run carried.
func TestObservesBatchSizes(t *testing.T) {
	t.Parallel()
	r := &recorder{}
	g := r.group(3)
	s := &sizes{}
	g.cfg.Sizes = s
	first, release := holdFirst(t, r, g, 1)
	rest := submit(context.Background(), g, 2, 3, 4, 5)
	require.Eventually(t, func() bool { return pending(g) == 4 }, 5*time.Second, time.Millisecond)
	release()
	collect(t, first, 1)
	collect(t, rest, 4)
	var runs []float64
	for _, run := range r.allRuns() {
		runs = append(runs, float64(len(run)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, []float64{1, 3, 1}, runs)
	require.Equal(t, runs, s.seen)
}
