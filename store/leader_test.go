package store_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// contest runs leaders for one key and watches that they never lead together.
type contest struct {
	leading, most atomic.Int32
}

// candidate is one process calling Lead.
type candidate struct {
	leading atomic.Bool
	runs    atomic.Int32
	cancel  context.CancelFunc
	done    chan struct{}
}

func (c *contest) start(t *testing.T, s *store.Store, key string) *candidate {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cand := &candidate{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(func() {
		cancel()
		<-cand.done
	})
	go func() {
		defer close(cand.done)
		err := s.Lead(ctx, key, slog.New(slog.DiscardHandler), func(ctx context.Context) error {
			cand.runs.Add(1)
			n := c.leading.Add(1)
			for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
			}
			cand.leading.Store(true)
			<-ctx.Done()
			cand.leading.Store(false)
			c.leading.Add(-1)
			return nil
		})
		if err != nil {
			t.Errorf("lead: %v", err)
		}
	}()
	return cand
}

// leader waits until exactly one of two candidates leads, and returns it and the other.
func leader(t *testing.T, cands ...*candidate) (*candidate, *candidate) {
	t.Helper()
	var lead, follow *candidate
	require.Eventually(t, func() bool {
		a, b := cands[0].leading.Load(), cands[1].leading.Load()
		lead, follow = cands[0], cands[1]
		if b {
			lead, follow = cands[1], cands[0]
		}
		return a != b
	}, 15*time.Second, 20*time.Millisecond, "one of them leads")
	return lead, follow
}

func TestLeadOneAtATime(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	var c contest
	first, second := leader(t, c.start(t, s, "test_leader"), c.start(t, s, "test_leader"))

	require.Never(t, func() bool { return second.runs.Load() > 0 || !first.leading.Load() },
		3*store.LeaderCheckInterval, 50*time.Millisecond, "the follower waits while the leader lives")

	// Another key is another leadership.
	var other contest
	third := other.start(t, s, "another_leader")
	require.Eventually(t, third.leading.Load, 15*time.Second, 20*time.Millisecond)

	// A leader that stops hands over.
	first.cancel()
	select {
	case <-first.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Lead did not return after its context ended")
	}
	require.False(t, first.leading.Load())
	require.Eventually(t, second.leading.Load, 15*time.Second, 20*time.Millisecond, "the follower takes over")
	require.EqualValues(t, 1, c.most.Load(), "never two leaders at once")
}

func TestLeadStopsWhenItsConnectionBreaks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	var c contest
	a, b := c.start(t, s, "test_leader"), c.start(t, s, "test_leader")
	lead, _ := leader(t, a, b)

	// Kill the session holding the lock, as a database restart or a network failure would.
	var pid int32
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid))
	var killed bool
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&killed))
	require.True(t, killed)

	require.Eventually(t, func() bool { return !lead.leading.Load() }, 5*time.Second, 10*time.Millisecond,
		"the leader stops once its session is gone")
	require.Eventually(t, func() bool { return a.runs.Load()+b.runs.Load() == 2 && (a.leading.Load() || b.leading.Load()) },
		15*time.Second, 20*time.Millisecond, "someone leads again")
	require.EqualValues(t, 1, c.most.Load(), "the old leader stopped before the new one started")
}
