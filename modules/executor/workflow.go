package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/workflow"
	"github.com/attune-go/attune/store"
)

// workflowRunner is the runner of actions the executor runs itself, as workflows.
const workflowRunner = "workflow"

// startWorkflow starts a workflow execution its policy admitted, in place of a dispatch: it
// moves to running, its state is recorded and its first tasks are created, in one
// transaction. A second start (a redelivered request, the sweeper's) finds it running and
// does nothing.
func (m *Module) startWorkflow(ctx context.Context, exec store.Execution, action store.Action) error {
	var f *flow
	err := m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		running, ok, err := q.ExecutionTransition(ctx, store.ExecutionTransition{
			ID: exec.ID, From: []string{store.ExecutionScheduled}, To: store.ExecutionRunning,
		})
		if err != nil || !ok {
			return err
		}
		f = &flow{m: m, q: q, now: time.Now()}
		f.started = append(f.started, running)
		if len(action.Workflow) == 0 {
			return f.end(ctx, running, store.ExecutionFailed, nil, fmt.Sprintf("action %s has no workflow definition", action.Ref))
		}
		f.wf = store.Workflow{Execution: exec.ID, Definition: action.Workflow, Status: store.ExecutionRunning, Input: exec.Parameters,
			Secrets: exec.Secrets, ActionRef: exec.ActionRef, RequestedBy: exec.RequestedBy}
		rerun, source, err := f.rerunOf(ctx)
		if err != nil {
			return err
		}
		if rerun != nil {
			// A rerun goes on with the definition it reruns, whatever the pack says now.
			f.wf.Definition = source.Definition
		}
		if err := f.load(); err != nil {
			return f.end(ctx, running, store.ExecutionFailed, nil, err.Error())
		}
		if err := f.loadKeys(ctx); err != nil {
			return err
		}
		vars, err := workflow.RenderVars(f.def, workflow.Scope{Input: f.input, KV: f.kv})
		if err != nil {
			return f.end(ctx, running, store.ExecutionFailed, nil, fmt.Sprintf("render vars: %v", err))
		}
		f.vars = vars
		raw, err := json.Marshal(vars)
		if err != nil {
			return fmt.Errorf("encode the variables of workflow %d: %w", exec.ID, err)
		}
		if created, err := q.WorkflowCreate(ctx, exec.ID, f.wf.Definition, raw); err != nil || !created {
			return err
		}
		if rerun != nil {
			if err := f.resume(ctx, rerun, source); err != nil {
				return err
			}
			return f.step(ctx)
		}
		for _, name := range f.def.Start {
			if err := f.arrive(ctx, name); err != nil {
				return err
			}
		}
		return f.step(ctx)
	})
	if err != nil || f == nil {
		return err
	}
	return f.afterCommit(ctx)
}

// rerunOf reads what the workflow execution f starts reruns, if anything: the workflow it
// reruns, whose definition it runs.
func (f *flow) rerunOf(ctx context.Context) (*store.WorkflowRerun, *store.Workflow, error) {
	rerun, err := f.q.WorkflowRerunOf(ctx, f.wf.Execution)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	source, err := f.q.WorkflowGet(ctx, rerun.Source)
	if err != nil {
		return nil, nil, err
	}
	return &rerun, &source, nil
}

// resume readies a rerun: it keeps the variables of the workflow it reruns, its tasks that
// succeeded and its arrivals that never started, and starts the tasks asked for at once,
// whatever their join.
func (f *flow) resume(ctx context.Context, rerun *store.WorkflowRerun, source *store.Workflow) error {
	if err := json.Unmarshal(source.Vars, &f.vars); err != nil {
		return fmt.Errorf("decode the variables of workflow %d: %w", rerun.Source, err)
	}
	f.saveVars = true
	var err error
	if f.tasks, err = f.q.WorkflowCarryOver(ctx, rerun.Source, f.wf.Execution); err != nil {
		return err
	}
	for i := range f.tasks {
		t := &f.tasks[i]
		if def := f.def.Task(t.Name); t.Status == store.TaskWaiting && def != nil && (def.Join <= 1 || t.Arrivals >= def.Join) {
			t.StartAt = f.startAt(def)
			f.dirty[t.ID] = true
		}
	}
	for _, name := range rerun.Tasks {
		i := slices.IndexFunc(f.tasks, func(t store.WorkflowTask) bool { return t.Name == name && t.Status == store.TaskWaiting })
		if i < 0 {
			if err := f.arrive(ctx, name); err != nil {
				return err
			}
			i = len(f.tasks) - 1
		}
		if t := &f.tasks[i]; t.Name == name && t.StartAt == nil {
			t.StartAt, f.dirty[t.ID] = &f.now, true
		}
	}
	return nil
}

// advanceOnce takes in the endings of workflow id's tasks, starts what they lead to and what
// is due, acts on a request to pause or cancel, and ends the workflow when nothing is left
// to run, all in one transaction under the workflow's lock. It is idempotent: whatever it
// has taken in already, it finds taken in. An execution that is no workflow, or has not
// started yet, is left alone.
func (m *Module) advanceOnce(ctx context.Context, id int64) error {
	var f *flow
	err := m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		wf, err := q.WorkflowLock(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if store.IsTerminal(wf.Status) {
			return nil
		}
		f = &flow{m: m, q: q, wf: wf, now: time.Now()}
		if err := f.load(); err != nil {
			return fmt.Errorf("workflow %d: %w", id, err)
		}
		if err := json.Unmarshal(wf.Vars, &f.vars); err != nil {
			return fmt.Errorf("decode the variables of workflow %d: %w", id, err)
		}
		if err := f.loadKeys(ctx); err != nil {
			return fmt.Errorf("workflow %d: %w", id, err)
		}
		if f.tasks, err = q.WorkflowTasksOpen(ctx, id); err != nil {
			return err
		}
		return f.step(ctx)
	})
	if err != nil || f == nil {
		return err
	}
	return f.afterCommit(ctx)
}

// advanceAll advances each workflow, going on past failures.
func (m *Module) advanceAll(ctx context.Context, ids []int64) error {
	var errs []error
	for _, id := range ids {
		if err := m.advance(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("advance workflow %d: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// workflowBatch bounds the workflows one pass of the workflow loop advances.
const workflowBatch = 100

// workflowLoop starts the delayed tasks and attempts that are due (should the timer of the
// process that planned them be gone with it), and advances workflows
// that missed a child's ending (its completion message was lost, or the ending was one that
// sends none, such as a policy refusing the child) or a request to pause or cancel.
func (m *Module) workflowLoop(ctx context.Context) error {
	return m.every(ctx, time.Second, "advance due workflows", func(ctx context.Context) error {
		due, err := m.deps.Store.WorkflowsDue(ctx, workflowBatch)
		if err != nil {
			return err
		}
		stalled, err := m.deps.Store.WorkflowsStalled(ctx, m.cfg.SweepAfter, workflowBatch)
		if err != nil {
			return err
		}
		// A stalled workflow is repaired by one pass; one that stays on the list (pausing
		// while its tasks run) is looked at again only now and then.
		now := time.Now()
		for _, id := range stalled {
			if m.resent.due(fmt.Sprintf("workflow/%d", id), now) {
				due = append(due, id)
			}
		}
		return m.advanceAll(ctx, due)
	})
}

// afterCommit sends what the transaction decided: the children admitted go to their workers
// (or start, for a nested workflow), the stream hears of every change, endings included, an
// ended workflow's completion goes out (to its policy's waiters and to its own parent
// workflow), and running children of a cancelled workflow are asked to stop.
func (f *flow) afterCommit(ctx context.Context) error {
	m := f.m
	m.notify("", f.created...)
	m.notify(store.ExecutionRunning, f.started...)
	m.notify("", f.changed...)
	// The completion message below reaches the executors, not the stream: a page following
	// the workflow hears of its ending (and of its children's that a cancel ended) only here.
	m.notify("", f.ended...)
	var msgs []broker.Payload
	for _, e := range f.ended {
		msgs = append(msgs, broker.InTrace(e.Trace(), broker.ExecutionCompleted{ExecutionID: e.ID, ActionRef: e.ActionRef, Status: e.Status,
			FinishedAt: f.now.UTC(), HeldSlot: &e.HeldSlot, Workflow: e.WorkflowID()}))
	}
	for _, e := range f.stopping {
		if e.Worker != nil {
			msgs = append(msgs, broker.InTrace(e.Trace(), broker.ExecutionCancelRequested{ExecutionID: e.ID, Worker: *e.Worker}))
		} else {
			// A nested workflow: its own advance cancels its tasks.
			msgs = append(msgs, broker.InTrace(e.Trace(), broker.ExecutionRequested{ExecutionID: e.ID, ActionRef: e.ActionRef}))
		}
	}
	if !f.wake.IsZero() {
		m.wakes.after(f.wake, func(ctx context.Context) error { return m.advance(ctx, f.wf.Execution) })
	}
	var errs []error
	if err := m.deps.Relay.Send(ctx, msgs...); err != nil {
		errs = append(errs, err)
	}
	if err := m.dispatchAll(ctx, f.admitted); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
