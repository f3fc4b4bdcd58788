package app_test

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A concurrency policy holds across replicas: three executor processes and two workers on
// RabbitMQ run 60 executions of demo.step, which sleeps 100 to 300 ms under demo.step_limit
// (limit 2, enqueue), undisturbed and with one executor killed with SIGKILL halfway through.
// The times the action itself records show never more than two at once and starts in
// creation order, and all 60 complete.
func TestPolicyLimitAcrossExecutors(t *testing.T) {
	t.Parallel()
	t.Run("Steady", func(t *testing.T) {
		t.Parallel()
		policyLimitAcrossExecutors(t, false)
	})
	t.Run("ExecutorKilled", func(t *testing.T) {
		t.Parallel()
		policyLimitAcrossExecutors(t, true)
	})
}

func policyLimitAcrossExecutors(t *testing.T, kill bool) {
	start := splitRoles(t)
	api := start("api")
	executors := []*process{start("executor"), start("executor"), start("executor")}
	for range 2 {
		start("worker").waitLog(t, "worker registered", 10*time.Second)
	}

	logPath := filepath.Join(t.TempDir(), "steps.log")
	const total = 60
	ids := make([]int64, total)
	for seq := range total {
		if kill && seq == total/2 {
			require.NoError(t, executors[0].cmd.Process.Signal(syscall.SIGKILL))
			<-executors[0].exited
		}
		seconds := math.Round(100+200*rand.Float64()) / 1000
		code, body := api.post(t, "/api/v1/executions/execute", map[string]any{
			"action_ref": "demo.step", "parameters": map[string]any{"seq": seq, "log": logPath, "seconds": seconds},
		})
		require.Equal(t, http.StatusCreated, code, body)
		ids[seq] = id(t, data(t, body), "id")
		// Creation order is the order admission sees: wait until this one has taken a slot
		// or a place in the queue before making the next.
		api.waitDecided(t, ids[seq])
	}
	completed := func() int {
		_, page := api.get(t, "/api/v1/executions?action_ref=demo.step&status=completed&per_page=1")
		return int(page["pagination"].(map[string]any)["total_items"].(float64))
	}
	if !assert.Eventually(t, func() bool { return completed() == total }, 90*time.Second, 50*time.Millisecond) {
		_, all := api.get(t, "/api/v1/executions?action_ref=demo.step&per_page=100")
		for _, e := range all["data"].([]any) {
			if x := e.(map[string]any); x["status"] != "completed" {
				t.Logf("execution %v: %v worker=%v reason=%v", x["id"], x["status"], x["worker"], x["reason"])
			}
		}
		t.FailNow()
	}

	steps := readSteps(t, logPath)
	require.Len(t, steps, 2*total)
	running, most := 0, 0
	var started []int
	var startedAt []float64
	for _, s := range steps {
		if s.start {
			running++
			started = append(started, s.seq)
			startedAt = append(startedAt, s.at)
		} else {
			running--
		}
		most = max(most, running)
	}
	require.LessOrEqual(t, most, 2, "more than the limit ran at once")

	// Admission, where the order is decided, is strictly in creation order.
	admittedAt := make([]float64, total)
	for seq, execID := range ids {
		_, body := api.get(t, fmt.Sprintf("/api/v1/executions/%d", execID))
		at, err := time.Parse(time.RFC3339Nano, data(t, body)["admitted_at"].(string))
		require.NoError(t, err)
		admittedAt[seq] = float64(at.UnixNano()) / 1e9
	}
	require.True(t, slices.IsSorted(admittedAt), "admitted out of creation order: %v", admittedAt)
	// Starts follow, except that two executions admitted together (two slots freed in the
	// same moment) go to two workers, and which process starts first is a race between
	// them. An execution may start before an older one only if that older one already held
	// its slot: nothing overtakes a waiter.
	for i := range started {
		for j := i + 1; j < len(started); j++ {
			if older := started[j]; older < started[i] {
				require.Less(t, admittedAt[older], startedAt[i],
					"%d started before %d, which was still waiting", started[i], older)
			}
		}
	}
}

// waitDecided waits until execution id has passed admission or waits in a queue.
func (p *process) waitDecided(t *testing.T, execID int64) {
	t.Helper()
	var exec map[string]any
	require.Eventually(t, func() bool {
		_, body := p.get(t, fmt.Sprintf("/api/v1/executions/%d", execID))
		exec, _ = body["data"].(map[string]any)
		return exec["status"] != "requested" || exec["queue_position"] != nil
	}, 30*time.Second, 5*time.Millisecond, "execution %d was never admitted nor queued: %v", execID, exec)
}

type step struct {
	start bool
	seq   int
	at    float64
}

// readSteps parses demo.step's log, in time order; at equal times an end sorts first, since
// the slot it frees is what lets the next start.
func readSteps(t *testing.T, path string) []step {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var steps []step
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		require.Len(t, fields, 3, "bad line %q", sc.Text())
		seq, err := strconv.Atoi(fields[1])
		require.NoError(t, err)
		at, err := strconv.ParseFloat(fields[2], 64)
		require.NoError(t, err)
		steps = append(steps, step{start: fields[0] == "start", seq: seq, at: at})
	}
	require.NoError(t, sc.Err())
	slices.SortStableFunc(steps, func(a, b step) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		if a.start == b.start {
			return 0
		}
		if !a.start {
			return -1
		}
		return 1
	})
	return steps
}

// Cancelling an execution that waits in its policy's queue takes it out of the queue, as
// queue-stats and the others' positions show, and the rest of the queue runs on.
func TestCancelQueued(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			p := startPipeline(t, b.args(t))
			logPath := filepath.Join(t.TempDir(), "steps.log")
			var ids []int64
			for seq := range 5 {
				seconds := 0.1
				if seq < 2 {
					seconds = 30 // hold both slots until cancelled
				}
				_, body := p.post(t, "/api/v1/executions/execute", map[string]any{
					"action_ref": "demo.step", "parameters": map[string]any{"seq": seq, "log": logPath, "seconds": seconds},
				})
				ids = append(ids, id(t, data(t, body), "id"))
				p.waitDecided(t, ids[seq])
			}
			_, body := p.get(t, "/api/v1/actions/demo.step/queue-stats")
			stats := data(t, body)
			require.EqualValues(t, 2, stats["limit"], stats)
			require.EqualValues(t, 2, stats["active"], stats)
			require.EqualValues(t, 3, stats["queued"], stats)
			require.NotNil(t, stats["oldest_queued_at"])

			code, body := p.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", ids[3]), nil)
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, "cancelled", data(t, body)["status"])
			_, body = p.get(t, fmt.Sprintf("/api/v1/executions/%d", ids[4]))
			require.EqualValues(t, 2, data(t, body)["queue_position"], "the queue closed up")
			_, body = p.get(t, "/api/v1/actions/demo.step/queue-stats")
			require.EqualValues(t, 2, data(t, body)["queued"])

			for _, holding := range ids[:2] {
				// 200 when it had not started yet, 202 while the worker stops it.
				code, _ = p.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", holding), nil)
				require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, code)
			}
			for _, waiting := range []int64{ids[2], ids[4]} {
				require.Equal(t, "completed", p.waitExecution(t, waiting)["status"])
			}
		})
	}
}
