// Package retention deletes executions, enforcements, events and audit entries older than
// their settings, on one replica at a time, in small batches of short transactions.
package retention

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/attune-go/attune/store"
)

// Store is what retention reads and deletes through.
type Store interface {
	Lead(ctx context.Context, key string, logger *slog.Logger, fn func(ctx context.Context) error) error
	RetentionDelete(ctx context.Context, kind string, keep time.Duration, after store.RetentionCursor, limit int) (store.RetentionBatch, error)
}

// Counter hears how many rows of each kind were deleted (the process's metrics). It may be
// nil, and must not block.
type Counter interface {
	Deleted(kind string, n int)
}

// Config says how long each kind of row is kept.
type Config struct {
	// Keep is how long rows of each kind (store.RetentionKinds) are kept; a kind missing or
	// 0 is kept for ever.
	Keep map[string]time.Duration
	// Interval is the time between two passes. Default 1m.
	Interval time.Duration
	// BatchSize bounds the rows (for executions: the trees) one transaction deletes.
	// Default 500.
	BatchSize int
}

// Deps are retention's collaborators.
type Deps struct {
	Logger  *slog.Logger
	Store   Store
	Counter Counter
}

// Module deletes what is past its retention.
type Module struct {
	cfg  Config
	deps Deps
}

// LeaderKey names the leadership passes run under: one replica at a time.
const LeaderKey = "attune_retention_leader"

// New checks the configuration.
func New(cfg Config, deps Deps) (*Module, error) {
	if deps.Logger == nil || deps.Store == nil {
		return nil, errors.New("retention: Logger and Store are required")
	}
	for kind, keep := range cfg.Keep {
		if keep < 0 {
			return nil, fmt.Errorf("retention: keep %s %s: must not be negative", kind, keep)
		}
	}
	cfg.Interval = cmp.Or(cfg.Interval, time.Minute)
	cfg.BatchSize = cmp.Or(cfg.BatchSize, 500)
	return &Module{cfg: cfg, deps: deps}, nil
}

// Name implements the role module contract.
func (m *Module) Name() string { return "retention" }

// Run makes a pass at once and then every Interval while this replica leads, until ctx
// ends. With every kind kept for ever it only waits.
func (m *Module) Run(ctx context.Context) error {
	if !m.deletesAny() {
		m.deps.Logger.InfoContext(ctx, "retention off: every kind is kept for ever")
		<-ctx.Done()
		return nil
	}
	return m.deps.Store.Lead(ctx, LeaderKey, m.deps.Logger, m.lead)
}

func (m *Module) deletesAny() bool {
	for _, keep := range m.cfg.Keep {
		if keep > 0 {
			return true
		}
	}
	return false
}

func (m *Module) lead(ctx context.Context) error {
	ticker := time.NewTicker(m.cfg.Interval)
	defer ticker.Stop()
	for {
		m.pass(ctx)
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return nil
		}
	}
}

// pass deletes, kind after kind, everything past its retention, batch after batch, and logs
// what it deleted. A failed batch ends the kind's pass (the next pass tries again) but not
// the others': a kind whose rows refer to another's only keeps more of that one.
func (m *Module) pass(ctx context.Context) {
	for _, kind := range store.RetentionKinds {
		keep := m.cfg.Keep[kind]
		if keep <= 0 {
			continue
		}
		started := time.Now()
		deleted, batches, err := m.passKind(ctx, kind, keep)
		if ctx.Err() != nil {
			return
		}
		log := m.deps.Logger.With("kind", kind, "deleted", deleted, "batches", batches, "older_than", keep.String(),
			"took_ms", time.Since(started).Milliseconds())
		switch {
		case err != nil:
			log.WarnContext(ctx, "retention pass stopped; the next one goes on", "err", err)
		case deleted > 0:
			log.InfoContext(ctx, "retention deleted old rows")
		default:
			log.DebugContext(ctx, "retention found nothing to delete")
		}
	}
}

func (m *Module) passKind(ctx context.Context, kind string, keep time.Duration) (deleted, batches int, err error) {
	var at store.RetentionCursor
	for ctx.Err() == nil {
		b, err := m.deps.Store.RetentionDelete(ctx, kind, keep, at, m.cfg.BatchSize)
		if err != nil {
			return deleted, batches, err
		}
		batches++
		deleted += b.Deleted
		if m.deps.Counter != nil && b.Deleted > 0 {
			m.deps.Counter.Deleted(kind, b.Deleted)
		}
		if b.Done {
			break
		}
		at = b.Next
	}
	return deleted, batches, nil
}
