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
	action, err := m.actions.Get(ctx, p.ActionRef)
	if errors.Is(err, store.ErrNotFound) {
		return m.fail(ctx, p.ExecutionID, fmt.Sprintf("action %s was deleted before the execution was scheduled", p.ActionRef))
	}
	if err != nil {
		return err
	}
	if m.mayWait() {
		// Executions are waiting for full workers: this one queues behind them rather than
		// take a slot the moment one frees, and completions serve them oldest first.
		return m.notScheduled(ctx, p.ExecutionID, action)
	}
	// The hot path: pick a worker and schedule in one statement.
	exec, ok, err := m.deps.Store.ExecutionSchedule(ctx, p.ExecutionID, m.pickParams(action))
	if err != nil || ok {
		if ok {
			return m.dispatch(ctx, exec, action)
		}
		return err
	}
	return m.notScheduled(ctx, p.ExecutionID, action)
}

// notScheduled is the slow path. If workers that can run the execution exist, they are all
// full: it stays requested and the next completion schedules it (scheduleWaiting). If none
// exists, it waits for one while the execution is young, and fails when none comes.
func (m *Module) notScheduled(ctx context.Context, id int64, action store.Action) error {
	params := m.pickParams(action)
	for {
		why, err := m.deps.Store.ExecutionScheduleBlocker(ctx, id, params)
		if errors.Is(err, store.ErrNotFound) {
			return broker.Permanent(err)
		}
		if err != nil {
			return err
		}
		switch {
		case why.Status == store.ExecutionScheduled:
			exec, err := m.deps.Store.ExecutionGet(ctx, id)
			if err != nil {
				return err
			}
			return m.dispatch(ctx, exec, action)
		case why.Status != store.ExecutionRequested:
			return nil // cancelled, or further on already
		case why.AnyWorker:
			// The execution waits; the completion that frees a slot schedules the oldest
			// waiting executions, and this one has been waiting since it was requested, so no
			// wake-up can pass it by. Should a worker have room now, the queue is drained
			// here, since no completion may come to do it.
			m.markWaiting()
			if why.Room {
				return m.scheduleWaiting(ctx, waitingBatch)
			}
			return nil
		}
		exec, err := m.deps.Store.ExecutionGet(ctx, id)
		if err != nil {
			return err
		}
		if time.Since(exec.Created) > m.cfg.NoWorkerTimeout {
			return m.fail(ctx, id, fmt.Sprintf("no live worker can run runner %q", action.RunnerType))
		}
		// Workers and executors start in any order: a request that arrives before the first
		// worker has registered waits for it rather than fail.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(noWorkerPoll):
		}
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

// waitingBatch is how many of the oldest waiting executions one statement schedules.
const waitingBatch = 8

// scheduleWaiting schedules up to want of the oldest requested executions onto workers with
// room, oldest first. Completions call it, so a freed slot is filled at once rather than by a
// poll.
func (m *Module) scheduleWaiting(ctx context.Context, want int) error {
	for want > 0 {
		mark := m.waitMarked.Load()
		batch := min(want, waitingBatch)
		scheduled, err := m.deps.Store.ExecutionScheduleWaiting(ctx, batch, m.cfg.WorkerAliveWithin)
		if err != nil {
			return err
		}
		for _, exec := range scheduled {
			action, err := m.actions.Get(ctx, exec.ActionRef)
			if err != nil {
				return err
			}
			if err := m.dispatch(ctx, exec, action); err != nil {
				return err
			}
		}
		if len(scheduled) == 0 {
			// Nothing fitted: either nothing waits, and this replica can stop looking on
			// completions, or every worker is full.
			left, err := m.deps.Store.ExecutionAnyWaiting(ctx)
			if err != nil {
				return err
			}
			if !left {
				m.waitCleared.Store(mark)
			} else {
				m.markWaiting() // whoever left them, this replica's completions look too
			}
			return nil
		}
		want -= len(scheduled)
		if len(scheduled) < batch {
			return nil
		}
	}
	return nil
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

// handleCompletion is the completion listener: every terminal status passes here once it is
// committed. The execution has left its worker, so the oldest executions waiting for a
// worker are scheduled; two, because a worker is kept a little ahead of its concurrency.
func (m *Module) handleCompletion(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.ExecutionCompleted](msg)
	if err != nil {
		return err
	}
	m.deps.Logger.DebugContext(ctx, "execution finished", "execution_id", p.ExecutionID, "action", p.ActionRef, "status", p.Status)
	if !m.mayWait() {
		return nil // nothing was left waiting by this replica since its last look found none
	}
	return m.scheduleWaiting(ctx, 2)
}
