package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/attune-go/attune/store"
)

// Workflow is the state of one workflow execution, for FillWorkflow to write as the executor
// would have left it: tests of what shows and steers a workflow set it up without running one.
// JSON is given as strings.
type Workflow struct {
	// ActionRef names the workflow's action; Parameters and Secrets are its execution's.
	ActionRef  string
	Parameters string
	Secrets    []string
	// Status is the workflow execution's; running when empty.
	Status string
	// Definition is what the workflow started with; {} when empty.
	Definition string
	Vars       string
	Tasks      []WorkflowTask
}

// WorkflowTask is one arrival at a task.
type WorkflowTask struct {
	Name string
	// Status is one of store's Task statuses; running when empty.
	Status string
	// Items makes it a task with items, one run per item; without, it runs once.
	Items  []any
	Result string
	// Children are its attempts, each a child execution.
	Children []WorkflowChild
}

// WorkflowChild is one attempt of one item of a task: a child execution.
type WorkflowChild struct {
	// ActionRef is its action; Nested, when set, makes it a workflow of its own (whose
	// ActionRef and Status win).
	ActionRef string
	Nested    *Workflow
	Item      int
	// Attempt counts from 1; 0 is 1.
	Attempt int
	// Status is the execution's; requested when empty. An ended one is taken in: its attempt
	// holds its outcome.
	Status string
}

// FilledWorkflow names what FillWorkflow wrote.
type FilledWorkflow struct {
	ID int64
	// Children holds each task's child execution ids, in the order given.
	Children [][]int64
	// Nested holds what was written of the children that are workflows, by their ids.
	Nested map[int64]FilledWorkflow
}

// FillWorkflow writes w in one transaction and returns its ids.
func FillWorkflow(tb testing.TB, s *store.Store, w Workflow) FilledWorkflow {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out FilledWorkflow
	err := s.InTx(ctx, func(q *store.Queries) error {
		var err error
		out, err = fillWorkflow(ctx, q, w, nil)
		return err
	})
	if err != nil {
		tb.Fatalf("fill workflow of %s: %v", w.ActionRef, err)
	}
	return out
}

// fillWorkflow writes w, as a task's execution of workflow parent when it is set.
func fillWorkflow(ctx context.Context, q *store.Queries, w Workflow, parent *int64) (FilledWorkflow, error) {
	exec, err := startWorkflow(ctx, q, w, parent)
	if err != nil {
		return FilledWorkflow{}, err
	}
	out := FilledWorkflow{ID: exec.ID, Children: make([][]int64, len(w.Tasks)), Nested: map[int64]FilledWorkflow{}}
	if _, err := q.WorkflowCreate(ctx, exec.ID, raw(cmp.Or(w.Definition, "{}")), raw(w.Vars)); err != nil {
		return out, err
	}
	seq := map[string]int{}
	for i, t := range w.Tasks {
		seq[t.Name]++
		if out.Children[i], err = fillTask(ctx, q, &out, seq[t.Name], t); err != nil {
			return out, err
		}
	}
	return out, nil
}

// startWorkflow writes w's execution as started, moved on to w.Status.
func startWorkflow(ctx context.Context, q *store.Queries, w Workflow, parent *int64) (store.Execution, error) {
	exec, err := q.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: w.ActionRef, Parameters: raw(w.Parameters),
		Status: store.ExecutionScheduled, Admitted: true, Secrets: w.Secrets, ParentID: parent})
	if err != nil {
		return exec, err
	}
	for _, to := range []string{store.ExecutionRunning, cmp.Or(w.Status, store.ExecutionRunning)} {
		if to == exec.Status {
			continue
		}
		moved, ok, err := q.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{exec.Status}, To: to})
		if err != nil {
			return exec, err
		}
		if !ok {
			return exec, fmt.Errorf("move workflow %d from %s to %s: refused", exec.ID, exec.Status, to)
		}
		exec = moved
	}
	return exec, nil
}

// fillTask writes one arrival at a task of workflow wf, and its children.
func fillTask(ctx context.Context, q *store.Queries, wf *FilledWorkflow, seq int, t WorkflowTask) ([]int64, error) {
	id := wf.ID
	row, err := q.WorkflowTaskInsert(ctx, store.WorkflowTask{Workflow: id, Name: t.Name, Seq: seq, Status: store.TaskWaiting, Arrivals: 1})
	if err != nil {
		return nil, err
	}
	row.Status, row.ItemCount, row.Result = cmp.Or(t.Status, store.TaskRunning), 1, raw(t.Result)
	if t.Items != nil {
		if row.Items, err = json.Marshal(t.Items); err != nil {
			return nil, err
		}
		row.ItemCount = len(t.Items)
	}
	ids, names, items := make([]int64, len(t.Children)), make([]string, len(t.Children)), make([]*int32, len(t.Children))
	attempts := make([]store.WorkflowItem, len(t.Children))
	ended := map[int]bool{}
	for i, c := range t.Children {
		child, err := fillChild(ctx, q, wf, c)
		if err != nil {
			return nil, err
		}
		ids[i], names[i] = child.ID, t.Name
		if t.Items != nil {
			n := int32(c.Item)
			items[i] = &n
		}
		attempts[i] = store.WorkflowItem{Task: row.ID, Item: c.Item, Attempt: max(c.Attempt, 1), Execution: &ids[i], Status: outcome(child.Status)}
		ended[c.Item] = attempts[i].Status != store.TaskRunning // the last attempt of an item says
		row.NextItem = max(row.NextItem, c.Item+1)
	}
	for _, e := range ended {
		if e {
			row.ItemsEnded++
		}
	}
	if err := q.ExecutionMarkTasks(ctx, ids, names, items); err != nil {
		return nil, err
	}
	if err := q.WorkflowItemsInsert(ctx, id, attempts); err != nil {
		return nil, err
	}
	return ids, q.WorkflowTaskUpdate(ctx, row)
}

// fillChild writes the execution of attempt c of a task of workflow wf.
func fillChild(ctx context.Context, q *store.Queries, wf *FilledWorkflow, c WorkflowChild) (store.Execution, error) {
	if c.Nested == nil {
		return q.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: c.ActionRef, ParentID: &wf.ID,
			Status: cmp.Or(c.Status, store.ExecutionRequested), Admitted: true})
	}
	nested, err := fillWorkflow(ctx, q, *c.Nested, &wf.ID)
	if err != nil {
		return store.Execution{}, err
	}
	wf.Nested[nested.ID] = nested
	return q.ExecutionGet(ctx, nested.ID)
}

// outcome is the status of an attempt whose child is in status: running until it ends, then
// the outcome the executor records when it takes the ending in.
func outcome(status string) string {
	switch status {
	case store.ExecutionCompleted:
		return store.TaskSucceeded
	case store.ExecutionTimeout:
		return store.TaskTimedOut
	case store.ExecutionCancelled:
		return store.TaskCancelled
	case store.ExecutionFailed, store.ExecutionAbandoned:
		return store.TaskFailed
	}
	return store.TaskRunning
}

func raw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// WorkflowAction is an action of runner workflow, with parameters (a parameter schema as
// stored) and an empty definition, for a test to register with a pack.
func WorkflowAction(ref, parameters string) store.Action {
	return store.Action{Ref: ref, RunnerType: "workflow", OutputFormat: "json", TimeoutSeconds: 600, Enabled: true,
		Parameters: raw(cmp.Or(parameters, "{}")), Workflow: json.RawMessage(`{}`)}
}
