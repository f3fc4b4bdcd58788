package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
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

// fifoRepetitions and fifoPerRun size the FIFO test: each repetition makes fifoPerRun
// executions in each of its four queues.
const (
	fifoRepetitions = 20
	fifoPerRun      = 16
	fifoClients     = 8
	// The repetition in which an executor is killed halfway through, and the one in which it
	// comes back.
	fifoKillAt    = 10
	fifoRestartAt = 15
)

// fifoQueue is one queue of the FIFO test: an action of the faults pack under a policy the
// test makes through the API, and how its executions are requested.
type fifoQueue struct {
	action     string
	limit      int
	concurrent bool
}

var fifoQueues = []fifoQueue{
	{"faults.fifo1_sequential", 1, false},
	{"faults.fifo1_concurrent", 1, true},
	{"faults.fifo2_sequential", 2, false},
	{"faults.fifo2_concurrent", 2, true},
}

// FIFO is the order of acceptance with replicas of every role that takes part: three
// executor processes, two workers and two api processes on RabbitMQ, under policies of limit
// 1 and 2 (enqueue) made through the API. Executions are requested one after another (each
// answered before the next is sent, the two apis in turn) and from eight clients at once.
// Within each queue admitted_at never decreases along ids, a request answered before
// another was sent got the smaller id, and every execution is admitted and completes: in
// each of 20 repetitions, during one of which an executor is killed with SIGKILL halfway
// through (it comes back five repetitions later). Every repetition uses the four queues
// afresh: it waits until the previous one has drained them.
func TestFIFOAcrossExecutors(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	ns := namespace(t)
	// The workers' heartbeat and timeout stay the defaults: no worker is killed here, and a
	// loaded machine must not have a live one taken for dead.
	c := newCluster(t, ns, nil, "--database-url="+dbURL, "--amqp-url="+brokertest.URL(t), "--amqp-namespace="+ns,
		"--packs-dir="+faultsPacksDir(t))
	ms := c.start("api", "api", "executor", "executor", "executor", "worker", "worker")
	apis, victim := ms[:2], ms[2]
	for _, q := range fifoQueues {
		c.mustCall(apis[0], http.StatusCreated, http.MethodPost, "/api/v1/policies", map[string]any{
			"ref": q.action + "_limit", "action_ref": q.action,
			"concurrency": map[string]any{"limit": q.limit, "method": "enqueue"},
		})
	}
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	var failed []string
	for rep := 1; rep <= fifoRepetitions; rep++ {
		if rep == fifoRestartAt {
			require.NoError(t, victim.restart())
		}
		var kill func()
		if rep == fifoKillAt {
			kill = func() {
				if _, err := victim.signal(syscall.SIGKILL, 30*time.Second); err != nil {
					t.Errorf("%v", err)
				}
			}
		}
		runs := make([][]int64, len(fifoQueues))
		errs := make([]error, len(fifoQueues))
		var wg sync.WaitGroup
		for i, q := range fifoQueues {
			// The first sequential queue kills the executor halfway through its requests.
			halfway := kill
			if i != 0 {
				halfway = nil
			}
			wg.Go(func() { runs[i], errs[i] = requestFIFO(c, apis, q, halfway) })
		}
		wg.Wait()
		for i, q := range fifoQueues {
			run := fmt.Sprintf("repetition %d, %s (limit %d)", rep, q.action, q.limit)
			if errs[i] != nil {
				t.Errorf("%s: %v", run, errs[i])
				failed = append(failed, run)
				continue
			}
			if problems := checkFIFO(t, pool, runs[i]); len(problems) > 0 {
				t.Errorf("%s:\n  %s", run, strings.Join(problems, "\n  "))
				failed = append(failed, run)
			}
		}
	}
	if len(failed) > 0 {
		t.Logf("%d of %d runs broke FIFO:\n  %s", len(failed), fifoRepetitions*len(fifoQueues), strings.Join(failed, "\n  "))
	}
}

// requestFIFO makes fifoPerRun executions of q's action, one after another through the apis
// in turn or from fifoClients clients at once, and returns their ids in the order they were
// answered. halfway, when set, runs once half of them are made. It never fails the test, so
// that the queues run side by side.
func requestFIFO(c *cluster, apis []*member, q fifoQueue, halfway func()) ([]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	execute := func(n int) (int64, error) {
		body := map[string]any{"action_ref": q.action, "parameters": map[string]any{"seconds": float64(rand.IntN(40)) / 1000}}
		status, out, err := c.call(ctx, apis[n%len(apis)], http.MethodPost, "/api/v1/executions/execute", body)
		if err != nil || status != http.StatusCreated {
			return 0, fmt.Errorf("execute %s: %d %v (%v)", q.action, status, out, err)
		}
		data, _ := out["data"].(map[string]any)
		id, ok := data["id"].(float64)
		if !ok {
			return 0, fmt.Errorf("execute %s: no id in %v", q.action, out)
		}
		return int64(id), nil
	}
	var ids []int64
	if !q.concurrent {
		for n := range fifoPerRun {
			if n == fifoPerRun/2 && halfway != nil {
				halfway()
			}
			id, err := execute(n)
			if err != nil {
				return ids, err
			}
			if len(ids) > 0 && id < ids[len(ids)-1] {
				return ids, fmt.Errorf("execution %d was answered after %d, yet has the smaller id", id, ids[len(ids)-1])
			}
			ids = append(ids, id)
		}
		return ids, nil
	}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for client := range fifoClients {
		wg.Go(func() {
			<-gate
			for n := range fifoPerRun / fifoClients {
				id, err := execute(client + n)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					ids = append(ids, id)
				}
				mu.Unlock()
			}
		})
	}
	close(gate)
	wg.Wait()
	return ids, firstErr
}

// fifoRow is what the database says of one execution of a run.
type fifoRow struct {
	id         int64
	status     string
	reason     *string
	admittedAt *time.Time
}

// checkFIFO waits until the executions have ended, then says what broke FIFO: one not
// admitted or not completed, and each execution admitted after a younger one.
func checkFIFO(t *testing.T, pool *pgxpool.Pool, ids []int64) []string {
	t.Helper()
	var rows []fifoRow
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := pool.Query(ctx, `SELECT id, status, reason, admitted_at FROM attune.execution WHERE id = ANY($1) ORDER BY id`, ids)
		require.NoError(t, err)
		rows, err = pgx.CollectRows(r, func(row pgx.CollectableRow) (fifoRow, error) {
			var x fifoRow
			return x, row.Scan(&x.id, &x.status, &x.reason, &x.admittedAt)
		})
		cancel()
		require.NoError(t, err)
		if !slices.ContainsFunc(rows, func(x fifoRow) bool { return !terminalStatus(x.status) }) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the database, which announces nothing
	}
	var problems []string
	if len(rows) != len(ids) {
		problems = append(problems, fmt.Sprintf("%d executions requested, %d in the database", len(ids), len(rows)))
	}
	for _, x := range rows {
		switch {
		case !terminalStatus(x.status):
			problems = append(problems, fmt.Sprintf("execution %d still %s a minute after its run", x.id, x.status))
		case x.status != "completed":
			problems = append(problems, fmt.Sprintf("execution %d ended %s: %v", x.id, x.status, deref(x.reason)))
		}
		if x.admittedAt == nil {
			problems = append(problems, fmt.Sprintf("execution %d was never admitted", x.id))
			continue
		}
		var overtook []string
		for _, y := range rows {
			if y.id > x.id && y.admittedAt != nil && y.admittedAt.Before(*x.admittedAt) {
				overtook = append(overtook, fmt.Sprintf("%d (%s earlier)", y.id, x.admittedAt.Sub(*y.admittedAt).Round(time.Millisecond)))
			}
		}
		if len(overtook) > 0 {
			problems = append(problems, fmt.Sprintf("execution %d admitted after %d younger ones: %s",
				x.id, len(overtook), strings.Join(overtook[:min(len(overtook), 4)], ", ")))
		}
	}
	return problems
}

func terminalStatus(s string) bool {
	switch s {
	case "completed", "failed", "cancelled", "timeout", "abandoned":
		return true
	}
	return false
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// faultsPacksDir holds the faults pack alone: actions that mark their runs, for the FIFO test
// and the fault suite.
func faultsPacksDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../testdata/faults")
	require.NoError(t, err)
	return dir
}
