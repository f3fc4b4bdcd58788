package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// dashboardReadTimeout bounds one shared reading of the dashboard, which outlives the request
// that started it.
const dashboardReadTimeout = 30 * time.Second

// dashboard answers the figures of the web UI's first screen in one request, so that a page
// rereading them on every burst of execution events costs one round trip. Workers count as
// alive as GET /workers tells them. Requests share readings (see coalesced): every open
// dashboard rereads at once after each burst, and a reading costs tens of milliseconds of
// PostgreSQL on a busy installation (docs/benchmarks.md).
func (m *Module) dashboard(c echo.Context) error {
	ctx := c.Request().Context()
	d, err := m.dashboards.get(ctx, func() (store.Dashboard, error) {
		read, cancel := context.WithTimeout(context.WithoutCancel(ctx), dashboardReadTimeout)
		defer cancel()
		return m.deps.Store.DashboardGet(read, m.cfg.WorkerTimeout)
	})
	return one(c, d, err)
}

// coalesced runs one read at a time for any number of callers, and never answers a caller
// with a reading that began before it asked: a caller arriving while a read runs waits for
// the next one, which starts when the running one ends and answers everyone who arrived
// meanwhile. However many ask, the reads run back to back, and each answer is as fresh as
// if the caller had read alone.
type coalesced[T any] struct {
	mu      sync.Mutex
	running bool
	next    *reading[T]
}

type reading[T any] struct {
	done chan struct{}
	// waiting counts the callers answered by this reading.
	waiting int
	value   T
	err     error
}

func (c *coalesced[T]) get(ctx context.Context, read func() (T, error)) (T, error) {
	c.mu.Lock()
	var r *reading[T]
	if !c.running {
		c.running = true
		r = &reading[T]{done: make(chan struct{})}
		go c.run(r, read)
	} else {
		if c.next == nil {
			c.next = &reading[T]{done: make(chan struct{})}
		}
		r = c.next
	}
	r.waiting++
	c.mu.Unlock()
	select {
	case <-r.done:
		return r.value, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// run reads for r, then for whoever queued for the next reading meanwhile, until nobody has.
func (c *coalesced[T]) run(r *reading[T], read func() (T, error)) {
	for r != nil {
		r.value, r.err = readSafely(read)
		close(r.done)
		c.mu.Lock()
		r, c.next = c.next, nil
		c.running = r != nil
		c.mu.Unlock()
	}
}

// readSafely turns a panic in read into an error: the read runs outside the request that
// started it, where the server's recovery does not reach, and the callers waiting on it (and
// the readings after it) must still get an answer.
func readSafely[T any](read func() (T, error)) (value T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("read panicked: %v", p)
		}
	}()
	return read()
}
