package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

func (m *Module) listSensors(c echo.Context) error {
	return listOf(c, func(ctx context.Context, page store.Page) ([]store.SensorView, int, error) {
		return m.deps.Store.SensorList(ctx, c.QueryParam("pack"), page)
	})
}

func (m *Module) getSensor(c echo.Context) error {
	s, err := m.deps.Store.SensorGetByRef(c.Request().Context(), c.Param("ref"))
	return one(c, s, notFound(err, "no sensor %q", c.Param("ref")))
}

func (m *Module) enableSensor(c echo.Context) error  { return m.setSensorEnabled(c, true) }
func (m *Module) disableSensor(c echo.Context) error { return m.setSensorEnabled(c, false) }

// setSensorEnabled is idempotent: enabling an enabled sensor answers it as it is. The sensor
// role starts or stops the sensor once it hears of the change.
func (m *Module) setSensorEnabled(c echo.Context, enabled bool) error {
	ctx := c.Request().Context()
	ref := c.Param("ref")
	if err := m.deps.Store.SensorSetEnabled(ctx, ref, enabled); err != nil {
		return notFound(err, "no sensor %q", ref)
	}
	m.deps.Logger.InfoContext(ctx, "sensor enabled set", "sensor", ref, "enabled", enabled)
	s, err := m.deps.Store.SensorGetByRef(ctx, ref)
	if err != nil {
		return notFound(err, "no sensor %q", ref)
	}
	return answer(c, http.StatusOK, s)
}

// sensorPrincipal is the principal of a running sensor's token: valid while the replica that
// gave it to the sensor holds the sensor's lease. It reaches the keys of its pack as a running
// action's token does.
func (m *Module) sensorPrincipal(c echo.Context, raw string) (principal, error) {
	sum := sha256.Sum256([]byte(raw))
	h, err := m.deps.Store.SensorTokenHolderBySum(c.Request().Context(), sum[:])
	if errors.Is(err, store.ErrNotFound) {
		return principal{}, unauthorized(c, "unauthorized", "invalid sensor token: unknown, or its sensor no longer runs")
	}
	if err != nil {
		return principal{}, err
	}
	return principal{Login: fmt.Sprintf("sensor %s of pack %s", h.SensorRef, h.PackRef), Role: Viewer, Sensor: h.SensorRef, Pack: h.PackRef}, nil
}
