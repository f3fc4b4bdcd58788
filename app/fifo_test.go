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
// executions in each of its eight queues.
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
	// events has the executions come from events (POST /api/v1/events on the trigger
	// faults.fifo, a rule per queue), so that the executors create them and decide their
	// admission, several at once; otherwise they come from execute, and the api decides.
	events bool
}

var fifoQueues = []fifoQueue{
	{"faults.fifo1_sequential", 1, false, false},
	{"faults.fifo1_concurrent", 1, true, false},
	{"faults.fifo2_sequential", 2, false, false},
	{"faults.fifo2_concurrent", 2, true, false},
	{"faults.fifo1_events_sequential", 1, false, true},
	{"faults.fifo1_events_concurrent", 1, true, true},
	{"faults.fifo2_events_sequential", 2, false, true},
	{"faults.fifo2_events_concurrent", 2, true, true},
}

// fifoKillQueues are the queues whose requests the executor's kill falls halfway through:
// one the api decides, one the executors decide.
var fifoKillQueues = []int{0, 4}

// FIFO is the order of acceptance with replicas of every role that takes part: three
// executor processes, two workers, two sensors and two api processes on RabbitMQ, under
// policies of limit 1 and 2 (enqueue) made through the API. Half the queues get their
// executions from execute, whose admission the api decides; the other half from events a
// rule turns into executions, which the executors create and decide, three at once. Either
// kind of request is sent one after another (each answered before the next is sent, the two
// apis in turn) and from eight clients at once. Within each queue admitted_at never
// decreases along ids, an execute answered before another was sent got the smaller id, and
// every execution is admitted and completes: in each of 20 repetitions, during one of which
// an executor is killed with SIGKILL halfway through the requests (it comes back five
// repetitions later). An event's execution gets its id when an executor creates it, so the
// events' own order is not checked: the rule matchers and executors take them as they come.
// Every repetition uses the queues afresh: it waits until the previous one has drained them.
func TestFIFOAcrossExecutors(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	ns := namespace(t)
	// The workers' heartbeat and timeout stay the defaults: no worker is killed here, and a
	// loaded machine must not have a live one taken for dead.
	c := newCluster(t, ns, nil, "--database-url="+dbURL, "--amqp-url="+brokertest.URL(t), "--amqp-namespace="+ns,
		"--packs-dir="+faultsPacksDir(t))
	ms := c.start("api", "api", "executor", "executor", "executor", "worker", "worker", "sensor", "sensor")
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
		halfway := make([]func(), len(fifoQueues))
		if rep == fifoKillAt {
			parties := barrier(len(fifoKillQueues), func() {
				if _, err := victim.signal(syscall.SIGKILL, 30*time.Second); err != nil {
					t.Errorf("%v", err)
				}
			})
			for n, i := range fifoKillQueues {
				halfway[i] = parties[n]
			}
		}
		runs := make([][]int64, len(fifoQueues))
		errs := make([]error, len(fifoQueues))
		var wg sync.WaitGroup
		for i, q := range fifoQueues {
			wg.Go(func() { runs[i], errs[i] = requestFIFO(c, apis, q, halfway[i]) })
		}
		wg.Wait()
		for i, q := range fifoQueues {
			run := fmt.Sprintf("repetition %d, %s (limit %d)", rep, q.action, q.limit)
			if errs[i] != nil {
				t.Errorf("%s: %v", run, errs[i])
				failed = append(failed, run)
				continue
			}
			ids := runs[i]
			if q.events {
				var problems []string
				if ids, problems = fifoExecutionsOf(t, pool, q, runs[i]); len(problems) > 0 {
					t.Errorf("%s:\n  %s", run, strings.Join(problems, "\n  "))
					failed = append(failed, run)
					continue
				}
			}
			if problems := checkFIFO(t, pool, ids); len(problems) > 0 {
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
// answered: the executions' ids, or for a queue fed by events the events'. halfway, when
// set, runs once half of them are made, or as it returns should it stop before. It never
// fails the test, so that the queues run side by side.
func requestFIFO(c *cluster, apis []*member, q fifoQueue, halfway func()) ([]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if halfway != nil {
		defer halfway()
	}
	request := func(n int) (int64, error) {
		seconds := float64(rand.IntN(40)) / 1000
		path, body, want, key := "/api/v1/executions/execute",
			map[string]any{"action_ref": q.action, "parameters": map[string]any{"seconds": seconds}}, http.StatusCreated, "id"
		if q.events {
			path, body, want, key = "/api/v1/events", map[string]any{"trigger_ref": "faults.fifo",
				"payload": map[string]any{"queue": strings.TrimPrefix(q.action, "faults."), "seconds": seconds}}, http.StatusAccepted, "event_id"
		}
		status, out, err := c.call(ctx, apis[n%len(apis)], http.MethodPost, path, body)
		if err != nil || status != want {
			return 0, fmt.Errorf("%s for %s: %d %v (%v)", path, q.action, status, out, err)
		}
		data, _ := out["data"].(map[string]any)
		id, ok := data[key].(float64)
		if !ok {
			return 0, fmt.Errorf("%s for %s: no %s in %v", path, q.action, key, out)
		}
		return int64(id), nil
	}
	var ids []int64
	if !q.concurrent {
		for n := range fifoPerRun {
			if n == fifoPerRun/2 && halfway != nil {
				halfway()
			}
			id, err := request(n)
			if err != nil {
				return ids, err
			}
			if !q.events && len(ids) > 0 && id < ids[len(ids)-1] {
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
				id, err := request(client + n)
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

// barrier returns a function for each of n parties: f runs once all of them have called
// theirs, and each call returns once it has. A second call by one party does nothing.
func barrier(n int, f func()) []func() {
	var arrived sync.WaitGroup
	arrived.Add(n)
	run := sync.OnceFunc(f)
	parties := make([]func(), n)
	for i := range parties {
		parties[i] = sync.OnceFunc(func() {
			arrived.Done()
			arrived.Wait()
			run()
		})
	}
	return parties
}

// fifoExecutionsOf waits until each event of a queue fed by events has its execution, and
// returns their ids; or says which events have none, or more than one, or one of another
// action.
func fifoExecutionsOf(t *testing.T, pool *pgxpool.Pool, q fifoQueue, events []int64) ([]int64, []string) {
	t.Helper()
	type made struct {
		event, execution int64
		action           string
	}
	var rows []made
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := pool.Query(ctx, `SELECT en.event, x.id, x.action_ref FROM attune.enforcement en
			JOIN attune.execution x ON x.enforcement = en.id WHERE en.event = ANY($1) ORDER BY x.id`, events)
		require.NoError(t, err)
		rows, err = pgx.CollectRows(r, func(row pgx.CollectableRow) (made, error) {
			var m made
			return m, row.Scan(&m.event, &m.execution, &m.action)
		})
		cancel()
		require.NoError(t, err)
		if len(rows) >= len(events) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling the database, which announces nothing
	}
	var problems []string
	var ids []int64
	per := map[int64][]int64{}
	for _, m := range rows {
		per[m.event] = append(per[m.event], m.execution)
		ids = append(ids, m.execution)
		if m.action != q.action {
			problems = append(problems, fmt.Sprintf("event %d made execution %d of %s", m.event, m.execution, m.action))
		}
	}
	for _, ev := range events {
		if n := len(per[ev]); n != 1 {
			problems = append(problems, fmt.Sprintf("event %d has %d executions a minute after it was posted: %v", ev, n, per[ev]))
		}
	}
	return ids, problems
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
