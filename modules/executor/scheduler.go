package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

// handleRequest schedules a requested execution onto a live worker that can run its runner,
// then dispatches it there. A redelivered request for an execution already scheduled
// dispatches it again: the worker's claim is conditional, so a duplicate dispatch is
// harmless, and this repairs a dispatch lost after the commit.
func (m *Module) handleRequest(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.ExecutionRequested](msg)
	if err != nil {
		return err
	}
	exec, err := m.deps.Store.ExecutionGet(ctx, p.ExecutionID)
	if errors.Is(err, store.ErrNotFound) {
		return broker.Permanent(err)
	}
	if err != nil {
		return err
	}
	switch exec.Status {
	case store.ExecutionRequested:
		return m.schedule(ctx, exec)
	case store.ExecutionScheduled:
		return m.dispatch(ctx, exec)
	default:
		return nil
	}
}

func (m *Module) schedule(ctx context.Context, exec store.Execution) error {
	fail := func(reason string) error {
		_, _, err := m.deps.Store.ExecutionTransition(ctx, store.ExecutionTransition{
			ID: exec.ID, From: []string{store.ExecutionRequested}, To: store.ExecutionFailed, Reason: reason,
		})
		return err
	}
	action, err := m.deps.Store.ActionGetByRef(ctx, exec.ActionRef)
	if errors.Is(err, store.ErrNotFound) {
		return fail(fmt.Sprintf("action %s was deleted before the execution was scheduled", exec.ActionRef))
	}
	if err != nil {
		return err
	}
	w, err := m.pickWorker(ctx, exec, action.RunnerType)
	if errors.Is(err, store.ErrNotFound) {
		return fail(fmt.Sprintf("no live worker can run runner %q", action.RunnerType))
	}
	if err != nil {
		return err
	}
	scheduled, ok, err := m.deps.Store.ExecutionTransition(ctx, store.ExecutionTransition{
		ID: exec.ID, From: []string{store.ExecutionRequested}, To: store.ExecutionScheduled, Worker: &w.ID,
	})
	if err != nil || !ok {
		return err // !ok: another scheduler or a cancel got there first
	}
	return m.dispatch(ctx, scheduled)
}

// pickWorker finds a live worker for runner. While the execution is young it waits for one to
// appear: workers and executors start in any order, and a request that arrives as the
// first worker registers must not fail for it.
func (m *Module) pickWorker(ctx context.Context, exec store.Execution, runner string) (store.Worker, error) {
	for {
		w, err := m.deps.Store.WorkerPick(ctx, store.WorkerPickParams{Runner: runner, AliveWithin: m.cfg.WorkerAliveWithin})
		if !errors.Is(err, store.ErrNotFound) || time.Since(exec.Created) > m.cfg.NoWorkerTimeout {
			return w, err
		}
		select {
		case <-ctx.Done():
			return store.Worker{}, ctx.Err()
		case <-time.After(noWorkerPoll):
		}
	}
}

// noWorkerPoll is how often a scheduler waiting for a worker looks again. Waiting for a
// worker is the exception (start-up, every worker down), not the path executions take.
const noWorkerPoll = 250 * time.Millisecond

func (m *Module) dispatch(ctx context.Context, exec store.Execution) error {
	if exec.Worker == nil {
		return broker.Permanent(fmt.Errorf("execution %d is scheduled on no worker", exec.ID))
	}
	err := broker.Send(ctx, m.deps.Broker, broker.ExecutionDispatched{ExecutionID: exec.ID, ActionRef: exec.ActionRef, Worker: *exec.Worker})
	if errors.Is(err, broker.ErrUnroutable) {
		// The worker's queue is gone with the worker; the sweeper abandons its executions.
		m.deps.Logger.WarnContext(ctx, "worker has no queue; leaving the execution to the sweeper",
			"execution_id", exec.ID, "worker", *exec.Worker)
		return nil
	}
	return err
}

// handleCompletion is the completion listener: every terminal status passes here once the
// worker has committed it.
func (m *Module) handleCompletion(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.ExecutionCompleted](msg)
	if err != nil {
		return err
	}
	m.deps.Logger.DebugContext(ctx, "execution finished", "execution_id", p.ExecutionID, "action", p.ActionRef, "status", p.Status)
	return nil
}
