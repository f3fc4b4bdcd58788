package retention_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/retention"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

var _ retention.Store = (*store.Store)(nil)

// counter adds up what every module it is given reports.
type counter struct {
	mu      sync.Mutex
	deleted map[string]int
	calls   int
}

func (c *counter) Deleted(kind string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleted[kind] += n
	c.calls++
}

func (c *counter) snapshot() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.deleted))
	for k, v := range c.deleted {
		out[k] = v
	}
	return out, c.calls
}

func count(t *testing.T, s *store.Store, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, s.Pool().QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// Two replicas run retention against one database: one leads at a time, every old finished
// execution and enforcement goes exactly once, in small batches, with counts that add up;
// running work and young rows stay, and events, kept for ever (0), all stay.
func TestTwoReplicasDeleteWhatIsPastRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	const n = 60
	// n old events, each with a processed enforcement and a completed execution; n young ones;
	// n old executions still running; n old ones that ended an hour ago.
	storetest.OldChains(t, s.Pool(), n, 72*time.Hour)
	_, err := s.Pool().Exec(ctx, `
		INSERT INTO attune.execution (action_ref, status, created, finished_at)
		SELECT 'demo.act', 'completed', now() - interval '1 hour', now() FROM generate_series(1, $1)
		UNION ALL SELECT 'demo.act', 'running', now() - interval '30 days', NULL FROM generate_series(1, $1)
		UNION ALL SELECT 'demo.act', 'failed', now() - interval '30 days', now() - interval '1 hour' FROM generate_series(1, $1)`, n)
	require.NoError(t, err)

	var c counter
	c.deleted = map[string]int{}
	keep := map[string]time.Duration{store.RetainExecutions: 24 * time.Hour, store.RetainEnforcements: 36 * time.Hour}
	for range 2 {
		m, err := retention.New(retention.Config{Keep: keep, Interval: 50 * time.Millisecond, BatchSize: 7},
			retention.Deps{Logger: slog.New(slog.DiscardHandler), Store: s, Counter: &c})
		require.NoError(t, err)
		mctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Run(mctx) }()
		t.Cleanup(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}

	require.Eventually(t, func() bool {
		got, _ := c.snapshot()
		return got[store.RetainExecutions] == n && got[store.RetainEnforcements] == n
	}, 30*time.Second, 20*time.Millisecond)
	// Further passes find nothing more to delete.
	_, calls := c.snapshot()
	require.Never(t, func() bool {
		got, more := c.snapshot()
		return more != calls || got[store.RetainExecutions] != n || got[store.RetainEnforcements] != n || len(got) != 2
	}, 500*time.Millisecond, 20*time.Millisecond)
	require.GreaterOrEqual(t, calls, 2*((n+6)/7), "batches of at most 7")

	require.Equal(t, 3*n, count(t, s, `SELECT count(*) FROM attune.execution`), "young, running and lately ended executions stay")
	require.Zero(t, count(t, s, `SELECT count(*) FROM attune.execution WHERE finished_at < now() - interval '2 days'`))
	require.Zero(t, count(t, s, `SELECT count(*) FROM attune.enforcement`))
	require.Equal(t, n, count(t, s, `SELECT count(*) FROM attune.event`), "events are kept for ever")
}

func TestKeepingEverythingForEverDeletesNothing(t *testing.T) {
	t.Parallel()
	_, err := retention.New(retention.Config{Keep: map[string]time.Duration{store.RetainEvents: -time.Hour}},
		retention.Deps{Logger: slog.New(slog.DiscardHandler), Store: &store.Store{}})
	require.ErrorContains(t, err, "keep events -1h0m0s: must not be negative")

	m, err := retention.New(retention.Config{Keep: map[string]time.Duration{store.RetainEvents: 0}},
		retention.Deps{Logger: slog.New(slog.DiscardHandler), Store: refuse{t}})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.NoError(t, m.Run(ctx), "it only waits: the store is never asked")
}

// refuse fails the test when asked anything.
type refuse struct{ t *testing.T }

func (r refuse) Lead(context.Context, string, *slog.Logger, func(context.Context) error) error {
	r.t.Error("Lead called")
	return nil
}

func (r refuse) RetentionDelete(context.Context, string, time.Duration, store.RetentionCursor, int) (store.RetentionBatch, error) {
	r.t.Error("RetentionDelete called")
	return store.RetentionBatch{}, nil
}
