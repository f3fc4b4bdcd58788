package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// silence moves a worker's last heartbeat back by ago.
func silence(t *testing.T, s *store.Store, name string, ago time.Duration) {
	t.Helper()
	_, err := s.Pool().Exec(context.Background(), `UPDATE attune.worker SET last_heartbeat = now() - make_interval(secs => $2) WHERE name = $1`,
		name, ago.Seconds())
	require.NoError(t, err)
}

// The records a starting worker cleans up: those of its host that are dead and run nothing,
// and those of any host silent past the retention; an execution keeps the name of the
// worker that ran it, claimed alone or in a batch, after that worker's record is gone.
func TestWorkerCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	ids := map[string]int64{}
	for _, w := range []struct{ name, host string }{
		{"me", "box"}, {"live", "box"}, {"silent", "box"}, {"stopped", "box"}, {"busy", "box"}, {"batch", "box"}, {"far", "elsewhere"},
	} {
		reg, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: w.name, Runners: []string{"shell"}, Concurrency: 1, Host: w.host, PID: 100 + len(ids)})
		require.NoError(t, err)
		ids[w.name] = reg.ID
	}
	require.NoError(t, s.WorkerSetInactive(ctx, "stopped"))
	for _, name := range []string{"me", "silent", "busy", "far"} {
		silence(t, s, name, 2*time.Hour)
	}

	// busy runs an execution; batch ran one to its end.
	running, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true, Status: store.ExecutionScheduled})
	require.NoError(t, err)
	claimed, ok, err := s.ExecutionClaim(ctx, running.ID, ids["busy"])
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "busy", *claimed.Worker)
	done, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true, Status: store.ExecutionScheduled})
	require.NoError(t, err)
	out, err := s.ExecutionClaimBatch(ctx, []store.ExecutionClaimParams{{ID: done.ID, Worker: ids["batch"]}})
	require.NoError(t, err)
	require.True(t, out[0].OK)
	require.Equal(t, "batch", *out[0].Execution.Worker)
	_, ok, err = s.ExecutionTransition(ctx, store.ExecutionTransition{ID: done.ID, From: []string{store.ExecutionRunning}, To: store.ExecutionCompleted})
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.WorkerSetInactive(ctx, "batch"))

	dead, err := s.WorkerListDeadOnHost(ctx, "box", "me", time.Minute)
	require.NoError(t, err)
	names := map[string]store.DeadWorker{}
	for _, d := range dead {
		names[d.Name] = d
	}
	require.Len(t, names, 3, "%v: not me, not the live one, not the busy one, not another host's", dead)
	require.Contains(t, names, "stopped")
	require.Contains(t, names, "batch")
	require.Equal(t, 102, names["silent"].PID)
	require.InDelta(t, (2 * time.Hour).Seconds(), names["silent"].SilentFor.Seconds(), 60)
	require.Less(t, names["stopped"].SilentFor, time.Minute, "stopped just now")

	gone, err := s.WorkerDeleteSilent(ctx, time.Hour)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"me", "silent", "far"}, gone, "silent an hour, any host, running nothing")
	require.NoError(t, s.WorkerDelete(ctx, "batch", time.Minute))

	kept, err := s.ExecutionGet(ctx, done.ID)
	require.NoError(t, err)
	require.Nil(t, kept.WorkerID)
	require.Equal(t, "batch", *kept.Worker, "history keeps the name of a deleted worker")
	kept, err = s.ExecutionGet(ctx, running.ID)
	require.NoError(t, err)
	require.Equal(t, "busy", *kept.Worker)
	_, err = s.WorkerGetByName(ctx, "busy")
	require.NoError(t, err, "a worker something runs on stays")
}
