package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/ruleeval"
	"github.com/attune-go/attune/store"
)

// maxBody bounds request bodies: events and definitions are small; a larger body is a mistake
// or an attack.
const maxBody = 1 << 20

// maxParametersBody bounds the bodies of the routes that carry an action's parameters
// (execute, rerun): a shell action takes a parameter of 1 MiB and more, and its JSON wrapper
// and escaping must fit too.
const maxParametersBody = 4 << 20

func decodeBody(c echo.Context, v any) error {
	return decodeBodyUpTo(c, v, maxBody)
}

// decodeBodyUpTo is decodeBody for a body of at most limit bytes.
func decodeBodyUpTo(c echo.Context, v any, limit int) error {
	body, err := readBody(c, limit)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// decodeOptionalBody is decodeBody for a body of at most limit bytes that the caller may leave
// out: an empty one leaves v as it is.
func decodeOptionalBody(c echo.Context, v any, limit int) error {
	body, err := readBody(c, limit)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	return decodeJSON(body, v)
}

func readBody(c echo.Context, limit int) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, int64(limit)+1))
	if err != nil {
		return nil, badRequest("read request body: %v", err)
	}
	if len(body) > limit {
		return nil, tooLarge(limit)
	}
	return body, nil
}

func tooLarge(limit int) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("request body over %d bytes", limit)}
}

func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("invalid JSON body: %v", err)
	}
	return nil
}

type registerRequest struct {
	Path string `json:"path"`
}

// registerPack loads a pack directory on this server and registers it whole; a broken pack
// is refused with the file and field at fault, and nothing is written.
func (m *Module) registerPack(c echo.Context) error {
	var req registerRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if req.Path == "" {
		return badRequest("path: required")
	}
	dir, err := filepath.Abs(req.Path)
	if err != nil {
		return badRequest("path: %v", err)
	}
	p, err := pack.Load(dir)
	if err != nil {
		return badRequest("%v", err)
	}
	registered, err := pack.Register(c.Request().Context(), m.deps.Store, p)
	var invalid *pack.Error
	if errors.As(err, &invalid) {
		// Named as Load names the pack, so that every refusal says which directory it read.
		return badRequest("register pack %s: %v", dir, err)
	}
	if err != nil {
		return err
	}
	m.deps.Logger.InfoContext(c.Request().Context(), "pack registered", "pack", registered.Ref, "path", dir, "changes", registered.Changes)
	return c.JSON(http.StatusOK, dataBody[store.RegisteredPack]{Data: registered})
}

type executeRequest struct {
	ActionRef  string         `json:"action_ref"`
	Parameters map[string]any `json:"parameters"`
}

// execute runs an action by hand. Unlike an enforcement's, a manual request with bad
// parameters is refused with 400 and creates nothing: the caller is there to fix it.
func (m *Module) execute(c echo.Context) error {
	var req executeRequest
	if err := decodeBodyUpTo(c, &req, maxParametersBody); err != nil {
		return err
	}
	if req.ActionRef == "" {
		return fieldError("action_ref", "action_ref: required")
	}
	if err := refuseSealed(req.Parameters); err != nil {
		return err
	}
	return m.startExecution(c, req.ActionRef, manualRun{values: req.Parameters})
}

// manualRun is what startExecution runs an action with.
type manualRun struct {
	values   map[string]any
	parentID *int64
	// inherited names the rerun's original's secrets, whose values values may carry.
	inherited []string
	rerun     *store.WorkflowRerun
	// ownKeysOnly, on a rerun by another identity than the original's requester, names the
	// parameters the caller gave: every other parameter whose default reads kv.user is
	// rendered again, from the caller's keys, not carried over from the original's requester's.
	ownKeysOnly map[string]bool
}

// startExecution is the one path of a manual execution, first run or rerun: the action must
// exist and be enabled, and the parameters must fit its schema now. The execution records as
// secret the parameters the action declares secret and the inherited names.
func (m *Module) startExecution(c echo.Context, actionRef string, run manualRun) error {
	ctx := c.Request().Context()
	action, err := m.deps.Store.ActionGetByRef(ctx, actionRef)
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no action %q", actionRef)}
	}
	if err != nil {
		return err
	}
	if !action.Enabled {
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("action %s is disabled", action.Ref)}
	}
	var user *int64
	if id := principalOf(c).IdentityID; id != 0 {
		user = &id
	}
	schema, err := pack.StoredSchema(action.Parameters)
	if err != nil {
		return fmt.Errorf("execute %s: %w", action.Ref, err)
	}
	values := run.values
	if run.ownKeysOnly != nil {
		values = maps.Clone(values)
		for _, name := range schema.UserDefaults() {
			if !run.ownKeysOnly[name] {
				delete(values, name)
			}
		}
	}
	values, err = schema.RenderDefaults(ctx, values, m.keyReader(action.PackRef, user))
	var bad *ruleeval.PathError
	if errors.As(err, &bad) {
		// The fault is in the action's default template, not in what the caller sent: no
		// field of the request to point at.
		return badRequest("%v", err)
	}
	if err != nil {
		return err
	}
	params, secrets, err := schema.CheckExecution(values, run.inherited)
	if name, ok := pack.ParamName(err); ok {
		return fieldError("parameters."+name, "%v", err)
	} else if err != nil {
		return badRequest("%v", err)
	}
	// Only the worker sees a secret in clear: a rerun's copies of the original's are sealed
	// already, and SealParams leaves them as they are.
	if params, err = m.deps.Keyring.SealParams(params, secrets); err != nil {
		return fmt.Errorf("execute %s: %w", action.Ref, err)
	}
	// Admission is decided as the execution is created, in its queue's id order.
	create := store.ExecutionCreateParams{
		ActionRef: action.Ref, Parameters: params, ParentID: run.parentID, TimeoutSeconds: &action.TimeoutSeconds, Secrets: secrets,
		RequestedBy: user,
		// A request by hand starts a trace of its own, a rerun too: it is no part of what
		// caused the original.
		TraceID: uuid.NewString(),
	}
	var created store.ExecutionCreated
	if run.rerun != nil {
		created, err = m.deps.Store.ExecutionCreateRerun(ctx, create, *run.rerun)
	} else {
		created, err = m.deps.Store.ExecutionRequest(ctx, create)
	}
	if err != nil {
		return err
	}
	exec := created.Execution
	m.notifyExecution(exec, "")
	if created.Outcome == store.CreateAdmitted {
		// The executor dispatches it to its runner's workers.
		if err := m.deps.Relay.Send(ctx, broker.InTrace(exec.Trace(), broker.ExecutionRequested{ExecutionID: exec.ID, ActionRef: exec.ActionRef})); err != nil {
			m.deps.Logger.WarnContext(ctx, "execution recorded but not announced; the sweeper will", "execution_id", exec.ID, "trace_id", exec.Trace(),
				"err", err)
		}
	}
	// The request is committed: a failure to read back who made it is no failure of it.
	if withRequester, err := m.withRequester(ctx, principalOf(c), exec); err == nil {
		exec = withRequester
	}
	return answer(c, http.StatusCreated, exec)
}

type rerunRequest struct {
	Parameters map[string]any `json:"parameters"`
	// FromTask reruns a failed workflow from this task of it, keeping its variables and what
	// succeeded; empty reruns the whole action.
	FromTask string `json:"from_task"`
}

// rerun runs an execution's action again as its child, with its parameters and the body's
// replacing them by key. The merged parameters are checked as execute's are, since the
// action's schema may have changed since the first run and the caller is there to fix them.
// The original's secret values are copied without the caller seeing them, and stay secret on
// the rerun; a secret the body gives as the mask the caller was shown keeps its original value.
// A rerun by another identity than the original's requester does not use the requester's
// private keys: parameters whose default reads kv.user are rendered again from the caller's
// (unless the body gives them), and a workflow whose definition reads kv.user is not rerun
// from a task, which would carry over variables read from them.
func (m *Module) rerun(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	var req rerunRequest
	if err := decodeOptionalBody(c, &req, maxParametersBody); err != nil {
		return err
	}
	if err := refuseSealed(req.Parameters); err != nil {
		return err
	}
	orig, err := m.deps.Store.ExecutionGet(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no execution %d", id)}
	}
	if err != nil {
		return err
	}
	var params map[string]any
	if len(orig.Parameters) > 0 {
		if err := json.Unmarshal(orig.Parameters, &params); err != nil {
			return fmt.Errorf("decode parameters of execution %d: %w", id, err)
		}
	}
	// A stored null decodes to a nil map, which cannot take the overrides.
	if params == nil {
		params = make(map[string]any, len(req.Parameters))
	}
	run := manualRun{parentID: &orig.ID, inherited: orig.Secrets}
	if !requestedBy(orig, principalOf(c)) {
		// The mask the caller was shown stands for the original's value, which is not theirs.
		run.ownKeysOnly = map[string]bool{}
		for name, v := range req.Parameters {
			if s, ok := v.(string); !ok || s != pack.Mask {
				run.ownKeysOnly[name] = true
			}
		}
	}
	maps.Copy(params, pack.RestoreMasked(req.Parameters, params, orig.Secrets))
	run.values = params
	if req.FromTask != "" {
		if run.rerun, err = m.rerunFrom(c.Request().Context(), orig, req.FromTask, run.ownKeysOnly == nil); err != nil {
			return err
		}
	}
	return m.startExecution(c, orig.ActionRef, run)
}

// requestedBy reports whether p requested e: the same identity, or no identity for both (an
// execution a rule made, rerun with authentication off).
func requestedBy(e store.Execution, p principal) bool {
	if e.RequestedBy == nil {
		return p.IdentityID == 0
	}
	return *e.RequestedBy == p.IdentityID
}

// rerunFrom checks that orig is a failed workflow whose task did not succeed, for a rerun
// from that task, by its requester (byRequester) or by an identity its variables could not
// have leaked a user key to.
func (m *Module) rerunFrom(ctx context.Context, orig store.Execution, task string, byRequester bool) (*store.WorkflowRerun, error) {
	wf, err := m.deps.Store.WorkflowGet(ctx, orig.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fieldError("from_task", "from_task: execution %d is no workflow that ran", orig.ID)
	} else if err != nil {
		return nil, err
	}
	if !byRequester {
		readsUser, err := pack.WorkflowReadsUserKeys(wf.Definition)
		if err != nil {
			return nil, fmt.Errorf("rerun workflow %d: %w", orig.ID, err)
		}
		if readsUser {
			return nil, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: fmt.Sprintf("from_task: workflow %d reads kv.user, "+
				"so its variables may hold its requester's private keys: only its requester reruns it from a task; run it afresh instead", orig.ID)}
		}
	}
	if orig.Status != store.ExecutionFailed {
		return nil, &Error{Status: http.StatusConflict, Code: "conflict",
			Message: fmt.Sprintf("from_task: workflow %d is %s; only a failed workflow is rerun from a task", orig.ID, orig.Status)}
	}
	tasks, err := m.deps.Store.WorkflowTasks(ctx, orig.ID)
	if err != nil {
		return nil, err
	}
	last := ""
	for _, t := range tasks {
		if t.Name == task {
			last = t.Status
		}
	}
	switch last {
	case "":
		return nil, fieldError("from_task", "from_task: workflow %d never reached a task %q", orig.ID, task)
	case store.TaskSucceeded:
		return nil, fieldError("from_task", "from_task: task %q of workflow %d succeeded; a rerun keeps it", task, orig.ID)
	}
	return &store.WorkflowRerun{Source: orig.ID, Tasks: []string{task}}, nil
}

// cancel stops an execution: before it runs it ends cancelled at once; while it runs it
// becomes canceling and its worker is asked to stop the process, or for a workflow (running,
// pausing or paused) an executor is asked to cancel its tasks.
func (m *Module) cancel(c echo.Context) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	exec, ok, err := m.deps.Store.ExecutionTransition(ctx, store.ExecutionTransition{
		ID: id, From: []string{store.ExecutionRequested, store.ExecutionScheduling, store.ExecutionScheduled},
		To: store.ExecutionCancelled, Reason: "cancelled before it ran", Audit: "execution.cancel",
	})
	if err != nil {
		return err
	}
	if ok {
		m.notifyExecution(exec, "")
		m.announceEnded(ctx, exec, "cancelled execution not announced")
		return answer(c, http.StatusOK, exec)
	}
	// Only a workflow pauses, so only a workflow leaves pausing or paused here.
	exec, ok, err = m.deps.Store.WorkflowTransition(ctx, store.ExecutionTransition{
		ID: id, From: []string{store.ExecutionRunning, store.ExecutionPausing, store.ExecutionPaused}, To: store.ExecutionCanceling,
		Audit: "execution.cancel",
	})
	if err != nil {
		return err
	}
	if ok {
		m.notifyExecution(exec, "")
		if err := m.askToStop(ctx, exec); err != nil {
			return err
		}
		return answer(c, http.StatusAccepted, exec)
	}
	exec, err = m.deps.Store.ExecutionGet(ctx, id)
	if err != nil {
		return err
	}
	if exec.Status == store.ExecutionCanceling {
		// Asking again sends the request again: the first may have been lost after its
		// commit, and the worker's and the executor's sides are idempotent.
		if err := m.askToStop(ctx, exec); err != nil {
			return err
		}
		return answer(c, http.StatusAccepted, exec)
	}
	// Ended, with its next attempt planned: cancelling it cancels the retry.
	withdrawn, ok, err := m.deps.Store.ExecutionCancelRetry(ctx, id)
	if err != nil {
		return err
	}
	if ok {
		m.deps.Logger.InfoContext(ctx, "retry cancelled", "execution_id", id, "attempt", withdrawn.Attempt)
		return answer(c, http.StatusOK, withdrawn)
	}
	return &Error{Status: http.StatusConflict, Code: "conflict", Message: fmt.Sprintf("execution %d is already %s", id, exec.Status)}
}

// askToStop asks whoever runs canceling execution exec to stop it: its worker, or for a
// workflow, which runs on none, an executor, which cancels its tasks.
func (m *Module) askToStop(ctx context.Context, exec store.Execution) error {
	if exec.Worker == nil {
		m.requestAdvance(ctx, exec)
		return nil
	}
	if err := m.deps.Relay.Send(ctx, broker.InTrace(exec.Trace(), broker.ExecutionCancelRequested{ExecutionID: exec.ID, Worker: *exec.Worker})); err != nil {
		return fmt.Errorf("ask worker %s to cancel execution %d: %w", *exec.Worker, exec.ID, err)
	}
	return nil
}

// announceEnded sends the completion of exec, which this request ended, to the executors: its
// policy's waiters go, its workflow advances. A failure is logged, not answered: the change is
// committed, and the executors' sweeps make a lost completion good.
func (m *Module) announceEnded(ctx context.Context, exec store.Execution, failure string) {
	if err := m.deps.Relay.Send(ctx, broker.InTrace(exec.Trace(), broker.ExecutionCompleted{ExecutionID: exec.ID, ActionRef: exec.ActionRef,
		Status: exec.Status, FinishedAt: *exec.FinishedAt, HeldSlot: &exec.HeldSlot, Workflow: exec.WorkflowID()})); err != nil {
		m.deps.Logger.WarnContext(ctx, failure, "execution_id", exec.ID, "err", err)
	}
}

// notify passes committed changes to the live stream.
func (m *Module) notify(ns ...broker.Notification) {
	if m.deps.Notifier != nil {
		m.deps.Notifier.Notify(ns...)
	}
}

// notifyExecution tells the live stream that exec reached its status, from previous when
// known.
func (m *Module) notifyExecution(exec store.Execution, previous string) {
	m.notify(broker.ExecutionChanged(exec.ID, exec.ActionRef, exec.Status, previous, exec.Updated).InWorkflow(exec.WorkflowID()))
}

// keyReader reads the keys an action's {{ }} defaults use: kv.pack of its pack, kv.user of the
// identity that requests the execution.
func (m *Module) keyReader(packRef string, user *int64) pack.KeyReader {
	return func(ctx context.Context, refs []ruleeval.KeyRef) (map[string]any, error) {
		rows, err := m.deps.Store.KeyLookup(ctx, packRef, user, ruleeval.NamesAs[store.KeyName](refs))
		if err != nil {
			return nil, err
		}
		return ruleeval.KV(ruleeval.FoundFrom(rows))
	}
}

// refuseSealed refuses parameters a caller sends holding a seal token: sealed values come from
// Attune alone (a secret sealed at creation, a secret key a template read), and a worker
// would open one for whoever could copy its text out of the database into an action of theirs.
func refuseSealed(params map[string]any) error {
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if pack.HoldsToken(params[name]) {
			return fieldError("parameters."+name, "parameters.%s: holds a sealed value; send the value itself", name)
		}
	}
	return nil
}
