package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// Workers that have not heartbeated within the worker timeout read as inactive: a killed
// worker never says it stopped.
func (m *Module) listWorkers(c echo.Context) error {
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.Worker, int, error) {
		return m.deps.Store.WorkerList(ctx, m.cfg.WorkerTimeout, page)
	})
}

func (m *Module) getWorker(c echo.Context) error {
	name := c.Param("name")
	w, err := m.deps.Store.WorkerGet(c.Request().Context(), name, m.cfg.WorkerTimeout)
	return one(c, w, notFound(err, "no worker %q", name))
}

// deleteWorker removes the record of a worker that is gone: one that still heartbeats would
// only register again, and one whose executions are still running needs its record until the
// executor has abandoned them.
func (m *Module) deleteWorker(c echo.Context) error {
	ctx := c.Request().Context()
	name := c.Param("name")
	err := m.deps.Store.WorkerDelete(ctx, name, m.cfg.WorkerTimeout)
	var inUse *store.InUseError
	switch {
	case errors.As(err, &inUse):
		return conflict("%v: the executor abandons them once the worker has been silent for its --worker-timeout; retry then", inUse)
	case errors.Is(err, store.ErrConflict):
		return conflict("worker %s is alive: it heartbeated within the last %s; only the record of a stopped worker can be deleted", name, m.cfg.WorkerTimeout)
	case err != nil:
		return notFound(err, "no worker %q", name)
	}
	m.deps.Logger.InfoContext(ctx, "worker deleted", "worker", name)
	return c.NoContent(http.StatusNoContent)
}
