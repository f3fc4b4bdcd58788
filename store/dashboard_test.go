package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// The dashboard counts executions by the window their creation falls in, whatever action
// they ran (a deleted one's too), lists the day's failures newest first, the queues with
// their lengths, and the workers and sensors alive.
func TestDashboard(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	sensorPack(t, f.s, true)
	ctx, s := f.ctx, f.s

	empty, err := s.DashboardGet(ctx, 30*time.Second)
	require.NoError(t, err)
	require.Empty(t, empty.LastHour)
	require.Empty(t, empty.LastDay)
	require.Empty(t, empty.Failures)
	require.Empty(t, empty.Queues)
	require.Equal(t, store.DashboardSensors{Total: 1, Enabled: 1}, empty.Sensors)

	// created moves an execution's creation, and its end if it has ended, back by ago.
	created := func(id int64, ago time.Duration) {
		t.Helper()
		_, err := s.Pool().Exec(ctx, `UPDATE attune.execution SET created = now() - make_interval(secs => $2),
			finished_at = CASE WHEN finished_at IS NOT NULL THEN now() - make_interval(secs => $2 - 1) END WHERE id = $1`, id, ago.Seconds())
		require.NoError(t, err)
	}
	ended := func(ref, status string, ago time.Duration) int64 {
		t.Helper()
		e, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: ref, Admitted: true})
		require.NoError(t, err)
		_, ok, err := s.ExecutionTransition(ctx, store.ExecutionTransition{ID: e.ID, From: []string{store.ExecutionRequested}, To: status})
		require.NoError(t, err)
		require.True(t, ok)
		created(e.ID, ago)
		return e.ID
	}
	ended("demo.run", store.ExecutionCompleted, time.Minute)
	ended("watch.noop", store.ExecutionCompleted, 2*time.Minute)
	failedNow := ended("demo.run", store.ExecutionFailed, 3*time.Minute)
	timedOut := ended("gone.action", store.ExecutionTimeout, 5*time.Hour) // its action is gone
	ended("demo.run", store.ExecutionFailed, 30*time.Hour)                // older than a day
	ended("demo.run", store.ExecutionCancelled, 2*time.Hour)
	running, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "watch.noop", Admitted: true, Status: store.ExecutionRunning})
	require.NoError(t, err)
	created(running.ID, 40*time.Hour) // running now, though created long ago

	// Two admitted under a limit of one: one waits.
	f.policy(store.Policy{Ref: "demo.limit", ConcurrencyLimit: ptr(1)})
	_, outcome := f.admit(`{}`)
	require.Equal(t, store.CreateAdmitted, outcome)
	_, outcome = f.admit(`{}`)
	require.Equal(t, store.CreateQueued, outcome)

	for _, w := range []string{"alive", "silent", "stopped"} {
		_, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: w, Runners: []string{"shell"}, Concurrency: 1, Host: "box"})
		require.NoError(t, err)
	}
	silence(t, s, "silent", time.Minute)
	require.NoError(t, s.WorkerSetInactive(ctx, "stopped"))

	_, ok, err := s.SensorLeaseTake(ctx, "watch.poll", "replica", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.SensorStateSet(ctx, "watch.poll", "replica", store.SensorState{Status: "running"}))

	d, err := s.DashboardGet(ctx, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"completed": 2, "failed": 1, "scheduled": 1, "requested": 1}, d.LastHour)
	require.Equal(t, map[string]int{"completed": 2, "failed": 1, "timeout": 1, "cancelled": 1, "scheduled": 1, "requested": 1}, d.LastDay)
	require.Equal(t, 1, d.Running)
	require.Len(t, d.Failures, 2)
	require.Equal(t, []int64{failedNow, timedOut}, []int64{d.Failures[0].ID, d.Failures[1].ID})
	require.Equal(t, "gone.action", d.Failures[1].ActionRef)
	require.Equal(t, store.ExecutionTimeout, d.Failures[1].Status)
	require.NotNil(t, d.Failures[0].FinishedAt)
	require.Len(t, d.Queues, 1)
	require.Equal(t, "demo.run", d.Queues[0].ActionRef)
	require.Equal(t, 1, d.Queues[0].Queued)
	require.NotNil(t, d.Queues[0].OldestQueuedAt)
	require.Equal(t, store.DashboardWorkers{Active: 1, Inactive: 2}, d.Workers)
	require.Equal(t, store.DashboardSensors{Total: 1, Enabled: 1, Running: 1}, d.Sensors)

	require.NoError(t, s.SensorSetEnabled(ctx, "watch.poll", false))
	d, err = s.DashboardGet(ctx, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, store.DashboardSensors{Total: 1}, d.Sensors, "a disabled sensor does not run, whatever its lease says")
}
