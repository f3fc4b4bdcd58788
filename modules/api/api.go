// Package api serves Attune's REST API under /api/v1: JSON in and out, lists in one
// pagination envelope, errors in one error shape.
package api

import (
	"context"
	"errors"
	"log/slog"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// Store is what the API reads and writes.
type Store interface {
	pack.Registrar
	ActionList(ctx context.Context, packRef string, page store.Page) ([]store.Action, int, error)
	EnforcementGet(ctx context.Context, id int64) (store.Enforcement, error)
	EnforcementList(ctx context.Context, ruleRef string, page store.Page) ([]store.Enforcement, int, error)
	EventGet(ctx context.Context, id int64) (store.Event, error)
	EventInsert(ctx context.Context, p store.EventInsertParams) (store.Event, error)
	EventList(ctx context.Context, triggerRef string, page store.Page) ([]store.Event, int, error)
	ExecutionGet(ctx context.Context, id int64) (store.Execution, error)
	ExecutionInsert(ctx context.Context, p store.ExecutionInsertParams) (store.Execution, error)
	ExecutionList(ctx context.Context, f store.ExecutionFilter, page store.Page) ([]store.Execution, int, error)
	ExecutionQueuePosition(ctx context.Context, id int64) (*int, error)
	ExecutionTransition(ctx context.Context, t store.ExecutionTransition) (store.Execution, bool, error)
	PackGetByRef(ctx context.Context, ref string) (store.Pack, error)
	PackList(ctx context.Context, page store.Page) ([]store.Pack, int, error)
	PolicyCreate(ctx context.Context, x store.Policy) (store.Policy, error)
	PolicyDelete(ctx context.Context, ref string) error
	PolicyFor(ctx context.Context, actionRef string) (store.Policy, error)
	PolicyGet(ctx context.Context, ref string) (store.Policy, error)
	PolicyList(ctx context.Context, page store.Page) ([]store.Policy, int, error)
	PolicyUpdate(ctx context.Context, ref string, x store.Policy) (store.Policy, error)
	QueueStatsGet(ctx context.Context, actionRef string, limit *int) (store.QueueStats, error)
	RuleGetByRef(ctx context.Context, ref string) (store.Rule, error)
	RuleList(ctx context.Context, packRef string, page store.Page) ([]store.Rule, int, error)
	TriggerList(ctx context.Context, packRef string, page store.Page) ([]store.Trigger, int, error)
	WorkerList(ctx context.Context, page store.Page) ([]store.Worker, int, error)
}

// Config configures the API. It has no settings yet.
type Config struct{}

// Deps are the API's collaborators. Routes is the /api/v1 group of the process's HTTP server.
type Deps struct {
	Logger *slog.Logger
	Store  Store
	Broker broker.Publisher
	Routes *echo.Group
}

// Module is the api role.
type Module struct {
	deps Deps
}

// New registers the API's routes on deps.Routes.
func New(_ Config, deps Deps) (*Module, error) {
	if deps.Store == nil || deps.Routes == nil || deps.Logger == nil || deps.Broker == nil {
		return nil, errors.New("api: Logger, Store, Broker and Routes are required")
	}
	m := &Module{deps: deps}
	r := deps.Routes
	r.GET("/openapi.json", m.openAPI)
	r.GET("/packs", m.listPacks)
	r.GET("/packs/:ref", m.getPack)
	r.POST("/packs/register", m.registerPack)
	r.GET("/actions", m.listActions)
	r.GET("/actions/:ref", m.getAction)
	r.GET("/actions/:ref/queue-stats", m.queueStats)
	r.GET("/triggers", m.listTriggers)
	r.GET("/triggers/:ref", m.getTrigger)
	r.GET("/rules", m.listRules)
	r.GET("/rules/:ref", m.getRule)
	r.GET("/events", m.listEvents)
	r.GET("/events/:id", m.getEvent)
	r.POST("/events", m.createEvent)
	r.POST("/webhooks/:url", m.webhook)
	r.GET("/enforcements", m.listEnforcements)
	r.GET("/enforcements/:id", m.getEnforcement)
	r.GET("/executions", m.listExecutions)
	r.GET("/executions/:id", m.getExecution)
	r.POST("/executions/execute", m.execute)
	r.POST("/executions/:id/cancel", m.cancel)
	r.POST("/executions/:id/rerun", m.rerun)
	r.GET("/workers", m.listWorkers)
	r.GET("/policies", m.listPolicies)
	r.GET("/policies/:ref", m.getPolicy)
	r.POST("/policies", m.createPolicy)
	r.PUT("/policies/:ref", m.updatePolicy)
	r.DELETE("/policies/:ref", m.deletePolicy)
	return m, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "api" }

// Run holds the module until ctx ends; the process's HTTP server does the serving.
func (m *Module) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
