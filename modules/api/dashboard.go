package api

import (
	"context"
	"math"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/coalesce"
)

// dashboard answers the figures of the web UI's first screen in one request, so that a page
// rereading them on every burst of execution events costs one round trip. Workers count as
// alive as GET /workers tells them. Requests share readings (see newDashboards): every open
// dashboard rereads at once after each burst, and a reading costs tens of milliseconds of
// PostgreSQL on a busy installation (docs/benchmarks.md).
func (m *Module) dashboard(c echo.Context) error {
	d, err := m.dashboards.Do(c.Request().Context(), struct{}{})
	return one(c, d, err)
}

// newDashboards reads the dashboard one reading at a time for any number of requests, as
// store.ComponentVersion reads its count: a reading answers every request waiting when it
// starts, and a request arriving while one runs waits for the next, so that no answer began
// before its request asked. A reading outlives a request that leaves, and ends once every
// request it answers has. A reading that fails is read again for each of its requests alone
// (coalesce's failed batch): a few open dashboards, a few reads.
func newDashboards(s Store, aliveWithin time.Duration) *coalesce.Group[struct{}, store.Dashboard] {
	read := func(ctx context.Context, _ struct{}) (store.Dashboard, error) {
		return s.DashboardGet(ctx, aliveWithin)
	}
	return coalesce.New(coalesce.Config[struct{}, store.Dashboard]{
		MaxBatch: math.MaxInt,
		One:      read,
		Many: func(ctx context.Context, items []struct{}) ([]store.Dashboard, error) {
			d, err := read(ctx, struct{}{})
			if err != nil {
				return nil, err
			}
			out := make([]store.Dashboard, len(items))
			for i := range out {
				out[i] = d
			}
			return out, nil
		},
	})
}
