package app_test

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/store/storetest"
)

// Production's shape: every role in its own process on RabbitMQ, two sensors and two workers.
// A webhook runs end to end across the processes; then the worker running an action is killed
// with SIGKILL, its execution is abandoned once its heartbeat is missed, and the other worker
// carries on. The timers fire each tick once whichever sensor leads, and keep firing when the
// leading sensor is killed.
func TestSplitRoles(t *testing.T) {
	t.Parallel()
	start := splitRoles(t)
	api := start("api")
	sensors := []*process{start("sensor"), start("sensor")}
	start("executor")
	workers := map[string]*process{}
	for range 2 {
		w := start("worker")
		workers[w.waitLog(t, "worker registered", 10*time.Second)["worker"].(string)] = w
	}
	// The demo pack ships its timer disabled; enabled once every process is up, since each
	// registers the pack again as it starts.
	code, body := api.post(t, "/api/v1/rules/demo.every_second/enable", nil)
	require.Equal(t, http.StatusOK, code, body)

	code, body = api.post(t, "/api/v1/webhooks/demo", map[string]any{"name": "Split", "kind": "order"})
	require.Equal(t, http.StatusAccepted, code)
	exec := api.waitExecution(t, api.executionOf(t, "demo.on_webhook", id(t, data(t, body), "event_id")))
	require.Equal(t, "completed", exec["status"], exec)
	require.Equal(t, "Split\n", result(t, exec)["stdout"])

	_, body = api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.slow", "parameters": map[string]any{"seconds": 60}})
	slow := id(t, data(t, body), "id")
	var running map[string]any
	require.Eventually(t, func() bool {
		_, e := api.get(t, fmt.Sprintf("/api/v1/executions/%d", slow))
		running = data(t, e)
		return running["status"] == "running"
	}, 30*time.Second, 20*time.Millisecond)
	victim := running["worker"].(string)
	require.NoError(t, workers[victim].cmd.Process.Signal(syscall.SIGKILL))
	<-workers[victim].exited

	abandoned := api.waitExecution(t, slow)
	require.Equal(t, "abandoned", abandoned["status"])
	require.Contains(t, abandoned["reason"], victim)

	for name := range workers {
		if name == victim {
			continue
		}
		_, body = api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.hello", "parameters": map[string]any{"name": "survivor"}})
		after := api.waitExecution(t, id(t, data(t, body), "id"))
		require.Equal(t, "completed", after["status"], after)
		require.Equal(t, name, after["worker"], "the surviving worker took the work")
	}

	var leader *process
	require.Eventually(t, func() bool {
		for _, s := range sensors {
			if s.hasLog("leading") {
				leader = s
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no sensor leads")
	before := len(timerTicks(t, api))
	require.NoError(t, leader.cmd.Process.Signal(syscall.SIGKILL))
	<-leader.exited
	require.Eventually(t, func() bool { return len(timerTicks(t, api)) >= before+3 }, 30*time.Second, 50*time.Millisecond,
		"the timer stopped with its leader")
	ticks := timerTicks(t, api)
	seen := map[string]bool{}
	for _, at := range ticks {
		require.False(t, seen[at], "tick %s fired twice", at)
		seen[at] = true
	}
}

// splitRoles prepares a database, a broker namespace and the test packs for roles that run
// as separate processes, with heartbeats short enough that a killed worker is noticed within
// a test, and returns what starts one role; each is stopped when the test ends.
func splitRoles(t *testing.T) func(role string) *process {
	t.Helper()
	return splitRolesWith(t, packsDir(t), "--worker-heartbeat=200ms", "--worker-timeout=1500ms")
}

// splitRolesWith is splitRoles with the packs under packs and more arguments for every role.
func splitRolesWith(t *testing.T, packs string, extra ...string) func(role string) *process {
	t.Helper()
	common := append([]string{
		"--database-url=" + storetest.NewDatabase(t),
		"--amqp-url=" + brokertest.URL(t),
		"--amqp-namespace=" + namespace(t),
		"--packs-dir=" + packs,
	}, extra...)
	return func(role string) *process {
		p := startServe(t, append([]string{"--roles=" + role}, common...)...)
		t.Cleanup(func() {
			select {
			case <-p.exited:
			default:
				p.stop(t, syscall.SIGTERM, 30*time.Second)
			}
		})
		return p
	}
}

// timerTicks lists the fired_at of every tick of demo.every_second so far.
func timerTicks(t *testing.T, api *process) []string {
	t.Helper()
	_, body := api.get(t, "/api/v1/events?trigger_ref=core.intervaltimer&per_page=100")
	var out []string
	for _, e := range body["data"].([]any) {
		ev := e.(map[string]any)
		if ev["rule_ref"] == "demo.every_second" {
			out = append(out, ev["payload"].(map[string]any)["fired_at"].(string))
		}
	}
	return out
}
