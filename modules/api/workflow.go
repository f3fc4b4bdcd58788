package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// A workflow is an execution the executor runs itself, of an action whose runner is
// workflow: it has no worker, and its tasks are child executions. Pause, resume and cancel
// change its status and ask an executor to advance it (broker.ExecutionRequested); the
// executor stops or starts its tasks accordingly.

// workflowRunner is the runner of the actions the executor runs as workflows.
const workflowRunner = "workflow"

// pause asks a running workflow to pause: it starts no new task, and an executor marks it
// paused once its running tasks have ended. Asking a pausing workflow again asks again (the
// first request may have been lost after its commit); a paused one is left as it is.
func (m *Module) pause(c echo.Context) error {
	exec, err := m.workflowExecution(c, "paused")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	moved, ok, err := m.deps.Store.WorkflowTransition(ctx, store.ExecutionTransition{
		ID: exec.ID, From: []string{store.ExecutionRunning}, To: store.ExecutionPausing, Audit: "execution.pause",
	})
	if err != nil {
		return err
	}
	if ok {
		m.notifyExecution(moved, store.ExecutionRunning)
		m.requestAdvance(ctx, moved)
		return answer(c, http.StatusAccepted, moved)
	}
	if exec, err = m.deps.Store.ExecutionGet(ctx, exec.ID); err != nil {
		return err
	}
	switch exec.Status {
	case store.ExecutionPausing:
		m.requestAdvance(ctx, exec)
		return answer(c, http.StatusAccepted, exec)
	case store.ExecutionPaused:
		return answer(c, http.StatusOK, exec)
	}
	return workflowConflict(exec, "only a running workflow can be paused")
}

// resume lets a pausing or paused workflow run on: it starts what it would have started had
// it not paused.
func (m *Module) resume(c echo.Context) error {
	exec, err := m.workflowExecution(c, "resumed")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	moved, ok, err := m.deps.Store.WorkflowTransition(ctx, store.ExecutionTransition{
		ID: exec.ID, From: []string{store.ExecutionPausing, store.ExecutionPaused}, To: store.ExecutionRunning, Audit: "execution.resume",
	})
	if err != nil {
		return err
	}
	if !ok {
		if exec, err = m.deps.Store.ExecutionGet(ctx, exec.ID); err != nil {
			return err
		}
		return workflowConflict(exec, "only a pausing or paused workflow can be resumed")
	}
	m.notifyExecution(moved, "")
	m.requestAdvance(ctx, moved)
	return answer(c, http.StatusAccepted, moved)
}

// workflowExecution reads the execution of the request's id and refuses, with 409 naming the
// verb, one that is no workflow.
func (m *Module) workflowExecution(c echo.Context, verb string) (store.Execution, error) {
	id, err := idParam(c)
	if err != nil {
		return store.Execution{}, err
	}
	ctx := c.Request().Context()
	exec, err := m.deps.Store.ExecutionGet(ctx, id)
	if err != nil {
		return store.Execution{}, notFound(err, "no execution %d", id)
	}
	ok, err := m.isWorkflow(ctx, exec)
	if err != nil {
		return store.Execution{}, err
	}
	if !ok {
		return store.Execution{}, &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf(
			"execution %d of %s is no workflow: only a workflow (an action with runner workflow) can be %s", id, exec.ActionRef, verb)}
	}
	return exec, nil
}

// isWorkflow reports whether exec runs as a workflow: no worker runs it, and its action's
// runner is workflow, or, its action gone, it has a workflow's state.
func (m *Module) isWorkflow(ctx context.Context, exec store.Execution) (bool, error) {
	if exec.Worker != nil {
		return false, nil
	}
	action, err := m.deps.Store.ActionGetByRef(ctx, exec.ActionRef)
	if err == nil {
		return action.RunnerType == workflowRunner, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	_, err = m.deps.Store.WorkflowViewGet(ctx, exec.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func workflowConflict(exec store.Execution, why string) error {
	return &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("execution %d is %s: %s", exec.ID, exec.Status, why)}
}

// requestAdvance asks an executor to advance workflow exec after a change of its status was
// committed, through the relay, which keeps it while the broker is away. One lost with this
// process is made up for by the executors' sweep of workflows waiting to pause or cancel; for
// a resumed workflow, only by its next task or retry that falls due.
func (m *Module) requestAdvance(ctx context.Context, exec store.Execution) {
	if err := m.deps.Relay.Send(ctx, broker.InTrace(exec.Trace(), broker.ExecutionRequested{ExecutionID: exec.ID, ActionRef: exec.ActionRef})); err != nil {
		m.deps.Logger.WarnContext(ctx, "workflow change recorded but not announced", "execution_id", exec.ID, "status", exec.Status, "err", err)
	}
}

// workflowView reads the tasks and variables of e when it is a workflow that has started,
// and nil otherwise. Only an execution that started without a worker can be one, which spares
// every other execution the query.
func (m *Module) workflowView(ctx context.Context, e store.Execution) (*store.WorkflowView, error) {
	if e.Worker != nil || e.StartedAt == nil {
		return nil, nil
	}
	v, err := m.deps.Store.WorkflowViewGet(ctx, e.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// maskWorkflow masks, in a workflow's view, what its execution's secret parameters reach:
// the variables named like one, and wherever a secret value shows up in the variables and the
// tasks' results, which are rendered from the input. parameters are the execution's, unmasked.
func maskWorkflow(v *store.WorkflowView, parameters []byte, secrets []string) *store.WorkflowView {
	if v == nil {
		return v
	}
	out := *v
	out.Vars = pack.MaskSealed(pack.MaskValues(pack.MaskParameters(v.Vars, secrets), parameters, secrets))
	out.Tasks = slices.Clone(v.Tasks)
	for i := range out.Tasks {
		out.Tasks[i].Result = pack.MaskSealed(pack.MaskValues(out.Tasks[i].Result, parameters, secrets))
	}
	return &out
}
