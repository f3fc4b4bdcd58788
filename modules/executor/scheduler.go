package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

// handleRequest schedules requested executions onto live workers with room, oldest first:
// this one if nothing older waits, else the older ones, and this one waits its turn. The
// completion that frees a slot schedules the next. A redelivered request for an execution
// already scheduled dispatches it again: the worker's claim is conditional, so a duplicate
// dispatch is harmless, and this repairs a dispatch lost after the commit.
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
	if exec.Status == store.ExecutionRequested && !exec.Admitted {
		// Made through the API, which leaves admission to the executor.
		if ok, err := m.admit(ctx, exec); err != nil || !ok {
			return err
		}
	}
	if time.Now().UnixNano() < m.fullUntil.Load() {
		// Every worker was full a moment ago: the execution is already waiting in requested,
		// and the completions that free slots schedule the oldest first. Under a backlog
		// this spares each new request two statements that would find no room.
		return nil
	}
	scheduled, err := m.scheduleWaiting(ctx, 1)
	if err != nil || slices.Contains(scheduled, p.ExecutionID) {
		return err
	}
	action, err := m.actions.Get(ctx, p.ActionRef)
	if errors.Is(err, store.ErrNotFound) {
		return m.fail(ctx, p.ExecutionID, fmt.Sprintf("action %s was deleted before the execution was scheduled", p.ActionRef))
	}
	if err != nil {
		return err
	}
	return m.notScheduled(ctx, p.ExecutionID, action)
}

// noWorkerWait is how long a request waits in its handler for a first worker that can run
// it: workers and executors start in any order, and a request that arrives as the first
// worker registers should not wait for a sweep. After that the sweeper takes over, and fails
// the execution once it is older than NoWorkerTimeout; a handler never blocks for long.
const noWorkerWait = 2 * time.Second

// fullFor is how long "every worker is full" is trusted without looking again. It is short:
// correctness never rests on it (completions and sweeps schedule what waits); it only spares
// queries while a backlog lasts.
const fullFor = 100 * time.Millisecond

// noWorkerPoll is how often that short wait looks again.
const noWorkerPoll = 100 * time.Millisecond

// notScheduled finds out why an execution was not scheduled and acts on it. Only when no
// worker that can run it exists does it look again, for a short while.
func (m *Module) notScheduled(ctx context.Context, id int64, action store.Action) error {
	deadline := time.Now().Add(noWorkerWait)
	for {
		waitForWorker, err := m.settle(ctx, id, action)
		if err != nil || !waitForWorker {
			return err
		}
		if time.Now().After(deadline) {
			return nil // no worker at all: the sweeper fails it if none comes
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(noWorkerPoll):
		}
	}
}

// settle acts once on why execution id was not scheduled, and reports whether that is for
// want of any worker that can run it, the one case that may change in a moment.
func (m *Module) settle(ctx context.Context, id int64, action store.Action) (bool, error) {
	params := store.WorkerPickParams{Runner: action.RunnerType, AliveWithin: m.cfg.WorkerAliveWithin}
	why, err := m.deps.Store.ExecutionScheduleBlocker(ctx, id, params)
	if errors.Is(err, store.ErrNotFound) {
		return false, broker.Permanent(err)
	}
	if err != nil {
		return false, err
	}
	switch {
	case why.Status == store.ExecutionScheduled:
		exec, err := m.deps.Store.ExecutionGet(ctx, id)
		if err != nil {
			return false, err
		}
		return false, m.dispatch(ctx, exec, action)
	case why.Status != store.ExecutionRequested:
		return false, nil // cancelled, or further on already
	case why.Room:
		// Room appeared since the first look: fill it, oldest first.
		_, err := m.scheduleWaiting(ctx, waitingBatch)
		return false, err
	case why.AnyWorker:
		// Every worker is full: a completion schedules it in its turn. Requests in the next
		// moment need not look again.
		m.fullUntil.Store(time.Now().Add(fullFor).UnixNano())
		return false, nil
	}
	return true, nil
}

func (m *Module) fail(ctx context.Context, id int64, reason string) error {
	_, _, err := m.deps.Store.ExecutionTransition(ctx, store.ExecutionTransition{
		ID: id, From: []string{store.ExecutionRequested}, To: store.ExecutionFailed, Reason: reason,
	})
	return err
}

// waitingBatch is how many waiting executions one statement schedules: each statement reads
// the workers' loads once, so a small batch keeps workers near their bound.
const waitingBatch = 2

// scheduleWaiting schedules up to want of the oldest requested executions that a worker has
// room for, and dispatches them. Completions call it, so a freed slot is filled at once
// rather than by a poll. It returns the ids it scheduled.
func (m *Module) scheduleWaiting(ctx context.Context, want int) ([]int64, error) {
	var ids []int64
	for want > 0 {
		batch := min(want, waitingBatch)
		scheduled, err := m.deps.Store.ExecutionScheduleWaiting(ctx, batch, m.cfg.WorkerAliveWithin)
		if err != nil {
			return ids, err
		}
		if err := m.dispatchAll(ctx, scheduled); err != nil {
			return ids, err
		}
		for _, e := range scheduled {
			ids = append(ids, e.ID)
		}
		want -= len(scheduled)
		if len(scheduled) < batch {
			break
		}
	}
	return ids, nil
}

// dispatchAll dispatches each execution, going on past failures so that one bad publish does
// not strand the others until the sweeper's redispatch.
func (m *Module) dispatchAll(ctx context.Context, execs []store.Execution) error {
	var errs []error
	for _, e := range execs {
		action, err := m.actions.Get(ctx, e.ActionRef)
		if err == nil {
			err = m.dispatch(ctx, e, action)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("dispatch execution %d: %w", e.ID, err))
		}
	}
	return errors.Join(errs...)
}

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
		// The worker has no queue (yet, or any more); the sweeper redispatches, or moves the
		// execution to a live worker.
		m.deps.Logger.WarnContext(ctx, "worker has no queue; leaving the execution to the sweeper",
			"execution_id", exec.ID, "worker", *exec.Worker)
		return nil
	}
	return err
}

// handleCompletion is the completion listener: every terminal status passes here once it is
// committed. The execution has left its worker, so the oldest executions waiting for a
// worker are scheduled; two, because a worker is kept a little ahead of its concurrency. When
// nothing waits this is one index lookup that finds nothing.
func (m *Module) handleCompletion(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.ExecutionCompleted](msg)
	if err != nil {
		return err
	}
	m.deps.Logger.DebugContext(ctx, "execution finished", "execution_id", p.ExecutionID, "action", p.ActionRef, "status", p.Status)
	_, err = m.scheduleWaiting(ctx, 2)
	return err
}
