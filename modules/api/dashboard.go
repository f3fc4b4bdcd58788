package api

import (
	"github.com/labstack/echo/v4"
)

// dashboard answers the figures of the web UI's first screen in one request, so that a page
// rereading them on every burst of execution events costs one round trip. Workers count as
// alive as GET /workers tells them.
func (m *Module) dashboard(c echo.Context) error {
	d, err := m.deps.Store.DashboardGet(c.Request().Context(), m.cfg.WorkerTimeout)
	return one(c, d, err)
}
