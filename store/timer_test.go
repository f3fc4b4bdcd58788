package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

func TestTimerTick(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	due := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	first, err := s.TimerTickInsert(ctx, "demo.rule", due)
	require.NoError(t, err)
	require.True(t, first)
	again, err := s.TimerTickInsert(ctx, "demo.rule", due.In(time.FixedZone("east", 3600)))
	require.NoError(t, err)
	require.False(t, again, "the same instant in another zone is the same tick")
	other, err := s.TimerTickInsert(ctx, "demo.other", due)
	require.NoError(t, err)
	require.True(t, other, "ticks are per rule")

	// A tick is recorded only with its transaction.
	boom := errors.New("boom")
	err = s.InTx(ctx, func(q *store.Queries) error {
		ok, err := q.TimerTickInsert(ctx, "demo.rule", due.Add(time.Second))
		require.NoError(t, err)
		require.True(t, ok)
		return boom
	})
	require.ErrorIs(t, err, boom)
	ok, err := s.TimerTickInsert(ctx, "demo.rule", due.Add(time.Second))
	require.NoError(t, err)
	require.True(t, ok, "the rolled back tick was not recorded")

	n, err := s.TimerTickPrune(ctx, due.Add(time.Second))
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "the ticks due before the cut")
	ok, err = s.TimerTickInsert(ctx, "demo.rule", due.Add(time.Second))
	require.NoError(t, err)
	require.False(t, ok, "the tick at the cut is kept")
}
