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
	action, err := m.deps.Store.ActionGetByRef(ctx, p.ActionRef)
	if errors.Is(err, store.ErrNotFound) {
		return m.fail(ctx, p.ExecutionID, fmt.Sprintf("action %s was deleted before the execution was scheduled", p.ActionRef))
	}
	if err != nil {
		return err
	}
	// The hot path: pick a worker and schedule in one statement.
	exec, ok, err := m.deps.Store.ExecutionSchedule(ctx, p.ExecutionID, m.pickParams(action))
	if err != nil {
		return err
	}
	if ok {
		return m.dispatch(ctx, exec, action)
	}
	exec, err = m.deps.Store.ExecutionGet(ctx, p.ExecutionID)
	if errors.Is(err, store.ErrNotFound) {
		return broker.Permanent(err)
	}
	if err != nil {
		return err
	}
	switch exec.Status {
	case store.ExecutionRequested:
		return m.scheduleWhenWorker(ctx, exec, action)
	case store.ExecutionScheduled:
		return m.dispatch(ctx, exec, action)
	default:
		return nil
	}
}

func (m *Module) pickParams(action store.Action) store.WorkerPickParams {
	return store.WorkerPickParams{Runner: action.RunnerType, AliveWithin: m.cfg.WorkerAliveWithin}
}

func (m *Module) fail(ctx context.Context, id int64, reason string) error {
	_, _, err := m.deps.Store.ExecutionTransition(ctx, store.ExecutionTransition{
		ID: id, From: []string{store.ExecutionRequested}, To: store.ExecutionFailed, Reason: reason,
	})
	return err
}

// scheduleWhenWorker is the slow path, taken when no worker could be picked: it waits for one
// while the execution is young, and fails the execution when none comes.
func (m *Module) scheduleWhenWorker(ctx context.Context, exec store.Execution, action store.Action) error {
	if _, err := m.pickWorker(ctx, exec, action.RunnerType); errors.Is(err, store.ErrNotFound) {
		return m.fail(ctx, exec.ID, fmt.Sprintf("no live worker can run runner %q", action.RunnerType))
	} else if err != nil {
		return err
	}
	scheduled, ok, err := m.deps.Store.ExecutionSchedule(ctx, exec.ID, m.pickParams(action))
	if err != nil {
		return err
	}
	if !ok {
		// The worker went away again, or another scheduler or a cancel got there first:
		// retrying the message sorts out which.
		return fmt.Errorf("schedule execution %d: no worker on the second try", exec.ID)
	}
	return m.dispatch(ctx, scheduled, action)
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

func (m *Module) dispatch(ctx context.Context, exec store.Execution, action store.Action) error {
	if exec.Worker == nil {
		return broker.Permanent(fmt.Errorf("execution %d is scheduled on no worker", exec.ID))
	}
	timeout := action.TimeoutSeconds
	if exec.TimeoutSeconds != nil {
		timeout = *exec.TimeoutSeconds
	}
	err := broker.Send(ctx, m.deps.Broker, broker.ExecutionDispatched{
		ExecutionID: exec.ID, ActionRef: exec.ActionRef, Worker: *exec.Worker,
		Action: broker.ActionSnapshot{
			RunnerType: action.RunnerType, PackRef: action.PackRef, PackPath: action.PackPath, EntryPoint: action.EntryPoint,
			OutputFormat: action.OutputFormat, TimeoutSeconds: timeout,
		},
	})
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
