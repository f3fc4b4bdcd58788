// Package worker is the worker role: it registers the process as a worker that can run
// actions, keeps its heartbeat fresh so the executor knows it is alive, and marks it gone
// when it stops.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/attune-go/attune/store"
)

// Store is what the worker records about itself.
type Store interface {
	WorkerRegister(ctx context.Context, p store.WorkerRegisterParams) (store.Worker, error)
	WorkerHeartbeat(ctx context.Context, name string) error
	WorkerSetInactive(ctx context.Context, name string) error
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
}

// Deps are the worker's collaborators.
type Deps struct {
	Logger *slog.Logger
	Store  Store
}

// Module is the worker role.
type Module struct {
	cfg  Config
	deps Deps
}

// New checks the configuration.
func New(cfg Config, deps Deps) (*Module, error) {
	if cfg.Name == "" {
		return nil, errors.New("worker: Name is required")
	}
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("worker: Concurrency must be at least 1, got %d", cfg.Concurrency)
	}
	if deps.Store == nil || deps.Logger == nil {
		return nil, errors.New("worker: Logger and Store are required")
	}
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, 10*time.Second)
	return &Module{cfg: cfg, deps: deps}, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "worker" }

// Run registers the worker and heartbeats until ctx ends, then marks the worker inactive.
// A database that is away for a while is logged, not fatal: the heartbeat resumes with it.
func (m *Module) Run(ctx context.Context) error {
	log := m.deps.Logger
	if err := m.register(ctx); err != nil {
		return err
	}
	log.InfoContext(ctx, "worker registered", "worker", m.cfg.Name, "runners", m.cfg.Runners, "concurrency", m.cfg.Concurrency)
	defer m.deregister(ctx)

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

func (m *Module) register(ctx context.Context) error {
	_, err := m.deps.Store.WorkerRegister(ctx, store.WorkerRegisterParams{
		Name:        m.cfg.Name,
		Runners:     m.cfg.Runners,
		Concurrency: m.cfg.Concurrency,
		Host:        m.cfg.Host,
		PID:         m.cfg.PID,
	})
	if err != nil {
		return fmt.Errorf("register worker %s: %w", m.cfg.Name, err)
	}
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
