// Package executor is the executor role: it turns enforcements into executions with their
// parameters checked, admits them under their action's policy, dispatches them to the
// workers of their runner, runs workflows and inquiries, listens for completions, and sweeps up work whose
// message was lost between a commit and its publish.
package executor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

// Store is what the executor reads and writes.
type Store interface {
	ActionGetByRef(ctx context.Context, ref string) (store.Action, error)
	EnforcementGetTarget(ctx context.Context, id int64) (store.EnforcementTarget, error)
	EnforcementResolve(ctx context.Context, id int64, status, reason string) error
	ExecutionGet(ctx context.Context, id int64) (store.Execution, error)
	ExecutionCreateOne(ctx context.Context, p store.ExecutionCreateParams) (store.ExecutionCreated, error)
	ExecutionTransition(ctx context.Context, t store.ExecutionTransition) (store.Execution, bool, error)
	ExecutionScheduleWaiting(ctx context.Context, limit int) ([]store.Execution, error)
	ExecutionAdmitLate(ctx context.Context, id int64) (string, error)
	ExecutionRetryDue(ctx context.Context, limit int) ([]store.ExecutionCreated, error)
	AdmissionExpire(ctx context.Context) ([]store.Execution, error)
	AdmissionPromoteDue(ctx context.Context) ([]int64, error)
	ComponentVersion(ctx context.Context) (int64, error)
	WorkflowsDue(ctx context.Context, limit int) ([]int64, error)
	WorkflowsStalled(ctx context.Context, after time.Duration, limit int) ([]int64, error)
	InquiryStart(ctx context.Context, p store.InquiryStartParams) (store.Inquiry, store.Execution, bool, error)
	InquiryTimeOut(ctx context.Context, id int64) (store.Inquiry, store.Execution, bool, error)
	InquiryCancel(ctx context.Context, id int64) (store.Inquiry, store.Execution, bool, error)
	InquiryOfExecution(ctx context.Context, id int64) (store.Inquiry, error)
	InquiriesDue(ctx context.Context, limit int) ([]int64, error)
	InquiriesOrphaned(ctx context.Context, limit int) ([]int64, error)
	InTx(ctx context.Context, fn func(q *store.Queries) error) error
	KeyLookup(ctx context.Context, packRef string, user *int64, names []store.KeyName) (map[store.KeyName]store.KeyFound, error)
	Listen(ctx context.Context, channel string, logger *slog.Logger, onChange func(listening bool)) error
}

// Config tunes the executor.
type Config struct {
	// Prefetch bounds the messages each consumer handles at once. Default 16.
	Prefetch int
	// WorkerAliveWithin is how recent a worker's heartbeat must be for it to get work, and
	// past which its running executions are abandoned. Default 30s.
	WorkerAliveWithin time.Duration
	// NoWorkerTimeout is how long an execution may wait for a live worker that can run it
	// before it fails. Default 60s.
	NoWorkerTimeout time.Duration
	// WorkerWaitTimeout is how long an execution with a worker selector may wait for a live
	// worker with its runner and labels before it fails (--worker-wait-timeout). Default 5m.
	WorkerWaitTimeout time.Duration
	// SweepInterval is how often lost messages are looked for. Default 2s.
	SweepInterval time.Duration
	// SweepAfter is how long a row must have waited for its message before the sweeper takes
	// that message for lost, once the queue that carries it holds no other; it must
	// comfortably exceed the normal gap between a commit and its publish. Default 5s.
	SweepAfter time.Duration
}

// Notifier hears of every status change the executor commits, for the live stream. It is
// best effort and must not block.
type Notifier interface {
	Notify(ns ...broker.Notification)
}

// Sealer seals the values of secret parameters before an execution row is written (package
// store/seal): only the worker opens them.
type Sealer interface {
	SealParams(params json.RawMessage, names []string) (json.RawMessage, error)
}

// Deps are the executor's collaborators. Notifier may be nil: nothing is notified. Relay
// sends what a commit calls for, keeping what the broker cannot take at once (package
// broker/relay); nil publishes through Broker directly.
type Deps struct {
	Logger   *slog.Logger
	Store    Store
	Broker   broker.Broker
	Relay    broker.Sender
	Notifier Notifier
	Sealer   Sealer
	// Metrics observes how long enforcements wait for their executions; nil observes nothing.
	Metrics Metrics
}

// Metrics observes the stages of the pipeline (the process's /metrics).
type Metrics interface {
	// Stage observes how long one reached stage from the stage before it.
	Stage(stage string, d time.Duration)
}

// Module is the executor role.
type Module struct {
	cfg  Config
	deps Deps
	// actions caches what every execution reads; a listener drops it when actions change.
	actions *store.RefCache[store.Action]
	// watch drops actions changed just before a message, ahead of their NOTIFY.
	watch  *store.ComponentWatch
	resent republished
	db     *dbWatch
	// pools holds the names of the dispatch queues this process has declared.
	pools sync.Map
	// advancing coalesces this process's advances of one workflow.
	advancing advances
	// wakes holds the in-process timers of delayed starts, bounded by Run's context.
	wakes wakeups
}

// New checks the configuration.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.Logger == nil || deps.Store == nil || deps.Broker == nil || deps.Sealer == nil {
		return nil, errors.New("executor: Logger, Store, Broker and Sealer are required")
	}
	cfg.Prefetch = cmp.Or(cfg.Prefetch, 16)
	cfg.WorkerAliveWithin = cmp.Or(cfg.WorkerAliveWithin, 30*time.Second)
	cfg.NoWorkerTimeout = cmp.Or(cfg.NoWorkerTimeout, time.Minute)
	cfg.WorkerWaitTimeout = cmp.Or(cfg.WorkerWaitTimeout, 5*time.Minute)
	cfg.SweepInterval = cmp.Or(cfg.SweepInterval, 2*time.Second)
	cfg.SweepAfter = cmp.Or(cfg.SweepAfter, 5*time.Second)
	if deps.Relay == nil {
		deps.Relay = broker.Direct(deps.Broker)
	}
	m := &Module{cfg: cfg, deps: deps, actions: store.NewRefCache(deps.Store.ActionGetByRef), db: &dbWatch{since: time.Now()}}
	m.watch = store.NewComponentWatch(deps.Store.ComponentVersion, m.actions)
	return m, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "executor" }

// Run consumes enforcements, execution requests and completions, and sweeps, until ctx ends.
func (m *Module) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	m.wakes.start(ctx)
	g.Go(func() error {
		return m.deps.Store.Listen(ctx, store.ChannelActionsChanged, m.deps.Logger, m.actions.Invalidate)
	})
	consume := func(q broker.Queue, h broker.Handler) {
		g.Go(func() error {
			return m.deps.Broker.Subscribe(ctx, broker.Subscription{Queue: q, Prefetch: m.cfg.Prefetch}, h)
		})
	}
	consume(broker.QueueExecutorEnforcement, m.handleEnforcement)
	consume(broker.QueueExecutorRequests, m.handleRequest)
	consume(broker.QueueExecutorCompletions, m.handleCompletion)
	g.Go(func() error { return m.sweepLoop(ctx) })
	g.Go(func() error { return m.admissionLoop(ctx) })
	g.Go(func() error { return m.workflowLoop(ctx) })
	g.Go(func() error { return m.inquiryLoop(ctx) })
	return g.Wait()
}

// notify tells the live stream that execs reached their status, from previous when every one
// of them left the same one ("" when unknown). Call it once the change is committed.
func (m *Module) notify(previous string, execs ...store.Execution) {
	if m.deps.Notifier == nil || len(execs) == 0 {
		return
	}
	ns := make([]broker.Notification, len(execs))
	for i, e := range execs {
		ns[i] = broker.ExecutionChanged(e.ID, e.ActionRef, e.Status, previous, e.Updated).InWorkflow(e.WorkflowID())
	}
	m.deps.Notifier.Notify(ns...)
}
