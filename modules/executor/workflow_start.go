package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/attune-go/attune/modules/workflow"
	"github.com/attune-go/attune/store"
)

// startDue starts the tasks whose arrivals are complete and whose delay is over, the next
// items of running tasks as their concurrency allows, and the retries whose delay is over.
func (f *flow) startDue(ctx context.Context) error {
	if !f.accepting() {
		return nil
	}
	// By index, not range: a task that ends as it starts (no items) may lead to arrivals,
	// appended here, that are due now too.
	for i := 0; i < len(f.tasks); i++ {
		t := &f.tasks[i]
		if t.Status == store.TaskWaiting && t.StartAt != nil && !t.StartAt.After(f.now) {
			if err := f.startTask(ctx, t); err != nil {
				return err
			}
		}
	}
	for i := range f.tasks {
		if t := &f.tasks[i]; t.Status == store.TaskRunning {
			f.startItems(t)
		}
	}
	running, err := f.q.WorkflowItemsRunning(ctx, f.wf.Execution)
	if err != nil {
		return err
	}
	for _, it := range running {
		if it.Execution == nil && it.StartAt != nil && !it.StartAt.After(f.now) {
			if t := f.task(it.Task); t != nil {
				f.queued = append(f.queued, attemptStart{task: t, item: it.Item, attempt: it.Attempt, delayed: true})
			}
		}
	}
	return nil
}

// startTask starts a task: its items are rendered (a task without items has one), and as
// many start as its concurrency allows. Items that do not render fail the task.
func (f *flow) startTask(ctx context.Context, t *store.WorkflowTask) error {
	def := f.def.Task(t.Name)
	t.Status = store.TaskRunning
	f.dirty[t.ID] = true
	if def.With != nil {
		items, err := workflow.RenderItems(def, f.scope())
		if err != nil {
			return f.decide(ctx, t, def, workflow.OutcomeFailed, map[string]any{"error": err.Error()})
		}
		raw, err := json.Marshal(items)
		if err != nil {
			return fmt.Errorf("encode the items of task %s: %w", t.Name, err)
		}
		if err := f.q.WorkflowTaskSetItems(ctx, t.ID, raw); err != nil {
			return err
		}
		t.Items, t.ItemCount = raw, len(items)
		if len(items) == 0 {
			return f.decide(ctx, t, def, workflow.OutcomeSucceeded, []any{})
		}
	}
	f.startItems(t)
	return nil
}

// startItems queues the next items of t while its concurrency allows. An item counts as
// running from its start until its last attempt ends, retries' delays included.
func (f *flow) startItems(t *store.WorkflowTask) {
	def := f.def.Task(t.Name)
	limit := 0
	if def != nil && def.With != nil {
		limit = def.With.Concurrency
	}
	for t.NextItem < t.ItemCount && (limit == 0 || t.NextItem-t.ItemsEnded < limit) {
		f.queued = append(f.queued, attemptStart{task: t, item: t.NextItem, attempt: 1})
		t.NextItem++
		f.dirty[t.ID] = true
	}
}

// createChildren creates the child executions of the queued attempts, their admission decided
// under their policies as any execution's, and reports whether any ended as it was created
// (refused by its policy, or its parameters did not fit), to be taken in.
func (f *flow) createChildren(ctx context.Context) (bool, error) {
	if len(f.queued) == 0 {
		return false, nil
	}
	queued := f.queued
	f.queued = nil
	items := map[int64][]any{}
	creates := make([]store.ExecutionCreateParams, len(queued))
	for i, a := range queued {
		def := f.def.Task(a.task.Name)
		s := f.scope()
		if def.With != nil {
			list, ok := items[a.task.ID]
			if !ok {
				if a.task.Items == nil {
					var err error
					if a.task.Items, err = f.q.WorkflowTaskItems(ctx, a.task.ID); err != nil {
						return false, err
					}
				}
				if err := json.Unmarshal(a.task.Items, &list); err != nil {
					return false, fmt.Errorf("decode the items of task %s: %w", a.task.Name, err)
				}
				items[a.task.ID] = list
			}
			s.Item, s.Index = list[a.item], a.item
		}
		var create store.ExecutionCreateParams
		input, err := workflow.RenderInput(def, s)
		if err == nil {
			var raw []byte
			if raw, err = json.Marshal(input); err != nil {
				return false, fmt.Errorf("encode the input of task %s: %w", a.task.Name, err)
			}
			if create, _, err = f.m.executionFor(ctx, f.action, f.q.KeyLookup, f.wf.RequestedBy, def.Action, raw, f.inheritedSecrets(input)); err != nil {
				return false, err
			}
		} else {
			create = store.ExecutionCreateParams{ActionRef: def.Action, Refusal: fmt.Sprintf("task %s: %v", a.task.Name, err)}
		}
		create.ParentID, create.RequestedBy = &f.wf.Execution, f.wf.RequestedBy
		if def.TimeoutSeconds > 0 {
			create.TimeoutSeconds = &def.TimeoutSeconds
		}
		creates[i] = create
	}
	created, err := f.q.ExecutionCreate(ctx, creates)
	if err != nil {
		return false, err
	}
	ids, names, itemNums := make([]int64, len(queued)), make([]string, len(queued)), make([]*int32, len(queued))
	var rows []store.WorkflowItem
	again := false
	for i, a := range queued {
		e := created[i].Execution
		ids[i], names[i] = e.ID, a.task.Name
		e.TaskName = &names[i]
		if def := f.def.Task(a.task.Name); def.With != nil {
			n, item := int32(a.item), a.item
			itemNums[i], e.TaskItem = &n, &item
		}
		row := store.WorkflowItem{Task: a.task.ID, Item: a.item, Attempt: a.attempt, Execution: &ids[i], Status: store.TaskRunning}
		if a.delayed {
			if err := f.q.WorkflowItemStarted(ctx, row); err != nil {
				return false, err
			}
		} else {
			rows = append(rows, row)
		}
		f.created = append(f.created, e)
		switch {
		case created[i].Outcome == store.CreateAdmitted:
			f.admitted = append(f.admitted, e)
		case store.IsTerminal(e.Status):
			again = true
		}
	}
	if err := f.q.ExecutionMarkTasks(ctx, ids, names, itemNums); err != nil {
		return false, err
	}
	return again, f.q.WorkflowItemsInsert(ctx, f.wf.Execution, rows)
}

// cancelChildren stops what a cancelled workflow runs: children that have not started end
// cancelled (and are taken in on the next round), running ones are asked to stop, delayed
// attempts and waiting tasks are dropped. It reports whether any child ended.
func (f *flow) cancelChildren(ctx context.Context) (bool, error) {
	running, err := f.q.WorkflowItemsRunning(ctx, f.wf.Execution)
	if err != nil {
		return false, err
	}
	// Each child is moved by whichever of the two transitions fits its status, all in one
	// batch, which locks their queues in id order as every writer does.
	var moves []store.ExecutionTransition
	for _, it := range running {
		if it.Execution == nil {
			it.Status = workflow.OutcomeCancelled
			if _, err := f.q.WorkflowItemEnd(ctx, it); err != nil {
				return false, err
			}
			continue
		}
		moves = append(moves, store.ExecutionTransition{
			ID: *it.Execution, From: []string{store.ExecutionRequested, store.ExecutionScheduling, store.ExecutionScheduled},
			To: store.ExecutionCancelled, Reason: "its workflow was cancelled before it ran",
		}, store.ExecutionTransition{
			ID: *it.Execution, From: []string{store.ExecutionRunning, store.ExecutionPausing, store.ExecutionPaused}, To: store.ExecutionCanceling,
		})
	}
	ended := false
	if len(moves) > 0 {
		outcomes, err := f.q.ExecutionTransitionBatch(ctx, moves)
		if err != nil {
			return false, err
		}
		for i, o := range outcomes {
			switch {
			case !o.OK:
			case moves[i].To == store.ExecutionCancelled:
				f.ended, ended = append(f.ended, o.Execution), true
			default:
				f.changed = append(f.changed, o.Execution)
				f.stopping = append(f.stopping, o.Execution)
			}
		}
	}
	for i := range f.tasks {
		if t := &f.tasks[i]; t.Status == store.TaskWaiting {
			t.Status = store.TaskCancelled
			f.dirty[t.ID] = true
		}
	}
	return ended, nil
}

// save writes the tasks and variables this pass changed.
func (f *flow) save(ctx context.Context) error {
	for i := range f.tasks {
		if t := f.tasks[i]; f.dirty[t.ID] {
			if err := f.q.WorkflowTaskUpdate(ctx, t); err != nil {
				return err
			}
		}
	}
	if !f.saveVars {
		return nil
	}
	raw, err := json.Marshal(f.vars)
	if err != nil {
		return fmt.Errorf("encode the variables of workflow %d: %w", f.wf.Execution, err)
	}
	return f.q.WorkflowUpdate(ctx, f.wf.Execution, raw, f.wf.Failing)
}

// settle moves the workflow on once nothing of it runs: a pausing one is paused, a cancelled
// one ends cancelled, a failing one failed, and one with nothing left to start succeeds with
// its output.
func (f *flow) settle(ctx context.Context) error {
	running, err := f.q.WorkflowItemsRunning(ctx, f.wf.Execution)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(running, func(it store.WorkflowItem) bool { return it.Execution != nil }) {
		return nil
	}
	self := store.Execution{ID: f.wf.Execution}
	switch {
	case f.wf.Status == store.ExecutionCanceling:
		return f.end(ctx, self, store.ExecutionCancelled, nil, "cancelled")
	case f.wf.Failing != nil:
		return f.end(ctx, self, store.ExecutionFailed, map[string]any{"error": *f.wf.Failing}, *f.wf.Failing)
	case f.wf.Status == store.ExecutionPausing:
		paused, ok, err := f.q.ExecutionTransition(ctx, store.ExecutionTransition{
			ID: f.wf.Execution, From: []string{store.ExecutionPausing}, To: store.ExecutionPaused,
		})
		if ok {
			f.changed = append(f.changed, paused)
		}
		return err
	case f.wf.Status == store.ExecutionPaused:
		return nil
	}
	if len(running) > 0 {
		return nil // attempts waiting for their delay
	}
	for _, t := range f.tasks {
		if t.Status == store.TaskRunning || t.Status == store.TaskWaiting && t.StartAt != nil {
			return nil
		}
	}
	s := f.scope()
	output, err := workflow.RenderOutput(f.def, s)
	if err != nil {
		reason := fmt.Sprintf("render output: %v", err)
		return f.end(ctx, self, store.ExecutionFailed, map[string]any{"error": reason}, reason)
	}
	return f.end(ctx, self, store.ExecutionCompleted, output, "")
}

// end ends the workflow execution e with status, its result and reason. Tasks that never
// started (a join whose branches were not all taken, or what a failure or cancel left) are
// recorded cancelled.
func (f *flow) end(ctx context.Context, e store.Execution, status string, result any, reason string) error {
	var raw json.RawMessage
	if result != nil {
		var err error
		if raw, err = json.Marshal(result); err != nil {
			return fmt.Errorf("encode the result of workflow %d: %w", e.ID, err)
		}
	}
	ended, ok, err := f.q.ExecutionTransition(ctx, store.ExecutionTransition{
		ID: e.ID, From: []string{store.ExecutionRunning, store.ExecutionPausing, store.ExecutionPaused, store.ExecutionCanceling},
		To: status, Result: raw, Reason: reason,
	})
	if err != nil || !ok {
		return err
	}
	f.ended = append(f.ended, ended)
	if err := f.q.WorkflowItemsDrop(ctx, e.ID); err != nil {
		return err
	}
	for i := range f.tasks {
		if t := &f.tasks[i]; t.Status == store.TaskWaiting || t.Status == store.TaskRunning {
			t.Status = store.TaskCancelled
			if err := f.q.WorkflowTaskUpdate(ctx, *t); err != nil {
				return err
			}
		}
	}
	return nil
}

// inheritedSecrets names the parameters of a child whose values carry one of the workflow's
// secret values: they are secret on the child too, masked wherever it is shown.
func (f *flow) inheritedSecrets(input map[string]any) []string {
	var secrets []string
	for _, name := range f.wf.Secrets {
		if v, ok := f.input[name]; ok && v != nil {
			if text := valueText(v); text != "" {
				secrets = append(secrets, text)
			}
		}
	}
	if len(secrets) == 0 {
		return nil
	}
	var names []string
	for name, v := range input {
		text := valueText(v)
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				names = append(names, name)
				break
			}
		}
	}
	slices.Sort(names)
	return names
}

// valueText is a parameter's value as text: a string as it is, anything else as JSON.
func valueText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
