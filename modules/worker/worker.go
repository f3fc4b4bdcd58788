// Package worker is the worker role: it registers the process as a worker, keeps its
// heartbeat fresh so the executor knows it is alive, runs the executions dispatched to it
// (claiming each with a conditional update so that none runs twice), records their results
// and announces their completion, and marks itself gone when it stops.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/worker/runner"
	"github.com/attune-go/attune/store"
)

// Store is what the worker reads and writes.
type Store interface {
	WorkerRegister(ctx context.Context, p store.WorkerRegisterParams) (store.Worker, error)
	WorkerHeartbeat(ctx context.Context, name string) error
	WorkerSetInactive(ctx context.Context, name string) error
	ExecutionTransition(ctx context.Context, t store.ExecutionTransition) (store.Execution, bool, error)
	ExecutionClaim(ctx context.Context, id, worker int64) (store.Execution, bool, error)
	ExecutionAbandonLeftovers(ctx context.Context, worker int64) ([]store.Execution, error)
}

// Config describes this worker.
type Config struct {
	Name        string
	Runners     []string
	Concurrency int
	Host        string
	PID         int
	// HeartbeatInterval is how often the worker says it is alive. Default 10s.
	HeartbeatInterval time.Duration
	// Runner tunes the action runners.
	Runner runner.Config
}

// Notifier hears of every status change the worker commits, for the live stream. It is best
// effort and must not block.
type Notifier interface {
	Notify(ns ...broker.Notification)
}

// Deps are the worker's collaborators. Notifier may be nil: nothing is notified. Relay
// sends what a commit calls for, keeping what the broker cannot take at once (package
// broker/relay); nil publishes through Broker directly.
type Deps struct {
	Logger   *slog.Logger
	Store    Store
	Broker   broker.Broker
	Relay    broker.Sender
	Notifier Notifier
}

// Module is the worker role.
type Module struct {
	cfg     Config
	deps    Deps
	runners map[string]runner.Runner
	running running
	// slots bounds the runs across every runner's consumer to Concurrency.
	slots *semaphore.Weighted

	id      atomic.Int64 // this worker's row; written again by a re-registration
	coreDir string       // where the core pack's scripts were written, set by Run first
}

// New checks the configuration.
func New(cfg Config, deps Deps) (*Module, error) {
	if cfg.Name == "" {
		return nil, errors.New("worker: Name is required")
	}
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("worker: Concurrency must be at least 1, got %d", cfg.Concurrency)
	}
	if deps.Store == nil || deps.Logger == nil || deps.Broker == nil {
		return nil, errors.New("worker: Logger, Store and Broker are required")
	}
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, 10*time.Second)
	if deps.Relay == nil {
		deps.Relay = broker.Direct(deps.Broker)
	}
	runners := runner.New(cfg.Runner)
	if len(cfg.Runners) == 0 {
		for name := range runners {
			cfg.Runners = append(cfg.Runners, name)
		}
		slices.Sort(cfg.Runners)
	}
	return &Module{cfg: cfg, deps: deps, runners: runners, slots: semaphore.NewWeighted(int64(cfg.Concurrency))}, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "worker" }

// Run registers the worker, then runs dispatched executions and heartbeats until ctx ends.
// Stopping drains the executions in flight (the broker's drain timeout bounds it), then
// marks the worker inactive. A database that is away for a while is logged, not fatal: the
// heartbeat resumes with it.
func (m *Module) Run(ctx context.Context) error {
	dir, err := writeCorePack()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	m.coreDir = dir
	// The queues exist before the worker is known, so that a cancel sent to it, or the first
	// dispatch for its runners, has somewhere to go.
	queues := []broker.Queue{broker.WorkerCancelQueue(m.cfg.Name)}
	for _, r := range m.cfg.Runners {
		queues = append(queues, broker.DispatchQueue(r))
	}
	for _, q := range queues {
		if err := m.deps.Broker.Declare(ctx, q); err != nil {
			return err
		}
	}
	if err := m.register(ctx); err != nil {
		return err
	}
	m.deps.Logger.InfoContext(ctx, "worker registered", "worker", m.cfg.Name, "runners", m.cfg.Runners, "concurrency", m.cfg.Concurrency)
	defer m.deregister(ctx)
	if err := m.abandonLeftovers(ctx); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.heartbeat(gctx) })
	// One consumer per runner, each allowed the worker's concurrency, and one bound on the runs
	// across them: the broker stops handing this worker executions once it holds that many
	// of a runner, and what it holds unacked goes back to the other workers if it dies.
	for _, r := range m.cfg.Runners {
		g.Go(func() error {
			return m.deps.Broker.Subscribe(gctx, broker.Subscription{Queue: broker.DispatchQueue(r), Prefetch: m.cfg.Concurrency}, m.handleDispatch)
		})
	}
	g.Go(func() error {
		return m.deps.Broker.Subscribe(gctx, broker.Subscription{Queue: broker.WorkerCancelQueue(m.cfg.Name), Prefetch: 4}, m.handleCancel)
	})
	return g.Wait()
}

func (m *Module) heartbeat(ctx context.Context) error {
	log := m.deps.Logger
	ticker := time.NewTicker(m.cfg.HeartbeatInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		err := m.deps.Store.WorkerHeartbeat(ctx, m.cfg.Name)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
			// Someone marked this worker gone (a sweep that thought it dead): come back.
			log.WarnContext(ctx, "worker row missing or inactive; registering again", "worker", m.cfg.Name)
			if err := m.register(ctx); err != nil && ctx.Err() == nil {
				log.ErrorContext(ctx, "worker re-registration failed", "worker", m.cfg.Name, "err", err)
			}
		case ctx.Err() == nil:
			log.WarnContext(ctx, "worker heartbeat failed", "worker", m.cfg.Name, "err", err)
		}
	}
}

// abandonLeftovers ends what an earlier process of this worker's name was running when it
// died: this process starts with nothing running, and nothing else would end them while the
// name heartbeats again.
func (m *Module) abandonLeftovers(ctx context.Context) error {
	left, err := m.deps.Store.ExecutionAbandonLeftovers(ctx, m.id.Load())
	if err != nil {
		return err
	}
	m.notify("", left...)
	for _, e := range left {
		m.deps.Logger.WarnContext(ctx, "execution abandoned by a restart of its worker", "execution_id", e.ID, "action", e.ActionRef)
		if err := m.deps.Relay.Send(ctx, broker.ExecutionCompleted{ExecutionID: e.ID, ActionRef: e.ActionRef, Status: e.Status, FinishedAt: time.Now().UTC()}); err != nil {
			return err
		}
	}
	return nil
}

func (m *Module) register(ctx context.Context) error {
	w, err := m.deps.Store.WorkerRegister(ctx, store.WorkerRegisterParams{
		Name:        m.cfg.Name,
		Runners:     m.cfg.Runners,
		Concurrency: m.cfg.Concurrency,
		Host:        m.cfg.Host,
		PID:         m.cfg.PID,
	})
	if err != nil {
		return fmt.Errorf("register worker %s: %w", m.cfg.Name, err)
	}
	m.id.Store(w.ID)
	return nil
}

// deregister runs after ctx has ended, so it gets a short context of its own.
func (m *Module) deregister(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := m.deps.Store.WorkerSetInactive(ctx, m.cfg.Name); err != nil {
		m.deps.Logger.WarnContext(ctx, "worker deregistration failed", "worker", m.cfg.Name, "err", err)
		return
	}
	m.deps.Logger.InfoContext(ctx, "worker deregistered", "worker", m.cfg.Name)
}

// notify tells the live stream that execs reached their status, from previous when every one
// of them left the same one ("" when unknown). Call it once the change is committed.
func (m *Module) notify(previous string, execs ...store.Execution) {
	if m.deps.Notifier == nil || len(execs) == 0 {
		return
	}
	ns := make([]broker.Notification, len(execs))
	for i, e := range execs {
		ns[i] = broker.ExecutionChanged(e.ID, e.ActionRef, e.Status, previous, e.Updated)
	}
	m.deps.Notifier.Notify(ns...)
}
