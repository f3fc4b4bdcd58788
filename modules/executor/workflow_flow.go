package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/attune-go/attune/modules/workflow"
	"github.com/attune-go/attune/store"
)

// flow is one transaction's work on one workflow, under its lock: the state it read, and what
// must follow the commit.
type flow struct {
	m   *Module
	q   *store.Queries
	now time.Time

	wf    store.Workflow
	def   *workflow.Definition
	input map[string]any
	vars  map[string]any
	// kv holds the datastore's keys the definition reads, read once a pass (loadKeys).
	kv map[string]any
	// tasks are the workflow's task arrivals, oldest first; dirty marks the ones to write.
	tasks []store.WorkflowTask
	dirty map[int64]bool
	// saveVars is set once vars or the failing reason changed.
	saveVars bool
	// queued are the attempts to create children for at the end of the pass.
	queued []attemptStart

	// wake is the earliest delayed start this pass planned, zero for none.
	wake time.Time

	// After the commit: children created (admitted ones to dispatch), executions whose
	// status changed, executions ended here (to announce), and children to stop.
	created, admitted, started, changed, ended, stopping []store.Execution
}

// attemptStart is a child execution to create: an attempt of one item of a task.
type attemptStart struct {
	task    *store.WorkflowTask
	item    int
	attempt int
	// delayed is set for an attempt whose row exists, waiting for its delay.
	delayed bool
}

// load decodes the definition and input the workflow runs with.
func (f *flow) load() error {
	f.def = new(workflow.Definition)
	if err := json.Unmarshal(f.wf.Definition, f.def); err != nil {
		return fmt.Errorf("decode the workflow definition: %w", err)
	}
	if len(f.wf.Input) > 0 {
		if err := json.Unmarshal(f.wf.Input, &f.input); err != nil {
			return fmt.Errorf("decode the workflow input: %w", err)
		}
	}
	f.dirty = map[int64]bool{}
	return nil
}

// accepting reports whether new tasks and items may start: not while the workflow pauses,
// is cancelled or is failing.
func (f *flow) accepting() bool {
	return f.wf.Status == store.ExecutionRunning && f.wf.Failing == nil
}

func (f *flow) scope() workflow.Scope {
	return workflow.Scope{Input: f.input, Vars: f.vars, KV: f.kv}
}

// loadKeys reads the keys the definition reads, of the workflow's pack and of the identity
// that requested it, in one statement; a definition that reads none costs nothing.
func (f *flow) loadKeys(ctx context.Context) error {
	refs, err := f.def.KeyRefs()
	if err != nil {
		return err
	}
	f.kv, _, err = readKeys(ctx, f.q.KeyLookup, packOf(f.wf.ActionRef), f.wf.RequestedBy, refs)
	return err
}

// step is the body of every pass: take in every ended child (and the children that end as
// they are created, refused by a policy or by their parameters), start what is due, act on
// a pause or cancel, and end the workflow when nothing is left.
func (f *flow) step(ctx context.Context) error {
	for range maxRounds {
		ended, err := f.q.WorkflowItemsEnded(ctx, f.wf.Execution)
		if err != nil {
			return err
		}
		for _, e := range ended {
			if err := f.takeIn(ctx, e); err != nil {
				return err
			}
		}
		stopped := false
		if f.wf.Status == store.ExecutionCanceling {
			if stopped, err = f.cancelChildren(ctx); err != nil {
				return err
			}
		}
		if err := f.startDue(ctx); err != nil {
			return err
		}
		again, err := f.createChildren(ctx)
		if err != nil {
			return err
		}
		if !again && !stopped {
			break
		}
	}
	if err := f.save(ctx); err != nil {
		return err
	}
	return f.settle(ctx)
}

// maxRounds bounds the passes over children that end as they are created; what is left
// over is taken in by the next advance.
const maxRounds = 8

// task returns the arrival with id.
func (f *flow) task(id int64) *store.WorkflowTask {
	for i := range f.tasks {
		if f.tasks[i].ID == id {
			return &f.tasks[i]
		}
	}
	return nil
}

// outcomeOf maps a child's ending to the outcome its task reads.
func outcomeOf(status string) string {
	switch status {
	case store.ExecutionCompleted:
		return workflow.OutcomeSucceeded
	case store.ExecutionTimeout:
		return workflow.OutcomeTimedOut
	case store.ExecutionCancelled:
		return workflow.OutcomeCancelled
	default: // failed, abandoned
		return workflow.OutcomeFailed
	}
}

// takeIn records the ending of one attempt: it is retried when its task says so, and the
// last item to end ends its task.
func (f *flow) takeIn(ctx context.Context, e store.EndedItem) error {
	t := f.task(e.Task)
	if t == nil {
		return fmt.Errorf("workflow %d: attempt of unknown task arrival %d", f.wf.Execution, e.Task)
	}
	def := f.def.Task(t.Name)
	outcome := outcomeOf(e.Child.Status)
	var result any
	if len(e.Child.Result) > 0 {
		if err := json.Unmarshal(e.Child.Result, &result); err != nil {
			return fmt.Errorf("decode the result of execution %d: %w", e.Child.ID, err)
		}
	}
	if result == nil && e.Child.Reason != nil {
		result = map[string]any{"error": *e.Child.Reason}
	}
	raw, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("encode the result of execution %d: %w", e.Child.ID, err)
	}
	it := e.WorkflowItem
	it.Status, it.Result = outcome, raw
	if ok, err := f.q.WorkflowItemEnd(ctx, it); err != nil || !ok {
		return err
	}
	// A pausing workflow still plans its retries (they start when it resumes); one that is
	// cancelled or failing starts nothing more.
	if def != nil && def.Retry != nil && (outcome != workflow.OutcomeSucceeded || def.Retry.When != "") &&
		f.wf.Status != store.ExecutionCanceling && f.wf.Failing == nil {
		s := f.scope()
		s.Outcome, s.Result = outcome, result
		retry, err := workflow.ShouldRetry(def, it.Attempt, s)
		if err != nil {
			f.fail(fmt.Sprintf("task %s: %v", t.Name, err))
		} else if retry {
			return f.retry(ctx, t, it.Item, it.Attempt+1, def.Retry.Delay(it.Attempt+1))
		}
	}
	t.ItemsEnded++
	f.dirty[t.ID] = true
	if t.ItemsEnded < t.ItemCount {
		return nil
	}
	return f.endTask(ctx, t)
}

// retry plans attempt of item: at once, or after delay.
func (f *flow) retry(ctx context.Context, t *store.WorkflowTask, item, attempt int, delay time.Duration) error {
	if delay <= 0 && f.accepting() {
		f.queued = append(f.queued, attemptStart{task: t, item: item, attempt: attempt})
		return nil
	}
	// A pausing workflow keeps the attempt, due, for its resume.
	at := f.now.Add(max(delay, 0))
	f.wakeAt(at)
	return f.q.WorkflowItemsInsert(ctx, f.wf.Execution, []store.WorkflowItem{{
		Task: t.ID, Item: item, Attempt: attempt, Status: store.TaskRunning, StartAt: &at,
	}})
}

// endTask ends a task whose items have all ended: its outcome is its item's, or for a task
// with items, succeeded when every item did; its result is its item's, or the items' in item
// order. Its transitions decide what comes next.
func (f *flow) endTask(ctx context.Context, t *store.WorkflowTask) error {
	last, err := f.q.WorkflowTaskLastAttempts(ctx, t.ID)
	if err != nil {
		return err
	}
	// Failed wins over the other ways an item may not succeed; otherwise the first of them.
	outcome := workflow.OutcomeSucceeded
	values := make([]any, len(last))
	for i, it := range last {
		if it.Status != workflow.OutcomeSucceeded && (outcome == workflow.OutcomeSucceeded || it.Status == workflow.OutcomeFailed) {
			outcome = it.Status
		}
		if len(it.Result) > 0 {
			if err := json.Unmarshal(it.Result, &values[i]); err != nil {
				return fmt.Errorf("decode a result of task %s: %w", t.Name, err)
			}
		}
	}
	var result any = values
	def := f.def.Task(t.Name)
	if def.With == nil {
		result = nil
		if len(values) > 0 {
			result = values[0]
		}
	}
	return f.decide(ctx, t, def, outcome, result)
}

// decide records how task t ended and takes the transitions its definition says; a
// cancelled workflow takes none.
func (f *flow) decide(ctx context.Context, t *store.WorkflowTask, def *workflow.Task, outcome string, result any) error {
	raw, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("encode the result of task %s: %w", t.Name, err)
	}
	t.Status, t.Result = outcome, raw
	f.dirty[t.ID] = true
	if f.wf.Status == store.ExecutionCanceling {
		return nil
	}
	s := f.scope()
	s.Outcome, s.Result = outcome, result
	d, err := workflow.Decide(def, s)
	if err != nil {
		f.fail(fmt.Sprintf("task %s: %v", t.Name, err))
		return nil
	}
	if len(d.Publish) > 0 {
		vars := maps.Clone(f.vars)
		if vars == nil {
			vars = map[string]any{}
		}
		for _, p := range d.Publish {
			vars[p.Name] = p.Value
		}
		f.vars, f.saveVars = vars, true
	}
	if d.Fail {
		if outcome == workflow.OutcomeSucceeded {
			f.fail(fmt.Sprintf("task %s took a transition to fail", t.Name))
		} else {
			f.fail(fmt.Sprintf("task %s ended %s", t.Name, outcome))
		}
	}
	for _, name := range d.Next {
		if err := f.arrive(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// fail marks the workflow failing with reason, unless it is already: nothing new starts,
// and it fails once its running tasks end.
func (f *flow) fail(reason string) {
	if f.wf.Failing == nil {
		f.wf.Failing, f.saveVars = &reason, true
	}
}

// arrive records a transition's arrival at task name: a new arrival, or one more at a task
// whose join is still gathering. A task whose arrivals are complete waits for its delay.
func (f *flow) arrive(ctx context.Context, name string) error {
	def := f.def.Task(name)
	if def == nil {
		f.fail(fmt.Sprintf("a transition names task %s, which the definition lacks", name))
		return nil
	}
	seq := 0
	for i := range f.tasks {
		t := &f.tasks[i]
		if t.Name != name {
			continue
		}
		seq = max(seq, t.Seq)
		if def.Join > 1 && t.Status == store.TaskWaiting && t.StartAt == nil {
			t.Arrivals++
			if t.Arrivals >= def.Join {
				t.StartAt = f.startAt(def)
			}
			f.dirty[t.ID] = true
			return nil
		}
	}
	t := store.WorkflowTask{Workflow: f.wf.Execution, Name: name, Seq: seq + 1, Status: store.TaskWaiting, Arrivals: 1}
	if def.Join <= 1 {
		t.StartAt = f.startAt(def)
	}
	created, err := f.q.WorkflowTaskInsert(ctx, t)
	if err != nil {
		return err
	}
	f.tasks = append(f.tasks, created)
	return nil
}

// action reads an action through the transaction, never the pool: see store.RefCache.GetWith.
func (f *flow) action(ctx context.Context, ref string) (store.Action, error) {
	return f.m.actions.GetWith(ctx, ref, f.q.ActionGetByRef)
}

func (f *flow) startAt(def *workflow.Task) *time.Time {
	at := f.now.Add(time.Duration(def.DelaySeconds) * time.Second)
	f.wakeAt(at)
	return &at
}

// wakeAt notes a delayed start at, for a timer once the pass commits.
func (f *flow) wakeAt(at time.Time) {
	if at.After(f.now) && (f.wake.IsZero() || at.Before(f.wake)) {
		f.wake = at
	}
}
