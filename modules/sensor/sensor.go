// Package sensor is the sensor role's event sources: the built-in timers, which one replica at
// a time leads and fires an event for each tick of every enabled rule on core.intervaltimer,
// core.crontimer or core.datetimetimer, meant for that rule only; and the packs' custom
// sensors, processes each run on one replica at a time, the holder of its lease.
package sensor

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack/cache"
	"github.com/attune-go/attune/store"
)

// Store is what the timers read and write.
type Store interface {
	RuleListEnabled(ctx context.Context) ([]store.Rule, error)
	TimerTickPrune(ctx context.Context, before time.Time) (int64, error)
	InTx(ctx context.Context, fn func(q *store.Queries) error) error
	Listen(ctx context.Context, channel string, logger *slog.Logger, onChange func(listening bool)) error
	Lead(ctx context.Context, key string, logger *slog.Logger, fn func(ctx context.Context) error) error

	SensorListWanted(ctx context.Context) ([]store.SensorRun, error)
	SensorLeaseTake(ctx context.Context, ref, holder string, ttl time.Duration) (string, bool, error)
	SensorLeaseRenew(ctx context.Context, ref, holder string, ttl time.Duration) error
	SensorLeaseRelease(ctx context.Context, ref, holder string) error
	SensorStateSet(ctx context.Context, ref, holder string, st store.SensorState) error
	SensorEventInsert(ctx context.Context, ref, holder string, p store.EventInsertParams) (store.Event, error)
	cache.Store
}

// Config tunes the timers.
type Config struct {
	// RefreshInterval is how often the schedules are rebuilt from the rules when no change
	// was notified, in case a notification was missed. Default 30s.
	RefreshInterval time.Duration
	// Grace is how late a tick may still be fired: one due while the leadership changed
	// hands, or whose first attempt failed. Later ones are skipped. Default 10s.
	Grace time.Duration
	// TickRetention is how long fired ticks are remembered; it must exceed Grace by far.
	// Default 24h.
	TickRetention time.Duration
	// PruneInterval is how often the leader forgets ticks older than TickRetention.
	// Default 1h.
	PruneInterval time.Duration
	// Sensors tunes the custom sensors.
	Sensors Sensors
}

// Notifier hears of every event the timers create, for the live stream. It is best effort
// and must not block.
type Notifier interface {
	Notify(ns ...broker.Notification)
}

// Deps are the timers' collaborators. Notifier may be nil: nothing is notified. Relay sends
// the events they commit, keeping what the broker cannot take at once (package
// broker/relay); nil publishes through Broker directly.
type Deps struct {
	Logger   *slog.Logger
	Store    Store
	Broker   broker.Broker
	Relay    broker.Sender
	Notifier Notifier
}

// Module runs the timers.
type Module struct {
	cfg     Config
	sensors Sensors
	deps    Deps
	packs   *cache.Cache
	// dropCache is set when the cache is in the default directory, named after this process
	// only: no later process uses it, so Run removes it when it ends.
	dropCache bool
	leading   atomic.Bool
}

// LeaderKey names the leadership the timers are fired under.
const LeaderKey = "attune_timer_leader"

// New checks the configuration.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.Logger == nil || deps.Store == nil || deps.Broker == nil {
		return nil, errors.New("sensor: Logger, Store and Broker are required")
	}
	cfg.RefreshInterval = cmp.Or(cfg.RefreshInterval, 30*time.Second)
	cfg.Grace = cmp.Or(cfg.Grace, 10*time.Second)
	cfg.TickRetention = cmp.Or(cfg.TickRetention, 24*time.Hour)
	cfg.PruneInterval = cmp.Or(cfg.PruneInterval, time.Hour)
	if deps.Relay == nil {
		deps.Relay = broker.Direct(deps.Broker)
	}
	dropCache := cfg.Sensors.PackCache == ""
	cfg.Sensors.defaults()
	return &Module{cfg: cfg, sensors: cfg.Sensors, deps: deps, packs: cache.New(cfg.Sensors.PackCache, deps.Store), dropCache: dropCache}, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "sensor" }

// Leading reports whether this replica is firing the timers now.
func (m *Module) Leading() bool { return m.leading.Load() }

// Run fires the timers while this replica leads, and waits to lead otherwise, and runs the
// custom sensors whose leases it holds or takes, until ctx ends.
func (m *Module) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.deps.Store.Lead(ctx, LeaderKey, m.deps.Logger, m.lead) })
	g.Go(func() error { return m.supervise(ctx) })
	g.Go(func() error { m.packs.KeepClean(ctx, m.deps.Logger); return nil })
	err := g.Wait()
	if m.dropCache {
		// Every sensor has stopped: supervise waits for them.
		if rerr := os.RemoveAll(m.packs.Dir()); rerr != nil {
			m.deps.Logger.WarnContext(ctx, "remove the pack cache", "dir", m.packs.Dir(), "err", rerr)
		}
	}
	return err
}

// lead is the leader's work: keep one timer per timer rule, following rule changes, until ctx
// ends with the leadership. Its timers have stopped when it returns.
func (m *Module) lead(ctx context.Context) error {
	m.leading.Store(true)
	defer m.leading.Store(false)
	changed := make(chan struct{}, 1)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return m.deps.Store.Listen(ctx, store.ChannelRulesChanged, m.deps.Logger, func(listening bool) {
			// true comes with every notification and after every reconnection, when changes
			// may have been missed; either way the rules are read again.
			if listening {
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		})
	})
	g.Go(func() error { return m.schedule(ctx, changed) })
	return g.Wait()
}

// schedule rebuilds the timers from the enabled rules at the start, on each change and every
// RefreshInterval, and prunes old ticks every PruneInterval.
func (m *Module) schedule(ctx context.Context, changed <-chan struct{}) error {
	timers := make(map[string]*timer)
	defer func() {
		for _, t := range timers {
			t.halt()
		}
	}()
	refresh := time.NewTicker(m.cfg.RefreshInterval)
	defer refresh.Stop()
	// The first build of a leadership fires ticks the previous leader may have missed while
	// the leadership changed hands.
	catchUp := true
	var pruned time.Time
	for {
		rules, err := m.deps.Store.RuleListEnabled(ctx)
		switch {
		case err == nil:
			m.sync(ctx, timers, rules, catchUp)
			catchUp = false
		case ctx.Err() == nil:
			// The timers already running keep going; the next refresh tries again.
			m.deps.Logger.WarnContext(ctx, "load timer rules", "err", err)
		}
		if time.Since(pruned) >= m.cfg.PruneInterval {
			pruned = time.Now()
			m.prune(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-refresh.C:
		}
	}
}

func (m *Module) prune(ctx context.Context) {
	n, err := m.deps.Store.TimerTickPrune(ctx, time.Now().Add(-m.cfg.TickRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		m.deps.Logger.WarnContext(ctx, "prune timer ticks", "err", err)
	case n > 0:
		m.deps.Logger.DebugContext(ctx, "pruned timer ticks", "ticks", n)
	}
}
