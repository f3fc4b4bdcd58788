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

// Production's shape: every role in its own process on RabbitMQ, two workers. A webhook
// runs end to end across the processes; then the worker running an action is killed with
// SIGKILL, its execution is abandoned once its heartbeat is missed, and the other worker
// carries on.
func TestSplitRoles(t *testing.T) {
	t.Parallel()
	common := []string{
		"--database-url=" + storetest.NewDatabase(t),
		"--amqp-url=" + brokertest.URL(t),
		"--amqp-namespace=" + namespace(t),
		"--packs-dir=" + packsDir(t),
		"--worker-heartbeat=200ms",
		"--worker-timeout=1500ms",
	}
	start := func(role string) *process {
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
	api := start("api")
	start("sensor")
	start("executor")
	workers := map[string]*process{}
	for range 2 {
		w := start("worker")
		workers[w.waitLog(t, "worker registered", 10*time.Second)["worker"].(string)] = w
	}

	code, body := api.post(t, "/api/v1/webhooks/demo", map[string]any{"name": "Split", "kind": "order"})
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
}
