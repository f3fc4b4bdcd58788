package executor

import (
	"context"
	"errors"
	"fmt"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

// handleRequest dispatches an execution the API created scheduled (admission is decided as
// an execution is created, by whichever process creates it), and one the sweeper found
// waiting for a dispatch that may have been lost. It also admits an execution an older
// version created undecided. Claims are conditional, so a duplicate dispatch is harmless.
func (m *Module) handleRequest(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.ExecutionRequested](msg)
	if err != nil {
		return err
	}
	if err := m.watch.Check(ctx); err != nil {
		return err
	}
	exec, err := m.deps.Store.ExecutionGet(ctx, p.ExecutionID)
	if errors.Is(err, store.ErrNotFound) {
		return broker.Permanent(err)
	}
	if err != nil {
		return err
	}
	switch {
	case exec.Status == store.ExecutionScheduled && exec.WorkerID == nil:
		return m.dispatchAll(ctx, []store.Execution{exec})
	case exec.Status != store.ExecutionRequested && exec.WorkerID == nil && !store.IsTerminal(exec.Status):
		// A running workflow asked to pause, resume or cancel, or an inquiry's execution
		// asked to cancel.
		if exec.Status == store.ExecutionCanceling {
			if asked, err := m.cancelInquiry(ctx, exec); err != nil || asked {
				return err
			}
		}
		return m.advance(ctx, exec.ID)
	case exec.Status != store.ExecutionRequested:
		return nil // claimed, or ended
	case !exec.Admitted:
		if ok, err := m.admitLate(ctx, exec); err != nil || !ok {
			return err
		}
	}
	return m.scheduleWaiting(ctx)
}

// fail ends an execution that has not started, with the reason.
func (m *Module) fail(ctx context.Context, id int64, reason string) error {
	exec, ok, err := m.deps.Store.ExecutionTransition(ctx, store.ExecutionTransition{
		ID: id, From: []string{store.ExecutionRequested, store.ExecutionScheduled}, To: store.ExecutionFailed, Reason: reason,
	})
	if ok {
		m.notify("", exec)
	}
	return err
}

// waitingBatch is how many admitted executions one statement schedules.
const waitingBatch = 32

// scheduleWaiting schedules and dispatches every admitted execution still requested, oldest
// first. Completions call it, so a waiter its policy just admitted goes at once rather than
// at a poll.
func (m *Module) scheduleWaiting(ctx context.Context) error {
	for {
		scheduled, err := m.deps.Store.ExecutionScheduleWaiting(ctx, waitingBatch)
		if err != nil {
			return err
		}
		m.notify(store.ExecutionRequested, scheduled...)
		if err := m.dispatchAll(ctx, scheduled); err != nil {
			return err
		}
		if len(scheduled) < waitingBatch {
			return nil
		}
	}
}

// dispatchAll dispatches each execution, going on past failures so that one bad publish does
// not strand the others until the sweeper's redispatch.
func (m *Module) dispatchAll(ctx context.Context, execs []store.Execution) error {
	var errs []error
	for _, e := range execs {
		action, err := m.actions.Get(ctx, e.ActionRef)
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = m.fail(ctx, e.ID, fmt.Sprintf("action %s was deleted before the execution was dispatched", e.ActionRef))
		case err == nil:
			err = m.dispatch(ctx, e, action)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dispatch execution %d: %w", e.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (m *Module) dispatch(ctx context.Context, exec store.Execution, action store.Action) error {
	switch action.RunnerType {
	case workflowRunner:
		return m.startWorkflow(ctx, exec, action)
	case inquiryRunner:
		return m.startInquiry(ctx, exec)
	}
	timeout := action.TimeoutSeconds
	if exec.TimeoutSeconds != nil {
		timeout = *exec.TimeoutSeconds
	}
	selector := exec.WorkerSelector.String()
	if err := m.declarePool(ctx, action.RunnerType, selector); err != nil {
		return err
	}
	err := m.deps.Relay.Send(ctx, broker.InTrace(exec.Trace(), broker.ExecutionDispatched{
		ExecutionID: exec.ID, ActionRef: exec.ActionRef,
		Action: broker.ActionSnapshot{
			RunnerType: action.RunnerType, PackRef: action.PackRef, PackPath: action.PackPath, PackVersion: action.PackVersion, EntryPoint: action.EntryPoint,
			OutputFormat: action.OutputFormat, TimeoutSeconds: timeout,
		},
		WorkerSelector: selector,
	}))
	if errors.Is(err, broker.ErrUnroutable) {
		// The queue was deleted under us; the sweeper dispatches again.
		m.pools.Delete(dispatchQueue(action.RunnerType, selector).Name)
		m.deps.Logger.WarnContext(ctx, "no queue for the runner; leaving the execution to the sweeper",
			"execution_id", exec.ID, "runner", action.RunnerType, "worker_selector", selector)
		return nil
	}
	return err
}

// dispatchQueue is where the executions of runner with selector (canonical form) go: the
// runner's shared pool, or the queue of the selector.
func dispatchQueue(runner, selector string) broker.Queue {
	if selector == "" {
		return broker.DispatchQueue(runner)
	}
	return broker.SelectorDispatchQueue(runner, selector)
}

// declarePool makes sure the dispatch queue of runner and selector exists before the first
// dispatch to it, so that executions wait there for a worker that is still starting, or, for
// a selector, for one with its labels. A selector's queue is news to the workers: every one
// is told, and those whose labels satisfy it consume it from then on.
func (m *Module) declarePool(ctx context.Context, runner, selector string) error {
	q := dispatchQueue(runner, selector)
	if _, ok := m.pools.Load(q.Name); ok {
		return nil
	}
	if err := m.deps.Broker.Declare(ctx, q); err != nil {
		return fmt.Errorf("declare the dispatch queue of runner %s: %w", runner, err)
	}
	if selector != "" {
		err := m.deps.Relay.Send(ctx, broker.WorkerSelectorAdded{Runner: runner, WorkerSelector: selector})
		// Unroutable: no worker has a queue yet; each reads the selectors in use as it starts.
		if err != nil && !errors.Is(err, broker.ErrUnroutable) {
			return fmt.Errorf("tell the workers of selector %s: %w", selector, err)
		}
	}
	m.pools.Store(q.Name, struct{}{})
	return nil
}

// handleCompletion is the completion listener: every terminal status passes here once it is
// committed. The transaction that ended the execution gave its policy slot to the next
// waiter; that waiter is dispatched here. An ending known to have held no slot admitted
// nobody, and is not looked at further.
func (m *Module) handleCompletion(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.ExecutionCompleted](msg)
	if err != nil {
		return err
	}
	m.deps.Logger.DebugContext(ctx, "execution finished", "execution_id", p.ExecutionID, "action", p.ActionRef, "status", p.Status)
	if p.Workflow != nil {
		if err := m.advance(ctx, *p.Workflow); err != nil {
			return err
		}
	}
	if p.HeldSlot != nil && !*p.HeldSlot {
		return nil
	}
	return m.scheduleWaiting(ctx)
}
