package app_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/store/storetest"
)

// retriedAttempts is faults.retried's max_attempts (testdata/faults/faults/actions/retried.yaml),
// whose attempts are 3 s apart.
const (
	retriedAttempts = 3
	retriedAction   = "faults.retried"
	// retriedChains is how many failing executions race through the two executors at once.
	retriedChains = 16
	// retrySettle bounds how long a chain may take to run every attempt: two delays of 3 s,
	// the runs, and on a loaded machine much more.
	retrySettle = time.Minute
)

// Retries are kept by the database, not by an executor: with two executor processes and two
// workers on RabbitMQ, an action that fails under retry {max_attempts: 3, on: [failed],
// delay_seconds: 3} has every attempt created exactly once and run exactly once, attempt 1 to
// 3, each linked to the first; first with both executors running throughout, racing for the
// retries of many failing executions at once, then with both killed (SIGKILL) after the first
// attempt failed and while its retry is planned, and started again.
func TestRetryAcrossExecutors(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	ns := namespace(t)
	marks := filepath.Join(t.TempDir(), "marks")
	c := newCluster(t, ns, []string{envMarks + "=" + marks}, "--database-url="+dbURL, "--amqp-url="+brokertest.URL(t),
		"--amqp-namespace="+ns, "--packs-dir="+faultsPacksDir(t))
	c.incarnationEnv = envIncarnation
	ms := c.start("api", "executor", "executor", "worker", "worker")
	api, executors := ms[0], ms[1:3]
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	// Each failed attempt gets exactly one next attempt while both executors look for due
	// retries four times a second.
	t.Run("both executors running", func(t *testing.T) {
		firsts := make([]int64, retriedChains)
		var wg sync.WaitGroup
		for i := range firsts {
			wg.Go(func() { firsts[i] = executeFailing(t, c, api) })
		}
		wg.Wait()
		checkRetryChains(t, pool, marks, firsts)
	})

	// A retry planned while no executor runs is created once they are back, once.
	t.Run("both executors killed while a retry is planned", func(t *testing.T) {
		first := executeFailing(t, c, api)
		awaitRetryPlanned(t, pool, first)
		var wg sync.WaitGroup
		for _, m := range executors {
			wg.Go(func() {
				if _, err := m.signal(syscall.SIGKILL, 30*time.Second); err != nil {
					t.Errorf("%v", err)
				}
			})
		}
		wg.Wait()
		// No executor is left to create the attempt: it must still be only planned, or the
		// kill came after the 3 s delay and the test proves nothing.
		chain := readRetryChains(t, pool, []int64{first})
		require.Len(t, chain, 1, "the second attempt was created before both executors were dead: %+v", chain)
		require.NotNil(t, chain[0].retryAt, "the retry is no longer planned once both executors are dead: %+v", chain[0])
		t.Logf("both executors killed %s before the second attempt was due", time.Until(*chain[0].retryAt).Round(time.Millisecond))
		for _, m := range executors {
			wg.Go(func() {
				if err := m.restart(); err != nil {
					t.Errorf("%v", err)
				}
			})
		}
		wg.Wait()
		checkRetryChains(t, pool, marks, []int64{first})
	})
}

// executeFailing executes faults.retried with exit code 3 and returns the first attempt's id.
func executeFailing(t *testing.T, c *cluster, api *member) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, out, err := c.call(ctx, api, http.MethodPost, "/api/v1/executions/execute",
		map[string]any{"action_ref": retriedAction, "parameters": map[string]any{"exit": 3}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status, "%v", out)
	data, _ := out["data"].(map[string]any)
	id, ok := data["id"].(float64)
	require.True(t, ok, "no id in %v", out)
	return int64(id)
}

// awaitRetryPlanned waits until execution id has failed with its next attempt planned.
func awaitRetryPlanned(t *testing.T, pool *pgxpool.Pool, id int64) {
	t.Helper()
	deadline := time.Now().Add(retrySettle)
	for {
		chain := readRetryChains(t, pool, []int64{id})
		if len(chain) == 1 && chain[0].status == "failed" && chain[0].retryAt != nil {
			return
		}
		require.True(t, time.Now().Before(deadline), "execution %d did not fail with a retry planned: %+v", id, chain)
		require.LessOrEqual(t, len(chain), 1, "the second attempt was created before the first was seen failed: %+v", chain)
		time.Sleep(20 * time.Millisecond) // polling the database, which announces nothing
	}
}

// retryRow is what the database says of one attempt.
type retryRow struct {
	id, first int64
	attempt   int
	retryOf   *int64
	status    string
	started   bool
	worker    *string
	retryAt   *time.Time
}

// readRetryChains reads every attempt of the chains whose first attempts are firsts.
func readRetryChains(t *testing.T, pool *pgxpool.Pool, firsts []int64) []retryRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := pool.Query(ctx, `SELECT id, coalesce(retry_of, id), attempt, retry_of, status, started_at IS NOT NULL,
			worker_name, retry_at
		FROM attune.execution WHERE id = ANY($1) OR retry_of = ANY($1) ORDER BY id`, firsts)
	require.NoError(t, err)
	rows, err := pgx.CollectRows(r, func(row pgx.CollectableRow) (retryRow, error) {
		var x retryRow
		return x, row.Scan(&x.id, &x.first, &x.attempt, &x.retryOf, &x.status, &x.started, &x.worker, &x.retryAt)
	})
	require.NoError(t, err)
	return rows
}

// checkRetryChains waits until every chain has ended with nothing more planned, then holds
// each to its promise: attempts 1 to retriedAttempts, each exactly once, every later one
// linked to the first; each failed after it ran on a worker, which its action's marks confirm
// (one start, one end with exit code 3); only the last plans nothing.
func checkRetryChains(t *testing.T, pool *pgxpool.Pool, marks string, firsts []int64) {
	t.Helper()
	var rows []retryRow
	deadline := time.Now().Add(retrySettle)
	for {
		rows = readRetryChains(t, pool, firsts)
		if settledChains(rows, len(firsts)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the database, which announces nothing
	}
	ms, err := readMarks(marks)
	require.NoError(t, err)
	starts, ends := map[int64]int{}, map[int64][]int{}
	for _, m := range ms {
		if m.start {
			starts[m.execution]++
		} else {
			ends[m.execution] = append(ends[m.execution], m.exit)
		}
	}

	var problems []string
	// Counted by (first attempt, attempt): the next attempt of each failed one, exactly once.
	made := map[[2]int64][]int64{}
	for _, x := range rows {
		made[[2]int64{x.first, int64(x.attempt)}] = append(made[[2]int64{x.first, int64(x.attempt)}], x.id)
		switch {
		case x.id == x.first && (x.attempt != 1 || x.retryOf != nil):
			problems = append(problems, fmt.Sprintf("execution %d: the first attempt is attempt %d, retry_of %v", x.id, x.attempt, deref(x.retryOf)))
		case x.id != x.first && x.attempt < 2:
			problems = append(problems, fmt.Sprintf("execution %d: a retry of %d numbered attempt %d", x.id, x.first, x.attempt))
		}
		if x.status != "failed" || !x.started || x.worker == nil {
			problems = append(problems, fmt.Sprintf("execution %d (attempt %d of %d) ended %s, started %t, on worker %v; want failed after a run",
				x.id, x.attempt, x.first, x.status, x.started, deref(x.worker)))
		}
		if x.retryAt != nil {
			problems = append(problems, fmt.Sprintf("execution %d (attempt %d of %d) still plans a retry at %s", x.id, x.attempt, x.first, x.retryAt))
		}
		if starts[x.id] != 1 || !slices.Equal(ends[x.id], []int{3}) {
			problems = append(problems, fmt.Sprintf("execution %d (attempt %d of %d): its action started %d times, ended with %v; want once, with exit code 3",
				x.id, x.attempt, x.first, starts[x.id], ends[x.id]))
		}
	}
	for _, first := range firsts {
		for attempt := 1; attempt <= retriedAttempts; attempt++ {
			if ids := made[[2]int64{first, int64(attempt)}]; len(ids) != 1 {
				problems = append(problems, fmt.Sprintf("execution %d: attempt %d made %d times: %v", first, attempt, len(ids), ids))
			}
		}
	}
	for key, ids := range made {
		if key[1] > retriedAttempts {
			problems = append(problems, fmt.Sprintf("execution %d: attempt %d made, beyond max_attempts %d: %v", key[0], key[1], retriedAttempts, ids))
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		t.Errorf("%d chains of %s, %d attempts:\n  %s", len(firsts), retriedAction, len(rows), strings.Join(problems, "\n  "))
	}
}

// settledChains says whether n chains have ended: every attempt ended, and none plans
// another. Planning is part of the statement that ends an attempt and creating the planned one
// clears its plan in the same transaction, so a chain in this state will never grow again,
// whether or not it made all its attempts.
func settledChains(rows []retryRow, n int) bool {
	firsts := map[int64]bool{}
	for _, x := range rows {
		if !terminalStatus(x.status) || x.retryAt != nil {
			return false
		}
		firsts[x.first] = true
	}
	return len(firsts) == n
}
