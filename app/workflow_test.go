package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store/storetest"
)

// workflowSettle bounds how long a workflow of the tests may take to end, kills included.
const workflowSettle = 3 * time.Minute

// workflowCluster runs api, sensor, two executors and two workers as separate processes on
// RabbitMQ, with the faults pack (whose workflows are faults.wf_*), workers declared dead
// five seconds after their last heartbeat.
func workflowCluster(t *testing.T) (*cluster, *pgxpool.Pool, string) {
	t.Helper()
	dbURL := storetest.NewDatabase(t)
	ns := namespace(t)
	marks := filepath.Join(t.TempDir(), "marks")
	c := newCluster(t, ns, []string{envMarks + "=" + marks}, "--database-url="+dbURL, "--amqp-url="+brokertest.URL(t),
		"--amqp-namespace="+ns, "--packs-dir="+faultsPacksDir(t), "--worker-heartbeat=1s", "--worker-timeout=5s")
	c.incarnationEnv = envIncarnation
	c.start("api", "sensor", "executor", "executor", "worker", "worker")
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return c, pool, marks
}

// executeWorkflow starts action with params through the API and returns the execution's id.
func executeWorkflow(t *testing.T, c *cluster, action string, params map[string]any) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, out, err := c.call(ctx, c.running("api")[0], http.MethodPost, "/api/v1/executions/execute",
		map[string]any{"action_ref": action, "parameters": params})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status, "%v", out)
	data, _ := out["data"].(map[string]any)
	id, ok := data["id"].(float64)
	require.True(t, ok, "no id in %v", out)
	return int64(id)
}

// awaitExecution waits until execution id has ended and returns its status, result and
// reason.
func awaitExecution(t *testing.T, pool *pgxpool.Pool, id int64) (string, map[string]any, string) {
	t.Helper()
	var status, reason string
	var result map[string]any
	awaitRow(t, pool, workflowSettle, fmt.Sprintf("execution %d to end", id), func(ctx context.Context) (bool, error) {
		err := pool.QueryRow(ctx, `SELECT status, coalesce(result, 'null'), coalesce(reason, '') FROM attune.execution WHERE id = $1`, id).
			Scan(&status, &result, &reason)
		return err == nil && (status == "completed" || status == "failed" || status == "cancelled" || status == "timeout" || status == "abandoned"), err
	})
	return status, result, reason
}

// awaitRow polls the database (which announces nothing) until done holds, or fails the test
// at the deadline.
func awaitRow(t *testing.T, pool *pgxpool.Pool, within time.Duration, what string, done func(ctx context.Context) (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ok, err := done(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s (last error: %v)", within, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// child is a task execution of a workflow, as the tests read it.
type child struct {
	id       int64
	task     string
	item     *int
	status   string
	worker   *string
	started  *time.Time
	finished *time.Time
}

func readChildren(t *testing.T, pool *pgxpool.Pool, workflow int64) []child {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `SELECT id, task_name, task_item, status, worker_name, started_at, finished_at
		FROM attune.execution WHERE parent = $1 AND task_name IS NOT NULL ORDER BY id`, workflow)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (child, error) {
		var c child
		return c, row.Scan(&c.id, &c.task, &c.item, &c.status, &c.worker, &c.started, &c.finished)
	})
	require.NoError(t, err)
	return out
}

// End to end on separate processes: a fan-out of 200 items at concurrency 10 ends with the
// results in item order, never more than 10 items running at once; a chain of eight steps
// survives the SIGKILL of an executor and of the worker running a step, every step run
// exactly once but the killed one, which its retry runs again.
func TestWorkflowAcrossProcesses(t *testing.T) {
	t.Parallel()
	c, pool, marks := workflowCluster(t)

	t.Run("200 items at concurrency 10", func(t *testing.T) {
		items := make([]any, 200)
		want := make([]any, len(items))
		for i := range items {
			items[i] = fmt.Sprintf("host-%03d", len(items)-i)
			want[i] = fmt.Sprintf("%d:%s", i, items[i])
		}
		id := executeWorkflow(t, c, "faults.wf_items", map[string]any{"items": items})
		status, result, reason := awaitExecution(t, pool, id)
		require.Equal(t, "completed", status, "reason: %s", reason)
		require.Equal(t, want, result["lines"])

		children := readChildren(t, pool, id)
		require.Len(t, children, len(items), "one child per item, none twice")
		seen := map[int]bool{}
		for _, ch := range children {
			require.Equal(t, "completed", ch.status)
			require.NotNil(t, ch.item)
			require.False(t, seen[*ch.item], "item %d ran twice", *ch.item)
			seen[*ch.item] = true
		}
		require.LessOrEqual(t, maxOverlap(children), 10, "more than 10 items ran at once")
	})

	t.Run("an executor and a worker killed mid-workflow", func(t *testing.T) {
		// Steps of 2 s: the kill must land while step 4 runs, however slow the machine.
		id := executeWorkflow(t, c, "faults.wf_chain", map[string]any{"seconds": 2})
		running := func(task string) child {
			var found child
			awaitRow(t, pool, workflowSettle, task+" running", func(context.Context) (bool, error) {
				for _, ch := range readChildren(t, pool, id) {
					if ch.task == task && ch.status == "running" && ch.worker != nil {
						found = ch
						return true, nil
					}
				}
				return false, nil
			})
			return found
		}
		running("step2")
		executor := c.running("executor")[0]
		_, err := executor.signal(syscall.SIGKILL, 30*time.Second)
		require.NoError(t, err)
		require.NoError(t, executor.restart())

		victim := running("step4")
		var worker *member
		for _, m := range c.running("worker") {
			if m.worker == *victim.worker {
				worker = m
			}
		}
		require.NotNil(t, worker, "no worker called %s", *victim.worker)
		_, err = worker.signal(syscall.SIGKILL, 30*time.Second)
		require.NoError(t, err)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := worker.restart(); err != nil {
				t.Errorf("%v", err)
			}
		})

		status, result, reason := awaitExecution(t, pool, id)
		wg.Wait()
		require.Equal(t, "completed", status, "reason: %s", reason)
		require.EqualValues(t, 8, result["done"])

		children := readChildren(t, pool, id)
		byTask := map[string][]child{}
		for _, ch := range children {
			byTask[ch.task] = append(byTask[ch.task], ch)
		}
		for i := 1; i <= 8; i++ {
			task := fmt.Sprintf("step%d", i)
			runs := byTask[task]
			if task == victim.task {
				require.Len(t, runs, 2, "%s: the killed attempt and its retry: %+v", task, runs)
				require.Equal(t, "abandoned", runs[0].status)
				require.Equal(t, victim.id, runs[0].id)
				require.Equal(t, "completed", runs[1].status)
				continue
			}
			require.Len(t, runs, 1, "%s ran more than once: %+v", task, runs)
			require.Equal(t, "completed", runs[0].status)
		}
		// The killed attempt may have died before its script's first line: at most once.
		starts := markStarts(t, marks)
		for _, ch := range children {
			if ch.id == victim.id {
				require.LessOrEqual(t, starts[ch.id], 1, "execution %d (%s) started %d times", ch.id, ch.task, starts[ch.id])
				continue
			}
			require.Equal(t, 1, starts[ch.id], "execution %d (%s) started %d times", ch.id, ch.task, starts[ch.id])
		}
	})
}

// The examples pack's workflows give their promised outputs on separate processes; a
// workflow paused mid-run starts nothing new until resumed, and then completes; one
// cancelled mid-run ends cancelled with its running task stopped and nothing after it run.
func TestWorkflowExamplesAndControl(t *testing.T) {
	t.Parallel()
	c, pool, _ := workflowCluster(t)
	api := c.running("api")[0]
	examples, err := filepath.Abs("../testdata/packs/examples")
	require.NoError(t, err)
	c.mustCall(api, http.StatusOK, http.MethodPost, "/api/v1/packs/register", map[string]any{"path": examples})

	counter := filepath.Join(t.TempDir(), "counter")
	for _, tc := range []struct {
		action string
		params map[string]any
		want   map[string]any
	}{
		{"examples.sequence", map[string]any{"name": "ada"}, map[string]any{"greeting": "hello ada", "shouted": "HELLO ADA"}},
		{"examples.branch", map[string]any{"code": 3}, map[string]any{"outcome": "handled exit code 3"}},
		{"examples.branch", map[string]any{"code": 0}, map[string]any{"outcome": "it worked"}},
		{"examples.fanout", map[string]any{"hosts": []any{"alpha", "beta", "gamma", "delta", "epsilon"}},
			map[string]any{"replies": []any{"0:alpha", "1:beta", "2:gamma", "3:delta", "4:epsilon"}, "summary": "5 hosts answered"}},
		{"examples.retry", map[string]any{"counter": counter, "failures": 2}, map[string]any{"answer": "attempt 3"}},
		{"examples.nested", map[string]any{"name": "bob"}, map[string]any{"said": "the inner workflow said HELLO BOB"}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			id := executeWorkflow(t, c, tc.action, tc.params)
			status, result, reason := awaitExecution(t, pool, id)
			require.Equal(t, "completed", status, "reason: %s", reason)
			require.Equal(t, tc.want, result)
		})
	}

	// awaitChild waits until the workflow's task runs on a worker.
	awaitChild := func(t *testing.T, id int64, task string) child {
		var found child
		awaitRow(t, pool, workflowSettle, task+" running", func(context.Context) (bool, error) {
			for _, ch := range readChildren(t, pool, id) {
				if ch.task == task && ch.status == "running" {
					found = ch
					return true, nil
				}
			}
			return false, nil
		})
		return found
	}
	statusOf := func(id int64) string {
		var status string
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT status FROM attune.execution WHERE id = $1`, id).Scan(&status))
		return status
	}

	t.Run("pause and resume", func(t *testing.T) {
		id := executeWorkflow(t, c, "faults.wf_chain", map[string]any{"seconds": 1})
		awaitChild(t, id, "step2")
		c.mustCall(api, http.StatusAccepted, http.MethodPost, fmt.Sprintf("/api/v1/executions/%d/pause", id), nil)
		awaitRow(t, pool, workflowSettle, "the workflow paused", func(context.Context) (bool, error) {
			return statusOf(id) == "paused", nil
		})
		children := readChildren(t, pool, id)
		require.Len(t, children, 2, "a task started while pausing: %+v", children)
		for _, ch := range children {
			require.Equal(t, "completed", ch.status)
		}
		c.mustCall(api, http.StatusAccepted, http.MethodPost, fmt.Sprintf("/api/v1/executions/%d/resume", id), nil)
		status, result, reason := awaitExecution(t, pool, id)
		require.Equal(t, "completed", status, "reason: %s", reason)
		require.EqualValues(t, 8, result["done"])
		require.Len(t, readChildren(t, pool, id), 8)
	})

	// A pause while a task fails and retries keeps its retries: the workflow is paused, not
	// failed, and completes once resumed.
	t.Run("pause during retries", func(t *testing.T) {
		counter := filepath.Join(t.TempDir(), "counter")
		id := executeWorkflow(t, c, "examples.retry", map[string]any{"counter": counter, "failures": 3})
		// Each attempt fails within milliseconds, too fast to catch running: the pause goes
		// as soon as the first exists, while the retries' waits (0.2 s, 0.4 s, 0.8 s) are
		// ahead. Should the machine be slow enough for the workflow to end first, the pause
		// is refused and the test proves less, but still that the workflow completes.
		awaitRow(t, pool, workflowSettle, "the first attempt of call", func(context.Context) (bool, error) {
			return len(readChildren(t, pool, id)) > 0, nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code, out, err := c.call(ctx, api, http.MethodPost, fmt.Sprintf("/api/v1/executions/%d/pause", id), nil)
		require.NoError(t, err)
		require.Contains(t, []int{http.StatusAccepted, http.StatusConflict}, code, "%v", out)
		awaitRow(t, pool, workflowSettle, "the workflow paused", func(context.Context) (bool, error) {
			s := statusOf(id)
			return s == "paused" || s == "completed", nil
		})
		if statusOf(id) == "paused" {
			c.mustCall(api, http.StatusAccepted, http.MethodPost, fmt.Sprintf("/api/v1/executions/%d/resume", id), nil)
		}
		status, result, reason := awaitExecution(t, pool, id)
		require.Equal(t, "completed", status, "reason: %s", reason)
		require.Equal(t, map[string]any{"answer": "attempt 4"}, result)
	})

	// A task's input made from a secret input is secret on the task's execution too, and the
	// workflow's output repeating it is masked: neither reaches an answer in clear.
	t.Run("secret inputs stay secret on the tasks", func(t *testing.T) {
		const token = "hunter2-never-shown"
		id := executeWorkflow(t, c, "faults.wf_secret", map[string]any{"token": token})
		status, _, reason := awaitExecution(t, pool, id)
		require.Equal(t, "completed", status, "reason: %s", reason)
		shown := c.mustCall(api, http.StatusOK, http.MethodGet, fmt.Sprintf("/api/v1/executions/%d", id), nil)
		children := c.mustCall(api, http.StatusOK, http.MethodGet, fmt.Sprintf("/api/v1/executions?parent=%d", id), nil)
		for what, body := range map[string]any{"the workflow": shown, "its tasks": children} {
			raw, err := json.Marshal(body)
			require.NoError(t, err)
			require.NotContains(t, string(raw), token, "%s shows the secret: %s", what, raw)
		}
		data := children["data"].([]any)
		require.Len(t, data, 1)
		require.Equal(t, pack.Mask, data[0].(map[string]any)["parameters"].(map[string]any)["message"])
	})

	t.Run("rerun from the failed task", func(t *testing.T) {
		id := executeWorkflow(t, c, "faults.wf_fail_at", map[string]any{"exit": 3})
		status, _, reason := awaitExecution(t, pool, id)
		require.Equal(t, "failed", status)
		require.Contains(t, reason, "second")
		token, err := c.apiToken(context.Background())
		require.NoError(t, err)
		stdout, stderr, code := runAttuneEnv(t, []string{"ATTUNE_TOKEN=" + token}, "execution", "rerun", strconv.FormatInt(id, 10),
			"--from-task", "second", "--param", "exit=0", "-o", "json", "--api-url", "http://"+api.addr)
		require.Equal(t, 0, code, "stderr: %s", stderr)
		var data map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &data), stdout)
		rerun := int64(data["id"].(float64))
		status, result, reason := awaitExecution(t, pool, rerun)
		require.Equal(t, "completed", status, "reason: %s", reason)
		require.Equal(t, map[string]any{"first": float64(0), "third": float64(0)}, result, "the first task's publish is kept")
		var tasks []string
		for _, ch := range readChildren(t, pool, rerun) {
			tasks = append(tasks, ch.task)
		}
		require.Equal(t, []string{"second", "third"}, tasks, "what succeeded is not run again")

		c.mustCall(api, http.StatusBadRequest, http.MethodPost, fmt.Sprintf("/api/v1/executions/%d/rerun", id),
			map[string]any{"from_task": "first"})
		c.mustCall(api, http.StatusConflict, http.MethodPost, fmt.Sprintf("/api/v1/executions/%d/rerun", rerun),
			map[string]any{"from_task": "second"})
	})

	t.Run("cancel", func(t *testing.T) {
		// Every step sleeps 30 s: the first is stopped long before it would end.
		id := executeWorkflow(t, c, "faults.wf_chain", map[string]any{"seconds": 30})
		running := awaitChild(t, id, "step1")
		began := time.Now()
		c.mustCall(api, http.StatusAccepted, http.MethodPost, fmt.Sprintf("/api/v1/executions/%d/cancel", id), nil)
		status, _, reason := awaitExecution(t, pool, id)
		require.Equal(t, "cancelled", status, "reason: %s", reason)
		children := readChildren(t, pool, id)
		require.Len(t, children, 1, "a task started after the cancel: %+v", children)
		require.Equal(t, running.id, children[0].id)
		require.Equal(t, "cancelled", children[0].status, "the running task was stopped, not waited for")
		t.Logf("cancelled %s after the request", time.Since(began).Round(time.Millisecond))
	})
}

// maxOverlap is the most children running at one moment.
func maxOverlap(children []child) int {
	most := 0
	for _, a := range children {
		n := 0
		for _, b := range children {
			if b.started != nil && b.finished != nil && a.started != nil &&
				!b.started.After(*a.started) && b.finished.After(*a.started) {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// markStarts counts the start marks of each execution in the marks file.
func markStarts(t *testing.T, path string) map[int64]int {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[int64]int{}
	for _, line := range strings.Split(string(data), "\n") {
		var id int64
		if _, err := fmt.Sscanf(line, "start %d", &id); err == nil {
			out[id]++
		}
	}
	return out
}
