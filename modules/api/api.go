// Package api serves Attune's REST API under /api/v1: JSON in and out, lists in one
// pagination envelope, errors in one error shape.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/store"
)

// Store is what the API reads and writes.
type Store interface {
	WorkerList(ctx context.Context, page store.Page) ([]store.Worker, int, error)
}

// Config configures the API. It has no settings yet.
type Config struct{}

// Deps are the API's collaborators. Routes is the /api/v1 group of the process's HTTP server.
type Deps struct {
	Logger *slog.Logger
	Store  Store
	Routes *echo.Group
}

// Module is the api role.
type Module struct {
	deps Deps
}

// New registers the API's routes on deps.Routes.
func New(_ Config, deps Deps) (*Module, error) {
	if deps.Store == nil || deps.Routes == nil || deps.Logger == nil {
		return nil, errors.New("api: Logger, Store and Routes are required")
	}
	m := &Module{deps: deps}
	deps.Routes.GET("/workers", m.listWorkers)
	return m, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "api" }

// Run holds the module until ctx ends; the process's HTTP server does the serving.
func (m *Module) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

func (m *Module) listWorkers(c echo.Context) error {
	page, err := parsePage(c)
	if err != nil {
		return err
	}
	workers, total, err := m.deps.Store.WorkerList(c.Request().Context(), page.store())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, listResponse(workers, page, total))
}
