package app_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/modules/retention"
	"github.com/attune-go/attune/store/storetest"
)

// Two `attune serve --roles=executor` processes on one database: between them they delete
// exactly what is older than its setting, each row once, and leave running work, young rows
// and events the rules have not seen; when the one running retention is killed, the other
// takes over and deletes what has grown old since.
func TestRetentionAcrossTwoExecutorProcesses(t *testing.T) {
	t.Parallel()
	const n = 40
	dbURL := storetest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	count := func(sql string) int {
		var c int
		require.NoError(t, pool.QueryRow(context.Background(), sql).Scan(&c))
		return c
	}
	// n events three days old, each with a processed enforcement and a completed execution.
	seedOld := func() { storetest.OldChains(t, pool, n, 72*time.Hour) }
	seedOld()
	// What stays: executions a month old still running, executions that ended an hour ago,
	// and old events the rules have not evaluated yet.
	_, err = pool.Exec(context.Background(), `
		INSERT INTO attune.execution (action_ref, status, created, updated, finished_at)
		SELECT 'demo.act', 'running', now() - interval '30 days', now() - interval '30 days', NULL FROM generate_series(1, $1)
		UNION ALL SELECT 'demo.act', 'completed', now() - interval '2 hours', now() - interval '1 hour', now() - interval '1 hour' FROM generate_series(1, $1)`, n)
	require.NoError(t, err)
	_, err = pool.Exec(context.Background(), `INSERT INTO attune.event (trigger_ref, created)
		SELECT 'core.webhook', now() - interval '3 days' FROM generate_series(1, $1)`, n)
	require.NoError(t, err)
	const left = `SELECT (SELECT count(*) FROM attune.execution) + (SELECT count(*) FROM attune.enforcement) + (SELECT count(*) FROM attune.event)`
	kept := 3 * n

	common := []string{"--roles=executor", "--database-url=" + dbURL, "--amqp-url=" + brokertest.URL(t),
		"--amqp-namespace=" + namespace(t), "--packs-dir=" + packsDir(t),
		"--retain-executions=1d", "--retain-enforcements=1d", "--retain-events=1d"}
	executors := []*process{startServe(t, common...), startServe(t, common...)}
	require.Eventually(t, func() bool { return count(left) == kept }, 60*time.Second, 50*time.Millisecond)

	leads := func(p *process) bool {
		return len(p.recordsWhere(func(rec map[string]any) bool {
			return rec["msg"] == "took the leadership" && rec["key"] == retention.LeaderKey
		})) > 0
	}
	var leader, follower *process
	require.Eventually(t, func() bool {
		for i, p := range executors {
			if leads(p) {
				leader, follower = p, executors[1-i]
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond)
	require.False(t, leads(follower), "one executor runs retention at a time")

	require.NoError(t, leader.cmd.Process.Signal(syscall.SIGKILL))
	<-leader.exited
	seedOld()
	require.Eventually(t, func() bool { return count(left) == kept }, 60*time.Second, 50*time.Millisecond,
		"the other executor takes retention over")
	require.True(t, leads(follower))

	// Each row went once: the counts both processes logged add up to what was seeded.
	deleted := func() map[string]float64 {
		sum := map[string]float64{}
		for _, p := range executors {
			for _, rec := range p.recordsWhere(func(rec map[string]any) bool { return rec["msg"] == "retention deleted old rows" }) {
				sum[rec["kind"].(string)] += rec["deleted"].(float64)
			}
		}
		return sum
	}
	want := map[string]float64{"executions": 2 * n, "enforcements": 2 * n, "events": 2 * n}
	require.Eventually(t, func() bool { return len(deleted()) == len(want) && deleted()["events"] == want["events"] }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, want, deleted())
	require.Equal(t, n, count(`SELECT count(*) FROM attune.execution WHERE created < now() - interval '29 days'`), "running work stays")
	require.Equal(t, n, count(`SELECT count(*) FROM attune.execution WHERE created > now() - interval '1 day'`), "young executions stay")
	require.Equal(t, n, count(`SELECT count(*) FROM attune.event WHERE rules_evaluated_at IS NULL`), "events not yet evaluated stay")
}
