package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// WorkflowView is a workflow's state as the API shows it: its variables, and each arrival at a
// task with the child executions it ran.
type WorkflowView struct {
	Tasks []WorkflowTaskView `json:"tasks"`
	Vars  json.RawMessage    `json:"vars"`
}

// WorkflowTaskView is one arrival at a task (attune.workflow_task) as the API shows it.
type WorkflowTaskView struct {
	Name       string `json:"name"`
	Seq        int    `json:"seq"`
	Status     string `json:"status"`
	ItemCount  int    `json:"item_count"`
	ItemsEnded int    `json:"items_ended"`
	// Executions are the child executions of every attempt, in item then attempt order; an
	// attempt waiting for its retry delay has none yet.
	Executions []int64 `json:"executions"`
	// Nested is set when the task's action is itself a workflow: each of its executions has a
	// view of its own.
	Nested bool            `json:"nested,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// WorkflowViewGet returns the view of workflow execution id, read in one statement so that
// its variables and tasks agree; ErrNotFound when id has no workflow state (it is no workflow,
// or it has not started yet).
func (q *Queries) WorkflowViewGet(ctx context.Context, id int64) (WorkflowView, error) {
	var v WorkflowView
	var tasks []byte
	err := q.db.QueryRow(ctx, `
		SELECT w.vars, coalesce((
			SELECT json_agg(json_build_object('name', t.name, 'seq', t.seq, 'status', t.status, 'item_count', t.item_count,
				'items_ended', t.items_ended, 'result', t.result, 'executions', coalesce(c.executions, '{}'),
				'nested', coalesce(c.nested, false)) ORDER BY t.id)
			FROM attune.workflow_task t
			LEFT JOIN LATERAL (
				SELECT array_agg(i.execution ORDER BY i.item, i.attempt) AS executions,
					bool_or(a.runner_type = 'workflow') AS nested
				FROM attune.workflow_item i
				JOIN attune.execution e ON e.id = i.execution
				LEFT JOIN attune.action a ON a.id = e.action
				WHERE i.task = t.id) c ON true
			WHERE t.workflow = w.execution), '[]')
		FROM attune.workflow w WHERE w.execution = $1`, id).Scan(&v.Vars, &tasks)
	if err != nil {
		return WorkflowView{}, fmt.Errorf("get workflow %d: %w", id, translate(err))
	}
	if err := json.Unmarshal(tasks, &v.Tasks); err != nil {
		return WorkflowView{}, fmt.Errorf("decode the tasks of workflow %d: %w", id, err)
	}
	for i, t := range v.Tasks {
		if string(t.Result) == "null" {
			v.Tasks[i].Result = nil // not ended yet
		}
	}
	return v, nil
}
