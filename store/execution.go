package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Execution statuses. The executor owns everything before running; the worker owns running
// and the terminal status. The database refuses moves backwards.
const (
	ExecutionRequested  = "requested"
	ExecutionScheduling = "scheduling"
	ExecutionScheduled  = "scheduled"
	ExecutionRunning    = "running"
	// ExecutionPausing and ExecutionPaused are a workflow's alone: asked to pause, it starts
	// no new task and is paused once its running tasks have ended. They share running's rank.
	ExecutionPausing   = "pausing"
	ExecutionPaused    = "paused"
	ExecutionCompleted = "completed"
	ExecutionFailed    = "failed"
	ExecutionCanceling = "canceling"
	ExecutionCancelled = "cancelled"
	ExecutionTimeout   = "timeout"
	ExecutionAbandoned = "abandoned"
)

// ExecutionStatuses lists every status in lifecycle order.
var ExecutionStatuses = []string{ExecutionRequested, ExecutionScheduling, ExecutionScheduled, ExecutionRunning,
	ExecutionPausing, ExecutionPaused, ExecutionCanceling, ExecutionCompleted, ExecutionFailed, ExecutionCancelled, ExecutionTimeout, ExecutionAbandoned}

// ExecutionTerminal lists the statuses an execution ends in.
var ExecutionTerminal = []string{ExecutionCompleted, ExecutionFailed, ExecutionCancelled, ExecutionTimeout, ExecutionAbandoned}

// IsTerminal reports whether status is final.
func IsTerminal(status string) bool { return slices.Contains(ExecutionTerminal, status) }

// ExecutionStatusRank orders statuses as attune.execution_status_rank does in the database,
// which refuses a move to a lower rank: canceling comes after running, and every terminal
// status shares the last rank. Readers that learn of changes out of order use it to drop the
// stale ones.
func ExecutionStatusRank(status string) int {
	switch status {
	case ExecutionRequested:
		return 0
	case ExecutionScheduling:
		return 1
	case ExecutionScheduled:
		return 2
	case ExecutionRunning, ExecutionPausing, ExecutionPaused:
		return 3
	case ExecutionCanceling:
		return 4
	default:
		return 5
	}
}

// ExecutionStatusAfter reports whether an execution may move from status last to next: a
// higher rank, or a late result replacing abandoned (the one move between terminal statuses
// the database allows). Readers that learn of changes out of order keep only such moves.
func ExecutionStatusAfter(last, next string) bool {
	if last == ExecutionAbandoned {
		return next != ExecutionAbandoned && IsTerminal(next) || ExecutionStatusRank(next) > ExecutionStatusRank(last)
	}
	return ExecutionStatusRank(next) > ExecutionStatusRank(last)
}

// ExecutionStatusNewer reports whether a change to next made at nextAt follows one to last
// made at lastAt: a move ExecutionStatusAfter allows, or, between the statuses a workflow
// moves to and fro among (running, pausing, paused share a rank), a later change to another.
// Readers that learn of changes out of order keep only such changes.
func ExecutionStatusNewer(last string, lastAt time.Time, next string, nextAt time.Time) bool {
	if ExecutionStatusAfter(last, next) {
		return true
	}
	return next != last && ExecutionStatusRank(next) == ExecutionStatusRank(ExecutionRunning) &&
		ExecutionStatusRank(last) == ExecutionStatusRank(ExecutionRunning) && nextAt.After(lastAt)
}

// Execution is a row of attune.execution: one run of an action.
type Execution struct {
	ID             int64           `json:"id"`
	ActionRef      string          `json:"action_ref"`
	Status         string          `json:"status"`
	Parameters     json.RawMessage `json:"parameters"`
	Result         json.RawMessage `json:"result"`
	Reason         *string         `json:"reason"`
	EnforcementID  *int64          `json:"enforcement_id"`
	ParentID       *int64          `json:"parent_id"`
	WorkerID       *int64          `json:"-"`
	Worker         *string         `json:"worker"`
	TimeoutSeconds *int            `json:"timeout_seconds"`
	Created        time.Time       `json:"created"`
	Updated        time.Time       `json:"updated"`
	StartedAt      *time.Time      `json:"started_at"`
	FinishedAt     *time.Time      `json:"finished_at"`
	// Admitted is set once the execution may go to a worker: at once when no policy applies,
	// else when its policy admits it.
	Admitted   bool       `json:"-"`
	AdmittedAt *time.Time `json:"admitted_at"`
	// Attempt numbers the attempts of one request, from 1; RetryOf is the first attempt's id
	// on every later one. RetryAt is when the next attempt is due, while it is.
	Attempt int        `json:"attempt"`
	RetryOf *int64     `json:"retry_of"`
	RetryAt *time.Time `json:"retry_at"`
	// HeldSlot is set by ExecutionTransition alone: whether the execution held a place under
	// a policy (a slot, or a place in its queue) just before the transition. An ending gives
	// that place back and may admit a waiter; an ending that held none admits nobody.
	HeldSlot bool `json:"-"`
	// Secrets names the secret parameters as the action declared them when the execution was
	// created: their values are masked wherever the execution is shown.
	Secrets []string `json:"-"`
	// TaskName and TaskItem say which task of its workflow (ParentID) a child execution runs,
	// and for a task with items, which item.
	TaskName *string `json:"task_name,omitempty"`
	TaskItem *int    `json:"task_item,omitempty"`
	// RequestedBy is the identity that requested the execution (execute, rerun), or for a
	// workflow's task, its workflow's; nil for a rule's. Its templates read that identity's
	// keys as kv.user. The API shows it in Requester.
	RequestedBy *int64 `json:"-"`
	// Requester is who or what caused the execution, set by ExecutionRequesters for those
	// that show it (the API); nil otherwise.
	Requester *Requester `json:"requested_by,omitempty"`
	// WorkerSelector is the selector in force when the execution was made (its action's or
	// its policy's): only a worker with these labels runs it. Nil for any worker.
	WorkerSelector Labels `json:"worker_selector,omitempty"`
	// TraceID names the trace the execution belongs to: its event's, its workflow's or first
	// attempt's, or its own when requested by hand. Nil for executions older than traces.
	TraceID *string `json:"trace_id"`
}

// WorkflowID is the workflow that e is a task of, or nil: a rerun also has a parent, but
// runs no task.
func (e Execution) WorkflowID() *int64 {
	if e.TaskName == nil {
		return nil
	}
	return e.ParentID
}

// executionColumns are qualified so that they read the same in statements that join. The
// worker's name is the execution's own copy (migration 00011), kept after the worker's record
// is deleted.
const executionColumns = `execution.id, execution.action_ref, execution.status, execution.parameters, execution.result,
	execution.reason, execution.enforcement, execution.parent, execution.worker, execution.worker_name, execution.timeout_seconds,
	execution.created, execution.updated, execution.started_at, execution.finished_at, execution.admitted, execution.admitted_at,
	execution.attempt, execution.retry_of, execution.retry_at, execution.secrets, execution.task_name, execution.task_item,
	execution.requested_by, execution.worker_selector, execution.trace_id`

func scanExecution(row pgx.Row) (Execution, error) {
	var e Execution
	err := row.Scan(executionDest(&e)...)
	return e, err
}

// executionDest lists where executionColumns scan to, for statements that return more.
func executionDest(e *Execution) []any {
	return []any{&e.ID, &e.ActionRef, &e.Status, &e.Parameters, &e.Result, &e.Reason, &e.EnforcementID, &e.ParentID,
		&e.WorkerID, &e.Worker, &e.TimeoutSeconds, &e.Created, &e.Updated, &e.StartedAt, &e.FinishedAt, &e.Admitted, &e.AdmittedAt,
		&e.Attempt, &e.RetryOf, &e.RetryAt, &e.Secrets, &e.TaskName, &e.TaskItem, &e.RequestedBy, &e.WorkerSelector, &e.TraceID}
}

// ExecutionInsertParams describe an execution row as ExecutionInsert writes it.
type ExecutionInsertParams struct {
	ActionRef      string
	Parameters     json.RawMessage
	EnforcementID  *int64
	ParentID       *int64
	TimeoutSeconds *int
	// Status is requested, or failed (with Reason) when the request was refused up front,
	// such as parameters that do not fit the action.
	Status string
	Reason string
	// Admitted lets the scheduler take the execution at once; leave it false when a policy
	// applies, or when the caller does not know, and admission decides.
	Admitted bool
	// Secrets names the parameters whose values are secret (see Execution.Secrets).
	Secrets []string
}

// ExecutionInsert writes an execution row exactly as described, deciding nothing: no policy,
// no queue. Tests and tools set up rows with it; the pipeline creates every execution with
// ExecutionCreate, which decides its admission as it creates it. An enforcement has at most
// one execution: a second insert for the same enforcement is ErrConflict.
func (q *Queries) ExecutionInsert(ctx context.Context, p ExecutionInsertParams) (Execution, error) {
	status := p.Status
	if status == "" {
		status = ExecutionRequested
	}
	var reason *string
	if p.Reason != "" {
		reason = &p.Reason
	}
	e, err := scanExecution(q.db.QueryRow(ctx, `
		INSERT INTO attune.execution (action, action_ref, status, parameters, reason, enforcement, parent, timeout_seconds, finished_at, admitted, admitted_at,
			secrets)
		VALUES ((SELECT id FROM attune.action WHERE ref = $1), $1, $2, $3, $4, $5, $6, $7,
			CASE WHEN $2 IN ('completed', 'failed', 'cancelled', 'timeout', 'abandoned') THEN now() END, $8,
			CASE WHEN $8 THEN now() END, $9)
		RETURNING `+executionColumns,
		p.ActionRef, status, jsonOr(p.Parameters, "{}"), reason, p.EnforcementID, p.ParentID, p.TimeoutSeconds, p.Admitted, secretNames(p.Secrets)))
	if err != nil {
		return Execution{}, fmt.Errorf("insert execution of %s: %w", p.ActionRef, translate(err))
	}
	return e, nil
}

// secretNames is names for a text[] column that is never null.
func secretNames(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// ExecutionOutcome is what one item of a batch did to its execution: OK reports whether the
// change was made, and Execution is the row after it when it was.
type ExecutionOutcome struct {
	Execution Execution
	OK        bool
}

// ExecutionGet returns execution id.
func (q *Queries) ExecutionGet(ctx context.Context, id int64) (Execution, error) {
	e, err := scanExecution(q.db.QueryRow(ctx, `SELECT `+executionColumns+` FROM attune.execution WHERE id = $1`, id))
	if err != nil {
		return Execution{}, fmt.Errorf("get execution %d: %w", id, translate(err))
	}
	return e, nil
}

// ExecutionFilter narrows ExecutionList; zero fields match everything.
type ExecutionFilter struct {
	Status    string
	ActionRef string
	// RuleRef keeps the executions whose enforcement came from this rule.
	RuleRef string
	// ParentID keeps the children of this execution: a workflow's tasks, or an execution's
	// reruns.
	ParentID *int64
	// RequestedBy keeps what one requester caused (ParseRequestedBy); zero keeps all.
	RequestedBy RequestedByFilter
	Window
}

// ExecutionList returns a page of executions, newest first.
func (q *Queries) ExecutionList(ctx context.Context, f ExecutionFilter, page Page) ([]Execution, int, error) {
	var w where
	if f.Status != "" {
		w.add("status = $%d", f.Status)
	}
	if f.ActionRef != "" {
		w.add("action_ref = $%d", f.ActionRef)
	}
	if f.RuleRef != "" {
		w.add("enforcement IN (SELECT id FROM attune.enforcement WHERE rule_ref = $%d)", f.RuleRef)
	}
	if f.ParentID != nil {
		w.add("parent = $%d", *f.ParentID)
	}
	f.RequestedBy.add(&w)
	w.window(f.Window)
	execs, total, err := list(ctx, q.db, "executions", w.from("attune.execution"), executionColumns, `id DESC`, page, scanExecution, w.args...)
	if err == nil && total == 0 {
		// Nothing found: say so when it is because the requester named is unknown.
		err = q.requesterKnown(ctx, f.RequestedBy)
	}
	return execs, total, err
}

// ExecutionScheduleWaiting moves up to limit of the oldest admitted executions still
// requested to scheduled, oldest first, in one statement, and returns them for dispatch.
// Rows another executor holds are skipped, not waited for. Without a policy an execution is
// created scheduled and never waits here; these are the waiters a policy just admitted, and
// the API's executions.
func (q *Queries) ExecutionScheduleWaiting(ctx context.Context, limit int) ([]Execution, error) {
	return queryAll(ctx, q.db, "schedule waiting executions", scanExecution, scheduleWaitingSQL, limit)
}

// scheduleWaitingSQL calls attune.schedule_waiting (migration 00007), which carries
// the planner settings that keep its plan an ordered walk of execution_waiting_idx.
const scheduleWaitingSQL = `SELECT ` + executionColumns + ` FROM attune.schedule_waiting($1) AS execution`

// ExecutionClaim moves a scheduled execution to running on worker, and reports whether it
// did: the conditional update that keeps an execution from running twice, however often its
// dispatch is delivered and to however many workers.
func (q *Queries) ExecutionClaim(ctx context.Context, id, worker int64) (Execution, bool, error) {
	e, err := scanExecution(q.db.QueryRow(ctx, `
		UPDATE attune.execution SET status = 'running', worker = $2, started_at = now()
		WHERE id = $1 AND status = 'scheduled'
		RETURNING `+executionColumns, id, worker))
	if isNoRows(err) {
		return Execution{}, false, nil
	}
	if err != nil {
		return Execution{}, false, fmt.Errorf("claim execution %d: %w", id, translate(err))
	}
	return e, true, nil
}

// ExecutionClaimParams name an execution and the worker claiming it.
type ExecutionClaimParams struct {
	ID     int64
	Worker int64
}

// ExecutionClaimBatch is ExecutionClaim for many executions in one statement and one commit,
// with an outcome per item in the order given (OK for claimed). An execution named twice is
// claimed once, by its first item; the others find it running, as a second claim would.
func (q *Queries) ExecutionClaimBatch(ctx context.Context, cs []ExecutionClaimParams) ([]ExecutionOutcome, error) {
	ids, workers := make([]int64, len(cs)), make([]int64, len(cs))
	for i, c := range cs {
		ids[i], workers[i] = c.ID, c.Worker
	}
	out := make([]ExecutionOutcome, len(cs))
	// Rows are fed in id order, whatever order the claims came in, so that concurrent batches
	// mostly lock in one order; a deadlock all the same fails the batch, which then runs its
	// items one by one (package coalesce).
	err := scanOrdered(ctx, q.db, out, func(e *ExecutionOutcome) []any { e.OK = true; return executionDest(&e.Execution) }, `
		WITH input AS (
			SELECT DISTINCT ON (id) id, worker, ord
			FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY AS i(id, worker, ord)
			ORDER BY id, ord)
		UPDATE attune.execution SET status = 'running', worker = input.worker, started_at = now()
		FROM input WHERE execution.id = input.id AND execution.status = 'scheduled'
		RETURNING input.ord, `+executionColumns, ids, workers)
	if err != nil {
		return nil, fmt.Errorf("claim %d executions: %w", len(cs), translate(err))
	}
	return out, nil
}
