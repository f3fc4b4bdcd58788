package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// secretToken is the value of the workflows' secret parameter token in these tests.
const secretToken = "tok-0123456789"

// newWorkflowServer is the API over real HTTP on a database of its own holding flows.deploy,
// a workflow whose parameter token is secret, and flows.step, an action a worker runs.
func newWorkflowServer(t *testing.T) (server, *recorder) {
	t.Helper()
	s := storetest.NewStore(t)
	_, err := s.PackRegister(context.Background(), store.PackRegistration{
		Pack: store.Pack{Ref: "flows", Path: "/packs/flows"},
		Actions: []store.Action{
			storetest.WorkflowAction("flows.deploy", `{"token": {"type": "string", "secret": true}, "pin": {"type": "integer", "secret": true}, "hosts": {"type": "array"}}`),
			{Ref: "flows.step", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: true},
		},
	})
	require.NoError(t, err)
	rec := &recorder{Broker: membroker.New(broker.Options{})}
	return startAPI(t, s, rec, api.Config{}), rec
}

// fill writes a workflow of flows.deploy in status with one task running core's flows.step.
func (s server) fillWorkflow(status string) storetest.FilledWorkflow {
	s.t.Helper()
	return storetest.FillWorkflow(s.t, s.s, storetest.Workflow{ActionRef: "flows.deploy", Status: status,
		Tasks: []storetest.WorkflowTask{{Name: "check", Children: []storetest.WorkflowChild{{ActionRef: "flows.step", Status: store.ExecutionRunning}}}}})
}

func idPath(id int64, suffix string) string {
	return "/executions/" + strconv.FormatInt(id, 10) + suffix
}

// A workflow reads with its tasks, in the order they were reached, each with its status, its
// item progress and its child executions in item then attempt order, and its variables. What
// its secret parameters reach is masked: a variable named like one, a value equal to one, and
// a secret's text inside a string, in the variables and in the tasks' results. The children
// are listed by ?parent=.
func TestWorkflowView(t *testing.T) {
	t.Parallel()
	s, _ := newWorkflowServer(t)
	w := storetest.FillWorkflow(t, s.s, storetest.Workflow{
		ActionRef: "flows.deploy", Parameters: `{"token": "` + secretToken + `", "pin": 42, "hosts": ["a", "b", "c"]}`,
		Secrets: []string{"pin", "token"},
		Vars:    `{"token": "renamed", "copy": "` + secretToken + `", "header": "Bearer ` + secretToken + `", "pin_copy": 42, "count": 42.5, "hosts": ["a", "b", "c"]}`,
		Tasks: []storetest.WorkflowTask{
			{Name: "check", Status: store.TaskSucceeded, Result: `{"echo": "token=` + secretToken + `", "ok": true}`,
				Children: []storetest.WorkflowChild{{ActionRef: "flows.step", Status: store.ExecutionCompleted}}},
			{Name: "hosts", Items: []any{"a", "b", "c"}, Children: []storetest.WorkflowChild{
				{ActionRef: "flows.step", Item: 1, Status: store.ExecutionRunning},
				{ActionRef: "flows.step", Item: 0, Attempt: 1, Status: store.ExecutionFailed},
				{ActionRef: "flows.step", Item: 0, Attempt: 2, Status: store.ExecutionCompleted},
			}},
			{Name: "nested", Status: store.TaskRunning, Children: []storetest.WorkflowChild{{ActionRef: "flows.deploy", Status: store.ExecutionRunning}}},
			{Name: "check", Status: store.TaskWaiting},
		},
	})

	status, body := s.do(http.MethodGet, idPath(w.ID, ""), "")
	require.Equal(t, http.StatusOK, status, body)
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	require.NotContains(t, string(raw), secretToken)
	exec := body["data"].(map[string]any)
	require.Equal(t, map[string]any{"token": "********", "pin": "********", "hosts": []any{"a", "b", "c"}}, exec["parameters"])
	view := exec["workflow"].(map[string]any)
	require.Equal(t, map[string]any{"token": "********", "copy": "********", "header": "Bearer ********", "pin_copy": "********",
		"count": 42.5, "hosts": []any{"a", "b", "c"}}, view["vars"], "the short pin masked where it is a whole value only")

	ids := func(ns ...int64) []any {
		out := make([]any, len(ns))
		for i, n := range ns {
			out[i] = float64(n)
		}
		return out
	}
	hosts := w.Children[1]
	require.Equal(t, []any{
		map[string]any{"name": "check", "seq": 1.0, "status": "succeeded", "item_count": 1.0, "items_ended": 1.0,
			"executions": ids(w.Children[0]...), "result": map[string]any{"echo": "token=********", "ok": true}},
		map[string]any{"name": "hosts", "seq": 1.0, "status": "running", "item_count": 3.0, "items_ended": 1.0,
			"executions": ids(hosts[1], hosts[2], hosts[0])},
		map[string]any{"name": "nested", "seq": 1.0, "status": "running", "item_count": 1.0, "items_ended": 0.0,
			"executions": ids(w.Children[2]...), "nested": true},
		map[string]any{"name": "check", "seq": 2.0, "status": "waiting", "item_count": 1.0, "items_ended": 0.0, "executions": []any{}},
	}, view["tasks"])

	child := s.data(http.StatusOK, http.MethodGet, idPath(hosts[0], ""), "")
	require.Equal(t, "hosts", child["task_name"])
	require.EqualValues(t, 1, child["task_item"])
	require.EqualValues(t, w.ID, child["parent_id"])
	require.NotContains(t, child, "workflow", "a task's execution that no worker ran yet is no workflow")

	status, list := s.do(http.MethodGet, "/executions?per_page=100&parent="+strconv.FormatInt(w.ID, 10), "")
	require.Equal(t, http.StatusOK, status, list)
	var listed []any
	for _, e := range list["data"].([]any) {
		listed = append(listed, e.(map[string]any)["id"])
	}
	require.ElementsMatch(t, ids(w.Children[0][0], hosts[0], hosts[1], hosts[2], w.Children[2][0]), listed)
	require.Contains(t, s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/executions?parent=x", ""), `invalid parent "x"`)

	// A workflow that has not started has no state to show, and neither has a plain execution.
	requested, err := s.s.ExecutionInsert(context.Background(), store.ExecutionInsertParams{ActionRef: "flows.deploy"})
	require.NoError(t, err)
	require.NotContains(t, s.data(http.StatusOK, http.MethodGet, idPath(requested.ID, ""), ""), "workflow")
}

// Pause moves a running workflow to pausing and asks an executor to advance it; asking again
// asks again, and a paused one is answered as it is. Resume moves it back to running and asks
// likewise; it refuses a workflow that does not pause. Neither takes an execution that is no
// workflow, nor a workflow that does not run; a viewer may do neither.
func TestWorkflowPauseResume(t *testing.T) {
	t.Parallel()
	s, rec := newWorkflowServer(t)
	ctx := context.Background()
	w := s.fillWorkflow("")
	asked := func() int {
		n := 0
		for _, r := range rec.requested(t) {
			if r.ExecutionID == w.ID {
				require.Equal(t, "flows.deploy", r.ActionRef)
				n++
			}
		}
		return n
	}

	started := s.data(http.StatusOK, http.MethodGet, idPath(w.ID, ""), "")["started_at"]
	require.Equal(t, "pausing", s.data(http.StatusAccepted, http.MethodPost, idPath(w.ID, "/pause"), "")["status"])
	require.Equal(t, 1, asked())
	require.Equal(t, "pausing", s.data(http.StatusAccepted, http.MethodPost, idPath(w.ID, "/pause"), "")["status"])
	require.Equal(t, 2, asked(), "asking again asks again")
	_, ok, err := s.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: w.ID, From: []string{store.ExecutionPausing}, To: store.ExecutionPaused})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "paused", s.data(http.StatusOK, http.MethodPost, idPath(w.ID, "/pause"), "")["status"])
	require.Equal(t, 2, asked(), "a paused workflow has nothing to advance")

	resumed := s.data(http.StatusAccepted, http.MethodPost, idPath(w.ID, "/resume"), "")
	require.Equal(t, "running", resumed["status"])
	require.Equal(t, started, resumed["started_at"], "a resumed workflow keeps when it started")
	require.Equal(t, 3, asked())
	require.Contains(t, s.fail(http.StatusConflict, "conflict", http.MethodPost, idPath(w.ID, "/resume"), ""),
		"is running: only a pausing or paused workflow can be resumed")

	// Pausing resumes straight to running.
	s.data(http.StatusAccepted, http.MethodPost, idPath(w.ID, "/pause"), "")
	require.Equal(t, "running", s.data(http.StatusAccepted, http.MethodPost, idPath(w.ID, "/resume"), "")["status"])

	// The task's execution runs on a worker: it is no workflow.
	worker, err := s.s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w1", Runners: []string{"noop"}, Concurrency: 1})
	require.NoError(t, err)
	step := w.Children[0][0]
	_, err = s.s.Pool().Exec(ctx, `UPDATE attune.execution SET worker = $2 WHERE id = $1`, step, worker.ID)
	require.NoError(t, err)
	for _, verb := range []string{"pause", "resume"} {
		msg := s.fail(http.StatusConflict, "conflict", http.MethodPost, idPath(step, "/"+verb), "")
		require.Contains(t, msg, "execution "+strconv.FormatInt(step, 10)+" of flows.step is no workflow")
	}

	notStarted, err := s.s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "flows.deploy", Status: store.ExecutionScheduled})
	require.NoError(t, err)
	require.Contains(t, s.fail(http.StatusConflict, "conflict", http.MethodPost, idPath(notStarted.ID, "/pause"), ""),
		"is scheduled: only a running workflow can be paused")
	ended := s.fillWorkflow(store.ExecutionCompleted)
	require.Contains(t, s.fail(http.StatusConflict, "conflict", http.MethodPost, idPath(ended.ID, "/pause"), ""), "is completed")
	require.Contains(t, s.fail(http.StatusConflict, "conflict", http.MethodPost, idPath(ended.ID, "/resume"), ""), "is completed")
	s.fail(http.StatusNotFound, "not_found", http.MethodPost, idPath(1<<40, "/pause"), "")
	s.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/executions/x/resume", "")

	viewer := s.as(s.newIdentity("vera", "viewer"))
	viewer.fail(http.StatusForbidden, "forbidden", http.MethodPost, idPath(w.ID, "/pause"), "")
	viewer.fail(http.StatusForbidden, "forbidden", http.MethodPost, idPath(w.ID, "/resume"), "")
	require.Equal(t, "running", s.data(http.StatusOK, http.MethodGet, idPath(w.ID, ""), "")["status"])
}

// Cancelling a running, pausing or paused workflow makes it canceling and asks an executor to
// advance it, which cancels its tasks; no worker is asked, as none runs it. Asking again asks
// again.
func TestWorkflowCancel(t *testing.T) {
	t.Parallel()
	s, rec := newWorkflowServer(t)
	for _, status := range []string{store.ExecutionRunning, store.ExecutionPausing, store.ExecutionPaused} {
		w := s.fillWorkflow(status)
		for range 2 {
			require.Equal(t, "canceling", s.data(http.StatusAccepted, http.MethodPost, idPath(w.ID, "/cancel"), "")["status"], status)
		}
		n := 0
		for _, r := range rec.requested(t) {
			if r.ExecutionID == w.ID {
				n++
			}
		}
		require.Equal(t, 2, n, "a %s workflow's executor is asked each time", status)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, m := range rec.msgs {
		require.NotEqual(t, broker.TypeExecutionCancelRequested, m.Type, "no worker runs a workflow")
	}
}
