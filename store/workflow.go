package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Workflow task and item statuses (attune.workflow_task, attune.workflow_item). A task waits
// for its join or its delay, runs while any of its items does, and ends with an outcome; the
// outcomes are those package modules/workflow's status functions read.
const (
	TaskWaiting   = "waiting"
	TaskRunning   = "running"
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
	TaskTimedOut  = "timed_out"
	TaskCancelled = "cancelled"
)

// Workflow is a row of attune.workflow with what it reads of its execution: the state one
// workflow execution advances through.
type Workflow struct {
	Execution  int64
	Definition json.RawMessage
	Vars       json.RawMessage
	// Failing says why the workflow will fail once its running tasks end; nil while it may
	// still succeed.
	Failing *string
	// Status and Input are the workflow execution's status and parameters.
	Status string
	Input  json.RawMessage
	// Secrets names the workflow's secret parameters.
	Secrets []string
	// ActionRef is the workflow's action, and RequestedBy the identity that requested it:
	// its templates read the keys of the action's pack and of that identity.
	ActionRef   string
	RequestedBy *int64
}

// WorkflowTask is one arrival at a task of a workflow (attune.workflow_task).
type WorkflowTask struct {
	ID       int64           `json:"id"`
	Workflow int64           `json:"-"`
	Name     string          `json:"name"`
	Seq      int             `json:"seq"`
	Status   string          `json:"status"`
	Arrivals int             `json:"arrivals"`
	StartAt  *time.Time      `json:"start_at,omitempty"`
	Items    json.RawMessage `json:"-"`
	// ItemCount is how many runs the task makes: its items, or 1.
	ItemCount  int             `json:"item_count"`
	NextItem   int             `json:"next_item"`
	ItemsEnded int             `json:"items_ended"`
	Result     json.RawMessage `json:"result,omitempty"`
	Created    time.Time       `json:"created"`
	Updated    time.Time       `json:"updated"`
}

// WorkflowItem is one attempt of one run of a task's action (attune.workflow_item).
type WorkflowItem struct {
	Task    int64 `json:"-"`
	Item    int   `json:"item"`
	Attempt int   `json:"attempt"`
	// Execution is the child execution; nil while the attempt waits for StartAt.
	Execution *int64          `json:"execution_id"`
	Status    string          `json:"status"`
	StartAt   *time.Time      `json:"start_at,omitempty"`
	Result    json.RawMessage `json:"-"`
}

// EndedItem is a running item whose child execution has ended and whose ending the workflow
// has not taken in yet.
type EndedItem struct {
	WorkflowItem
	TaskName string
	Child    Execution
}

// WorkflowCreate records the start of workflow execution id, and reports whether this call
// did (false: another executor started it).
func (q *Queries) WorkflowCreate(ctx context.Context, id int64, definition, vars json.RawMessage) (bool, error) {
	tag, err := q.db.Exec(ctx, `INSERT INTO attune.workflow (execution, definition, vars) VALUES ($1, $2, $3)
		ON CONFLICT (execution) DO NOTHING`, id, definition, jsonOr(vars, "{}"))
	if err != nil {
		return false, fmt.Errorf("create workflow %d: %w", id, translate(err))
	}
	return tag.RowsAffected() == 1, nil
}

// WorkflowLock locks workflow id for the rest of the transaction and returns it: every step
// of one workflow is decided under this lock, by whichever executor holds it.
//
// The row is locked first and read in a statement of its own: a statement that waited for
// the lock would read the execution's status as it was before the wait (READ COMMITTED
// re-reads only the locked row), and miss a pause or cancel committed meanwhile.
func (q *Queries) WorkflowLock(ctx context.Context, id int64) (Workflow, error) {
	if _, err := q.db.Exec(ctx, `SELECT 1 FROM attune.workflow WHERE execution = $1 FOR UPDATE`, id); err != nil {
		return Workflow{}, fmt.Errorf("lock workflow %d: %w", id, translate(err))
	}
	return q.WorkflowGet(ctx, id)
}

// WorkflowTransition is ExecutionTransition of a workflow's own execution under the
// workflow's lock, as the API pauses, resumes and cancels: a status change never lands in the
// middle of an advance, which would act on the status it read before. An execution that is
// no workflow is moved without it.
func (s *Store) WorkflowTransition(ctx context.Context, t ExecutionTransition) (Execution, bool, error) {
	var e Execution
	var ok bool
	err := s.InTx(ctx, func(q *Queries) error {
		if _, err := q.db.Exec(ctx, `SELECT 1 FROM attune.workflow WHERE execution = $1 FOR UPDATE`, t.ID); err != nil {
			return translate(err)
		}
		var err error
		e, ok, err = q.ExecutionTransition(ctx, t)
		return err
	})
	if err != nil {
		return Execution{}, false, fmt.Errorf("move workflow %d to %s: %w", t.ID, t.To, err)
	}
	return e, ok, nil
}

// WorkflowGet returns workflow id without locking it.
func (q *Queries) WorkflowGet(ctx context.Context, id int64) (Workflow, error) {
	var w Workflow
	err := q.db.QueryRow(ctx, `SELECT w.execution, w.definition, w.vars, w.failing, e.status, e.parameters, e.secrets,
			e.action_ref, e.requested_by
		FROM attune.workflow w JOIN attune.execution e ON e.id = w.execution
		WHERE w.execution = $1`, id).Scan(&w.Execution, &w.Definition, &w.Vars, &w.Failing, &w.Status, &w.Input, &w.Secrets,
		&w.ActionRef, &w.RequestedBy)
	if err != nil {
		return Workflow{}, fmt.Errorf("get workflow %d: %w", id, translate(err))
	}
	return w, nil
}

// WorkflowUpdate writes workflow id's variables and failing reason.
func (q *Queries) WorkflowUpdate(ctx context.Context, id int64, vars json.RawMessage, failing *string) error {
	if _, err := q.db.Exec(ctx, `UPDATE attune.workflow SET vars = $2, failing = $3 WHERE execution = $1`,
		id, jsonOr(vars, "{}"), failing); err != nil {
		return fmt.Errorf("update workflow %d: %w", id, translate(err))
	}
	return nil
}

const workflowTaskColumns = `id, workflow, name, seq, status, arrivals, start_at, items, item_count, next_item, items_ended, result, created, updated`

func scanWorkflowTask(row pgx.Row) (WorkflowTask, error) {
	var t WorkflowTask
	err := row.Scan(&t.ID, &t.Workflow, &t.Name, &t.Seq, &t.Status, &t.Arrivals, &t.StartAt, &t.Items, &t.ItemCount,
		&t.NextItem, &t.ItemsEnded, &t.Result, &t.Created, &t.Updated)
	return t, err
}

// WorkflowTasks returns every task arrival of workflow id, oldest first.
func (q *Queries) WorkflowTasks(ctx context.Context, id int64) ([]WorkflowTask, error) {
	return queryAll(ctx, q.db, fmt.Sprintf("tasks of workflow %d", id), scanWorkflowTask,
		`SELECT `+workflowTaskColumns+` FROM attune.workflow_task WHERE workflow = $1 ORDER BY id`, id)
}

// WorkflowTasksOpen returns what an advance works on: the arrivals of workflow id that are
// waiting or running, and the latest arrival of each task (its seq numbers the next), oldest
// first, without their items and results, which grow with the workflow and which a pass
// reads only where it needs them (WorkflowTaskItems).
func (q *Queries) WorkflowTasksOpen(ctx context.Context, id int64) ([]WorkflowTask, error) {
	return queryAll(ctx, q.db, fmt.Sprintf("open tasks of workflow %d", id), scanWorkflowTask, `
		SELECT id, workflow, name, seq, status, arrivals, start_at, NULL::jsonb, item_count, next_item, items_ended, NULL::jsonb,
			created, updated
		FROM attune.workflow_task
		WHERE workflow = $1 AND (status IN ('waiting', 'running')
			OR id IN (SELECT max(id) FROM attune.workflow_task WHERE workflow = $1 GROUP BY name))
		ORDER BY id`, id)
}

// WorkflowTaskItems returns the items of a task with items, as its start rendered them.
func (q *Queries) WorkflowTaskItems(ctx context.Context, task int64) (json.RawMessage, error) {
	var items json.RawMessage
	if err := q.db.QueryRow(ctx, `SELECT items FROM attune.workflow_task WHERE id = $1`, task).Scan(&items); err != nil {
		return nil, fmt.Errorf("read the items of task %d: %w", task, translate(err))
	}
	return items, nil
}

// WorkflowTaskSetItems records the items a task's start rendered; they are written once.
func (q *Queries) WorkflowTaskSetItems(ctx context.Context, task int64, items json.RawMessage) error {
	if _, err := q.db.Exec(ctx, `UPDATE attune.workflow_task SET items = $2 WHERE id = $1`, task, items); err != nil {
		return fmt.Errorf("record the items of task %d: %w", task, translate(err))
	}
	return nil
}

// WorkflowTaskInsert records an arrival at a task and returns it with its id.
func (q *Queries) WorkflowTaskInsert(ctx context.Context, t WorkflowTask) (WorkflowTask, error) {
	out, err := scanWorkflowTask(q.db.QueryRow(ctx, `
		INSERT INTO attune.workflow_task (workflow, name, seq, status, arrivals, start_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+workflowTaskColumns,
		t.Workflow, t.Name, t.Seq, t.Status, t.Arrivals, t.StartAt))
	if err != nil {
		return WorkflowTask{}, fmt.Errorf("record task %s of workflow %d: %w", t.Name, t.Workflow, translate(err))
	}
	return out, nil
}

// WorkflowTaskUpdate writes t's progress, and its result once it has one; its items are
// written once, by WorkflowTaskSetItems.
func (q *Queries) WorkflowTaskUpdate(ctx context.Context, t WorkflowTask) error {
	_, err := q.db.Exec(ctx, `UPDATE attune.workflow_task SET status = $2, arrivals = $3, start_at = $4,
		item_count = $5, next_item = $6, items_ended = $7, result = coalesce($8, result) WHERE id = $1`,
		t.ID, t.Status, t.Arrivals, t.StartAt, t.ItemCount, t.NextItem, t.ItemsEnded, jsonOrNil(t.Result))
	if err != nil {
		return fmt.Errorf("update task %s of workflow %d: %w", t.Name, t.Workflow, translate(err))
	}
	return nil
}

// WorkflowItemsInsert records attempts. An attempt recorded already is a conflict: the key
// (task, item, attempt) is what keeps one step from starting twice.
func (q *Queries) WorkflowItemsInsert(ctx context.Context, workflow int64, items []WorkflowItem) error {
	if len(items) == 0 {
		return nil
	}
	n := len(items)
	tasks, execs := make([]int64, n), make([]*int64, n)
	nums, attempts := make([]int32, n), make([]int32, n)
	statuses, starts := make([]string, n), make([]*time.Time, n)
	for i, it := range items {
		tasks[i], execs[i], nums[i], attempts[i], statuses[i], starts[i] = it.Task, it.Execution, int32(it.Item), int32(it.Attempt), it.Status, it.StartAt
	}
	_, err := q.db.Exec(ctx, `INSERT INTO attune.workflow_item (task, item, attempt, workflow, execution, status, start_at)
		SELECT task, item, attempt, $1, execution, status, start_at
		FROM unnest($2::bigint[], $3::integer[], $4::integer[], $5::bigint[], $6::text[], $7::timestamptz[])
			AS i(task, item, attempt, execution, status, start_at)`,
		workflow, tasks, nums, attempts, execs, statuses, starts)
	if err != nil {
		return fmt.Errorf("record %d task runs of workflow %d: %w", n, workflow, translate(err))
	}
	return nil
}

// WorkflowItemStarted sets the child execution of an attempt that waited for its delay.
func (q *Queries) WorkflowItemStarted(ctx context.Context, it WorkflowItem) error {
	_, err := q.db.Exec(ctx, `UPDATE attune.workflow_item SET execution = $4, start_at = NULL
		WHERE task = $1 AND item = $2 AND attempt = $3 AND execution IS NULL`, it.Task, it.Item, it.Attempt, it.Execution)
	if err != nil {
		return fmt.Errorf("start item %d of task %d: %w", it.Item, it.Task, translate(err))
	}
	return nil
}

// WorkflowItemEnd records the outcome of an attempt, and reports whether this call did: an
// attempt taken in already is not taken in twice.
func (q *Queries) WorkflowItemEnd(ctx context.Context, it WorkflowItem) (bool, error) {
	tag, err := q.db.Exec(ctx, `UPDATE attune.workflow_item SET status = $4, result = $5, start_at = NULL
		WHERE task = $1 AND item = $2 AND attempt = $3 AND status = 'running'`,
		it.Task, it.Item, it.Attempt, it.Status, jsonOrNil(it.Result))
	if err != nil {
		return false, fmt.Errorf("end item %d of task %d: %w", it.Item, it.Task, translate(err))
	}
	return tag.RowsAffected() == 1, nil
}

const workflowItemColumns = `i.task, i.item, i.attempt, i.execution, i.status, i.start_at, i.result`

func workflowItemDest(it *WorkflowItem) []any {
	return []any{&it.Task, &it.Item, &it.Attempt, &it.Execution, &it.Status, &it.StartAt, &it.Result}
}

// WorkflowItemsEnded returns the running attempts of workflow id whose child execution has
// ended, in the order they ended.
func (q *Queries) WorkflowItemsEnded(ctx context.Context, id int64) ([]EndedItem, error) {
	return queryAll(ctx, q.db, fmt.Sprintf("ended task runs of workflow %d", id), func(row pgx.Row) (EndedItem, error) {
		var e EndedItem
		err := row.Scan(append(append(workflowItemDest(&e.WorkflowItem), &e.TaskName), executionDest(&e.Child)...)...)
		return e, err
	}, `SELECT `+workflowItemColumns+`, t.name, `+executionColumns+`
		FROM attune.workflow_item i
		JOIN attune.workflow_task t ON t.id = i.task
		JOIN attune.execution ON execution.id = i.execution
		WHERE i.workflow = $1 AND i.status = 'running'
			AND execution.status IN ('completed', 'failed', 'cancelled', 'timeout', 'abandoned')
		ORDER BY execution.finished_at, execution.id`, id)
}

// WorkflowItemsRunning returns the attempts of workflow id still running or waiting to.
func (q *Queries) WorkflowItemsRunning(ctx context.Context, id int64) ([]WorkflowItem, error) {
	return queryAll(ctx, q.db, fmt.Sprintf("running task runs of workflow %d", id), func(row pgx.Row) (WorkflowItem, error) {
		var it WorkflowItem
		err := row.Scan(workflowItemDest(&it)...)
		return it, err
	}, `SELECT `+workflowItemColumns+` FROM attune.workflow_item i WHERE i.workflow = $1 AND i.status = 'running'
		ORDER BY i.task, i.item, i.attempt`, id)
}

// WorkflowItems returns every attempt of workflow id, by task, item and attempt.
func (q *Queries) WorkflowItems(ctx context.Context, id int64) ([]WorkflowItem, error) {
	return queryAll(ctx, q.db, fmt.Sprintf("task runs of workflow %d", id), func(row pgx.Row) (WorkflowItem, error) {
		var it WorkflowItem
		err := row.Scan(workflowItemDest(&it)...)
		return it, err
	}, `SELECT `+workflowItemColumns+` FROM attune.workflow_item i WHERE i.workflow = $1 ORDER BY i.task, i.item, i.attempt`, id)
}

// WorkflowItemsDrop ends the attempts of workflow id still waiting for their delay, cancelled:
// the workflow ended without them.
func (q *Queries) WorkflowItemsDrop(ctx context.Context, id int64) error {
	if _, err := q.db.Exec(ctx, `UPDATE attune.workflow_item SET status = 'cancelled', start_at = NULL
		WHERE workflow = $1 AND status = 'running' AND execution IS NULL`, id); err != nil {
		return fmt.Errorf("drop the waiting attempts of workflow %d: %w", id, translate(err))
	}
	return nil
}

// WorkflowTaskLastAttempts returns the last attempt of each item of task, in item order.
func (q *Queries) WorkflowTaskLastAttempts(ctx context.Context, task int64) ([]WorkflowItem, error) {
	return queryAll(ctx, q.db, fmt.Sprintf("last attempts of task %d", task), func(row pgx.Row) (WorkflowItem, error) {
		var it WorkflowItem
		err := row.Scan(workflowItemDest(&it)...)
		return it, err
	}, `SELECT DISTINCT ON (i.item) `+workflowItemColumns+` FROM attune.workflow_item i WHERE i.task = $1
		ORDER BY i.item, i.attempt DESC`, task)
}

// ExecutionMarkTasks records on child executions the task and item they run, and clears the
// retry their action or policy would plan: in a workflow, the task's retry governs.
func (q *Queries) ExecutionMarkTasks(ctx context.Context, ids []int64, names []string, items []*int32) error {
	_, err := q.db.Exec(ctx, `UPDATE attune.execution e SET task_name = m.name, task_item = m.item, retry = NULL
		FROM unnest($1::bigint[], $2::text[], $3::integer[]) AS m(id, name, item) WHERE e.id = m.id`, ids, names, items)
	if err != nil {
		return fmt.Errorf("mark %d executions as workflow tasks: %w", len(ids), translate(err))
	}
	return nil
}

// WorkflowsDue returns up to limit workflows with a delayed task or attempt due to start.
func (q *Queries) WorkflowsDue(ctx context.Context, limit int) ([]int64, error) {
	// Only a running workflow that is not failing starts anything: a paused one starts what is
	// due when it resumes, and the advance its resume asks for does that.
	return queryAll(ctx, q.db, "due workflows", scanID, `
		SELECT d.workflow FROM (
			SELECT workflow, start_at FROM attune.workflow_task WHERE status = 'waiting' AND start_at <= now()
			UNION ALL
			SELECT workflow, start_at FROM attune.workflow_item WHERE status = 'running' AND execution IS NULL AND start_at <= now()
		) d
		JOIN attune.workflow w ON w.execution = d.workflow AND w.failing IS NULL
		JOIN attune.execution e ON e.id = d.workflow AND e.status = 'running'
		GROUP BY d.workflow ORDER BY min(d.start_at) LIMIT $1`, limit)
}

// WorkflowsStalled returns up to limit workflows that have not taken in a child's ending for
// longer than after (its completion message was lost, or its ending sent none), workflows
// asked to pause or cancel whose request has waited as long, and running workflows with
// nothing running or planned for as long (resumed, and the request lost).
func (q *Queries) WorkflowsStalled(ctx context.Context, after time.Duration, limit int) ([]int64, error) {
	// Each kind is bounded on its own, so that many of one kind cannot crowd out another.
	return queryAll(ctx, q.db, "stalled workflows", scanID, `
		(SELECT DISTINCT i.workflow FROM attune.workflow_item i JOIN attune.execution e ON e.id = i.execution
		WHERE i.status = 'running' AND e.status IN ('completed', 'failed', 'cancelled', 'timeout', 'abandoned')
			AND e.updated < now() - $1::interval
		LIMIT $2)
		UNION
		(SELECT w.execution FROM attune.workflow w JOIN attune.execution e ON e.id = w.execution
		WHERE e.status IN ('pausing', 'canceling') AND e.updated < now() - $1::interval
		ORDER BY e.updated LIMIT $2)
		UNION
		-- Running with nothing of it running or planned: a resume whose request was lost.
		(SELECT w.execution FROM attune.workflow w JOIN attune.execution e ON e.id = w.execution
		WHERE e.status = 'running' AND e.updated < now() - $1::interval
			AND NOT EXISTS (SELECT 1 FROM attune.workflow_item i WHERE i.workflow = w.execution AND i.status = 'running')
			AND NOT EXISTS (SELECT 1 FROM attune.workflow_task t WHERE t.workflow = w.execution AND t.status = 'waiting'
				AND t.start_at > now())
		ORDER BY e.updated LIMIT $2)`, after, limit)
}

func scanID(row pgx.Row) (int64, error) {
	var id int64
	err := row.Scan(&id)
	return id, err
}

// WorkflowRerun is a rerun of a failed workflow from some of its tasks.
type WorkflowRerun struct {
	// Source is the workflow rerun; Tasks are the tasks the rerun starts from.
	Source int64
	Tasks  []string
}

// ExecutionCreateRerun creates p, a rerun of workflow rerun.Source that starts from
// rerun.Tasks and keeps what succeeded, with what it reruns recorded in the same transaction:
// the executor that starts it finds it.
func (s *Store) ExecutionCreateRerun(ctx context.Context, p ExecutionCreateParams, rerun WorkflowRerun) (ExecutionCreated, error) {
	var out ExecutionCreated
	err := s.InTx(ctx, func(q *Queries) error {
		var err error
		if out, err = q.ExecutionCreateOne(ctx, p); err != nil {
			return err
		}
		if _, err = q.db.Exec(ctx, `INSERT INTO attune.workflow_rerun (execution, source, tasks) VALUES ($1, $2, $3)`,
			out.Execution.ID, rerun.Source, rerun.Tasks); err != nil {
			return translate(err)
		}
		return q.audit(ctx, requestRecord(out, rerun.Tasks))
	})
	if err != nil {
		return ExecutionCreated{}, fmt.Errorf("create a rerun of workflow %d: %w", rerun.Source, err)
	}
	return out, nil
}

// WorkflowRerunOf returns what execution id reruns, ErrNotFound when it reruns nothing.
func (q *Queries) WorkflowRerunOf(ctx context.Context, id int64) (WorkflowRerun, error) {
	var r WorkflowRerun
	err := q.db.QueryRow(ctx, `SELECT source, tasks FROM attune.workflow_rerun WHERE execution = $1`, id).Scan(&r.Source, &r.Tasks)
	if err != nil {
		return WorkflowRerun{}, fmt.Errorf("read the rerun of execution %d: %w", id, translate(err))
	}
	return r, nil
}

// WorkflowCarryOver copies into workflow to what a rerun of workflow from keeps: the tasks
// that succeeded, with their results, and the arrivals that never started (a join still
// gathering, a delay, what the failure left), as waiting ones with no start set. It returns
// the copies.
func (q *Queries) WorkflowCarryOver(ctx context.Context, from, to int64) ([]WorkflowTask, error) {
	return queryAll(ctx, q.db, fmt.Sprintf("carry over the tasks of workflow %d", from), scanWorkflowTask, `
		INSERT INTO attune.workflow_task (workflow, name, seq, status, arrivals, items, item_count, next_item, items_ended, result)
		SELECT $2, name, seq, CASE WHEN status = 'succeeded' THEN status ELSE 'waiting' END, arrivals,
			CASE WHEN status = 'succeeded' THEN items END, item_count,
			CASE WHEN status = 'succeeded' THEN next_item ELSE 0 END, CASE WHEN status = 'succeeded' THEN items_ended ELSE 0 END,
			CASE WHEN status = 'succeeded' THEN result END
		FROM attune.workflow_task
		WHERE workflow = $1 AND (status = 'succeeded' OR status IN ('waiting', 'cancelled') AND next_item = 0)
		ORDER BY id
		RETURNING `+workflowTaskColumns, from, to)
}
