package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/brokertest"
)

// Worker routing on RabbitMQ, with a worker process per zone: an action selecting zone=eu
// runs only on the eu worker, an unlabelled one on both, one selected after the workers
// started reaches its worker through the news of its selector; an action no live worker
// matches waits scheduled and then fails with the reason; and a worker with the labels
// started while an execution waits runs it, from the queue where it waited.
func TestWorkerRouting(t *testing.T) {
	t.Parallel()
	packs, _ := writePack(t, "routed", map[string]string{
		"actions/hello.sh":  "#!/bin/sh\necho hello\n",
		"actions/eu.yaml":   "ref: routed.eu\nrunner_type: shell\nentry_point: hello.sh\nworker_selector: {zone: eu}\n",
		"actions/any.yaml":  "ref: routed.any\nrunner_type: shell\nentry_point: hello.sh\n",
		"actions/ap.yaml":   "ref: routed.ap\nrunner_type: shell\nentry_point: hello.sh\nworker_selector: {zone: ap}\n",
		"actions/late.yaml": "ref: routed.late\nrunner_type: shell\nentry_point: hello.sh\nworker_selector: {zone: sg, tier: gold}\n",
	})
	start, stopAll, ns := workerRoles(t)
	defer stopAll()
	t.Cleanup(func() { // after stopAll: the processes declared them
		var names []string
		for _, sel := range []string{"zone=eu", "zone=ap", "tier=gold,zone=sg", "zone=us"} {
			names = append(names, ns+"."+broker.SelectorDispatchQueue("shell", sel).Name)
		}
		brokertest.DeleteQueues(t, names...)
	})
	const wait = 20 * time.Second
	api := start("api,executor", "--packs-dir="+packs, fmt.Sprintf("--worker-wait-timeout=%s", wait))
	execute := func(ref string) int64 {
		t.Helper()
		code, body := api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": ref})
		require.Equal(t, http.StatusCreated, code, body)
		return id(t, data(t, body), "id")
	}
	// Made first, so that its wait runs while the rest goes on.
	unmatched := execute("routed.ap")

	workerName := func(w *process) string { return w.waitLog(t, "worker registered", 30*time.Second)["worker"].(string) }
	eu := start("worker", "--worker-labels=zone=eu")
	us := start("worker", "--worker-labels=zone=us")
	euName, usName := workerName(eu), workerName(us)

	const n = 8
	ranOn := func(ref string) map[string]int {
		t.Helper()
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = execute(ref)
		}
		on := make(map[string]int)
		for _, x := range ids {
			exec := api.waitExecution(t, x)
			require.Equal(t, "completed", exec["status"], "%v", exec)
			on[exec["worker"].(string)]++
		}
		return on
	}
	require.Equal(t, map[string]int{euName: n}, ranOn("routed.eu"), "only the eu worker runs what selects zone=eu")
	require.Len(t, ranOn("routed.any"), 2, "both workers run an unlabelled action")

	// An action selecting zone=us made after the workers started: the us worker hears of it.
	code, body := api.post(t, "/api/v1/actions", map[string]any{"ref": "routed.us", "pack_ref": "routed", "runner_type": "shell",
		"entry_point": "hello.sh", "worker_selector": map[string]string{"zone": "us"}})
	require.Equal(t, http.StatusCreated, code, body)
	require.Equal(t, map[string]any{"zone": "us"}, data(t, body)["worker_selector"])
	require.Equal(t, map[string]int{usName: n}, ranOn("routed.us"))
	require.True(t, us.hasLog("worker consuming the queue of a selector"))

	// A worker with the labels, and more, started while an execution waits for one runs it.
	late := execute("routed.late")
	require.Eventually(t, func() bool {
		_, body := api.get(t, fmt.Sprintf("/api/v1/executions/%d", late))
		return data(t, body)["status"] == "scheduled"
	}, 30*time.Second, 20*time.Millisecond, "it waits for its worker")
	sg := start("worker", "--worker-labels=zone=sg,tier=gold,gpu=true")
	ran := api.waitExecution(t, late)
	require.Equal(t, "completed", ran["status"], "%v", ran)
	require.Equal(t, workerName(sg), ran["worker"])

	// No live worker has zone=ap: it waits, scheduled, then fails naming the labels.
	_, body = api.get(t, fmt.Sprintf("/api/v1/executions/%d", unmatched))
	require.Equal(t, "scheduled", data(t, body)["status"], "it waits")
	require.Equal(t, map[string]any{"zone": "ap"}, data(t, body)["worker_selector"])
	failed := api.waitExecution(t, unmatched)
	require.Equal(t, "failed", failed["status"])
	require.Equal(t, fmt.Sprintf(`no live worker has labels zone=ap and runner "shell"; waited %s`, wait), failed["reason"])

	_, body = api.get(t, "/api/v1/workers/"+euName)
	require.Equal(t, map[string]any{"zone": "eu"}, data(t, body)["labels"])
	stdout, stderr, code := api.cli(t, "worker", "list")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "LABELS")
	require.Contains(t, stdout, `{"gpu":"true","tier":"gold","zone":"sg"}`)
}
