// Package worker is the worker role: it registers the process as a worker, keeps its
// heartbeat fresh so the executor knows it is alive, runs the executions dispatched to it
// (claiming each with a conditional update so that none runs twice), records their results
// and announces their completion, and marks itself gone when it stops.
package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack/cache"
	"github.com/attune-go/attune/modules/worker/reaper"
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
	SelectorsInUse(ctx context.Context) ([]store.RunnerSelector, error)
	WorkerListDeadOnHost(ctx context.Context, host, except string, aliveWithin time.Duration) ([]store.DeadWorker, error)
	WorkerDelete(ctx context.Context, name string, aliveWithin time.Duration) error
	WorkerDeleteSilent(ctx context.Context, silentFor time.Duration) ([]string, error)
	ExecutionTokenIssue(ctx context.Context, execution int64, ttl time.Duration) (string, error)
	cache.Store
}

// Config describes this worker.
type Config struct {
	Name    string
	Runners []string
	// Labels say what this worker offers (--worker-labels): it runs the executions whose
	// selector they satisfy, besides those without one.
	Labels      store.Labels
	Concurrency int
	Host        string
	PID         int
	// HeartbeatInterval is how often the worker says it is alive. Default 10s.
	HeartbeatInterval time.Duration
	// Timeout is how long after its last heartbeat a worker is dead (--worker-timeout): at
	// start, the worker deletes the records of the dead workers of its host whose process is
	// gone. Default 30s.
	Timeout time.Duration
	// Retention is how long the record of a silent worker of any host is kept: at start, the
	// worker deletes older ones. Default 24h.
	Retention time.Duration
	// Runner tunes the action runners.
	Runner runner.Config
	// Companion, when set, is the command of the worker's companion process (attune's hidden
	// `internal reaper`, which calls reaper.Serve) for the marker of this worker process and
	// its directory (reaper.Marker.Dir): it ends the processes of the worker's actions and
	// removes the directory when the worker dies, however it dies, and with it the worker ends
	// at start what an earlier process of its name left. Nil (tests of the module in-process)
	// runs without: actions then outlive a killed worker.
	Companion func(m reaper.Marker, dir string) *exec.Cmd
	// APIURL is the API's address, given to each shell action as ATTUNE_API_URL with a token of
	// its own (ATTUNE_TOKEN) with which it writes keys back. Empty gives neither.
	APIURL string
	// Live tunes the live output of running shell actions.
	Live LiveConfig
	// PackCache is the directory of this worker's cache of pack versions (--worker-pack-cache),
	// kept across restarts. Default: attune/packs/NAME under the user's cache directory, or
	// under the temporary directory when there is none.
	PackCache string
}

// Notifier hears of every status change the worker commits, and of what running actions
// print, for the live stream. It is best effort and must not block.
type Notifier interface {
	Notify(ns ...broker.Notification)
	// PendingBytes is how much output waits to be published: past LiveConfig.Backlog, live
	// output is dropped rather than queued.
	PendingBytes() int
	// Crowded reports that so many notifications wait that live output is dropped rather
	// than queued, lest it push status changes out of the notifier's bound.
	Crowded() bool
}

// Deps are the worker's collaborators. Notifier may be nil: nothing is notified, and no
// output is sent live. Relay sends what a commit calls for, keeping what the broker cannot
// take at once (package broker/relay); nil publishes through Broker directly.
type Deps struct {
	Logger   *slog.Logger
	Store    Store
	Broker   broker.Broker
	Relay    broker.Sender
	Notifier Notifier
	Opener   Opener
	// Metrics counts what the worker runs; nil counts nothing.
	Metrics Metrics
}

// Metrics counts what the worker runs (the process's /metrics). It is called for every
// execution, so it must not block.
type Metrics interface {
	ExecutionStarted(action, runner string)
	ExecutionFinished(action, runner, status string)
	// Stage observes how long an execution took to reach stage from the stage before it.
	Stage(stage string, d time.Duration)
	// SlotsBusy moves the count of this worker's slots holding a dispatch by delta.
	SlotsBusy(delta int)
	// OutputDropped counts bytes an action printed that were not sent live, because
	// publishing fell behind.
	OutputDropped(bytes int)
	// OutputCut counts an execution whose live output reached its bound.
	OutputCut()
}

type noMetrics struct{}

func (noMetrics) ExecutionStarted(string, string)          {}
func (noMetrics) ExecutionFinished(string, string, string) {}
func (noMetrics) Stage(string, time.Duration)              {}
func (noMetrics) SlotsBusy(int)                            {}
func (noMetrics) OutputDropped(int)                        {}
func (noMetrics) OutputCut()                               {}

// Opener opens the sealed values in an execution's parameters (package store/seal), and
// returns the texts it opened, for the scrubber. A token it cannot open is an error naming
// its key.
type Opener interface {
	OpenJSON(doc json.RawMessage) (json.RawMessage, []string, error)
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

	// marker is in the environment of every process of this worker process's actions.
	marker reaper.Marker
	// dir holds this worker process's files (large parameters), named by its marker.
	dir       string
	companion companion
	selectors selectorQueues
	// endEarlier is reaper.EndEarlier, but in tests.
	endEarlier func(ctx context.Context, m reaper.Marker, tmp string, opts reaper.Options) (reaper.Earlier, error)
	packs      *cache.Cache
}

// New checks the configuration.
func New(cfg Config, deps Deps) (*Module, error) {
	if cfg.Name == "" {
		return nil, errors.New("worker: Name is required")
	}
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("worker: Concurrency must be at least 1, got %d", cfg.Concurrency)
	}
	if deps.Store == nil || deps.Logger == nil || deps.Broker == nil || deps.Opener == nil {
		return nil, errors.New("worker: Logger, Store, Broker and Opener are required")
	}
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, 10*time.Second)
	if deps.Relay == nil {
		deps.Relay = broker.Direct(deps.Broker)
	}
	if deps.Metrics == nil {
		deps.Metrics = noMetrics{}
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, 30*time.Second)
	cfg.Retention = cmp.Or(cfg.Retention, 24*time.Hour)
	cfg.Live = cfg.Live.withDefaults()
	marker := reaper.NewMarker(cfg.Name)
	cfg.Runner.Env = append(slices.Clip(cfg.Runner.Env), marker.Env()...)
	dir := marker.Dir(os.TempDir())
	cfg.Runner.FilesDir = dir
	runners := runner.New(cfg.Runner)
	if len(cfg.Runners) == 0 {
		for name := range runners {
			cfg.Runners = append(cfg.Runners, name)
		}
		slices.Sort(cfg.Runners)
	}
	if cfg.PackCache == "" {
		cfg.PackCache = cache.DefaultDir("packs", cfg.Name)
	}
	return &Module{cfg: cfg, deps: deps, runners: runners, slots: semaphore.NewWeighted(int64(cfg.Concurrency)),
		marker: marker, dir: dir, endEarlier: reaper.EndEarlier, packs: cache.New(cfg.PackCache, deps.Store)}, nil
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
	m.deps.Logger.InfoContext(ctx, "worker registered", "worker", m.cfg.Name, "runners", m.cfg.Runners, "labels", m.cfg.Labels.String(),
		"concurrency", m.cfg.Concurrency)
	defer m.deregister(ctx)
	// Before any work is taken: what an earlier process left ends before its executions are
	// recorded abandoned, and no action starts without the companion that ends it.
	if m.cfg.Companion != nil {
		if err := m.endEarlierActions(ctx); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return fmt.Errorf("make the directory of worker %s: %w", m.cfg.Name, err)
	}
	defer os.RemoveAll(m.dir)
	if m.cfg.Companion != nil {
		if err := m.startCompanion(ctx); err != nil {
			return err
		}
		defer m.stopCompanion(ctx)
	}
	if err := m.abandonLeftovers(ctx); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	m.selectors.start(gctx, g)
	g.Go(func() error { return m.heartbeat(gctx) })
	g.Go(func() error { m.forgetDeadWorkers(gctx); return nil })
	g.Go(func() error { m.packs.KeepClean(gctx, m.deps.Logger); return nil })
	if m.cfg.Companion != nil {
		g.Go(func() error { return m.superviseCompanion(gctx) })
	}
	// One consumer per runner, each allowed the worker's concurrency, and one bound on the runs
	// across them: the broker stops handing this worker executions once it holds that many
	// of a runner, and what it holds unacked goes back to the other workers if it dies.
	for _, r := range m.cfg.Runners {
		g.Go(func() error {
			return m.deps.Broker.Subscribe(gctx, broker.Subscription{Queue: broker.DispatchQueue(r), Prefetch: m.cfg.Concurrency}, m.handleDispatch)
		})
	}
	g.Go(func() error {
		return m.deps.Broker.Subscribe(gctx, broker.Subscription{Queue: broker.WorkerCancelQueue(m.cfg.Name), Prefetch: 4}, m.handleControl)
	})
	g.Go(func() error { return m.consumeSelectorsInUse(gctx) })
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
		m.deps.Logger.WarnContext(ctx, "execution abandoned by a restart of its worker", "execution_id", e.ID, "action", e.ActionRef,
			"trace_id", e.Trace())
		if err := m.deps.Relay.Send(ctx, broker.InTrace(e.Trace(), broker.ExecutionCompleted{ExecutionID: e.ID, ActionRef: e.ActionRef,
			Status: e.Status, FinishedAt: time.Now().UTC(), Workflow: e.WorkflowID()})); err != nil {
			return err
		}
	}
	return nil
}

func (m *Module) register(ctx context.Context) error {
	w, err := m.deps.Store.WorkerRegister(ctx, store.WorkerRegisterParams{
		Name:        m.cfg.Name,
		Runners:     m.cfg.Runners,
		Labels:      m.cfg.Labels,
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
		ns[i] = broker.ExecutionChanged(e.ID, e.ActionRef, e.Status, previous, e.Updated).InWorkflow(e.WorkflowID())
	}
	m.deps.Notifier.Notify(ns...)
}
