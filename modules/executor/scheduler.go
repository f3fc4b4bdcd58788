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
	if err := m.declarePool(ctx, action.RunnerType); err != nil {
		return err
	}
	err := m.deps.Relay.Send(ctx, broker.ExecutionDispatched{
		ExecutionID: exec.ID, ActionRef: exec.ActionRef,
		Action: broker.ActionSnapshot{
			RunnerType: action.RunnerType, PackRef: action.PackRef, PackPath: action.PackPath, EntryPoint: action.EntryPoint,
			OutputFormat: action.OutputFormat, TimeoutSeconds: timeout,
		},
	})
	if errors.Is(err, broker.ErrUnroutable) {
		// The runner's queue was deleted under us; the sweeper dispatches again.
		m.pools.Delete(action.RunnerType)
		m.deps.Logger.WarnContext(ctx, "no queue for the runner; leaving the execution to the sweeper",
			"execution_id", exec.ID, "runner", action.RunnerType)
		return nil
	}
	return err
}

// declarePool makes sure the shared dispatch queue of runner exists before the first
// dispatch to it, so that executions wait there for a worker that is still starting.
func (m *Module) declarePool(ctx context.Context, runner string) error {
	if _, ok := m.pools.Load(runner); ok {
		return nil
	}
	if err := m.deps.Broker.Declare(ctx, broker.DispatchQueue(runner)); err != nil {
		return fmt.Errorf("declare the dispatch queue of runner %s: %w", runner, err)
	}
	m.pools.Store(runner, struct{}{})
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
