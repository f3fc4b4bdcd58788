package executor

import (
	"context"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

const sweepBatch = 500

// redispatchAfter is how long an execution may sit scheduled before its dispatch is sent
// again. It is long because a busy worker legitimately keeps executions queued; a
// duplicate dispatch is harmless, only wasteful.
const redispatchAfter = 5 * time.Minute

// overdueMargin is how far past its timeout a running execution is taken for lost.
const overdueMargin = time.Minute

// sweepLoop repairs what a crash between a commit and its publish would strand, and what a
// worker that died leaves behind. Only one replica sweeps at a time.
func (m *Module) sweepLoop(ctx context.Context) error {
	ticker := time.NewTicker(m.cfg.SweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if err := m.sweep(ctx); err != nil && ctx.Err() == nil {
			m.deps.Logger.WarnContext(ctx, "sweep failed", "err", err)
		}
	}
}

func (m *Module) sweep(ctx context.Context) error {
	var msgs []broker.Payload
	var reassigned []store.Execution
	err := m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		msgs, reassigned = msgs[:0], nil
		if ok, err := q.TryAdvisoryXactLock(ctx, "attune_executor_sweeper"); err != nil || !ok {
			return err
		}
		before := time.Now().Add(-m.cfg.SweepAfter)
		events, err := q.EventListUnevaluated(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range events {
			msgs = append(msgs, broker.NewEventCreated(e.ID, e.TriggerRef, deref(e.RuleRef), e.Payload))
		}
		enfs, err := q.EnforcementListStale(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range enfs {
			msgs = append(msgs, broker.EnforcementCreated{EnforcementID: e.ID, RuleRef: e.RuleRef, EventID: e.EventID})
		}
		// A dispatch lost after its commit; a scheduled execution of a live worker is
		// otherwise just queued there.
		stuck, err := q.ExecutionListStale(ctx, store.ExecutionScheduled, time.Now().Add(-redispatchAfter), sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range stuck {
			msgs = append(msgs, broker.ExecutionRequested{ExecutionID: e.ID, ActionRef: e.ActionRef})
		}
		// A cancel request lost after its commit.
		canceling, err := q.ExecutionListStale(ctx, store.ExecutionCanceling, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range canceling {
			if e.Worker != nil {
				msgs = append(msgs, broker.ExecutionCancelRequested{ExecutionID: e.ID, Worker: *e.Worker})
			}
		}
		// Executions that never started on a worker that died go to a live one.
		if reassigned, err = q.ExecutionReassignOrphans(ctx, sweepBatch, m.cfg.WorkerAliveWithin); err != nil {
			return err
		}
		// What nobody will finish, or nobody can run, ends with the reason.
		var ended []store.Execution
		for _, end := range []func() ([]store.Execution, error){
			func() ([]store.Execution, error) { return q.ExecutionAbandonOrphans(ctx, m.cfg.WorkerAliveWithin) },
			func() ([]store.Execution, error) { return q.ExecutionAbandonOverdue(ctx, overdueMargin) },
			func() ([]store.Execution, error) {
				return q.ExecutionFailUnrunnable(ctx, m.cfg.NoWorkerTimeout, m.cfg.WorkerAliveWithin)
			},
		} {
			execs, err := end()
			if err != nil {
				return err
			}
			ended = append(ended, execs...)
		}
		for _, e := range ended {
			m.deps.Logger.WarnContext(ctx, "execution ended by the sweeper", "execution_id", e.ID, "action", e.ActionRef,
				"status", e.Status, "reason", deref(e.Reason))
			msgs = append(msgs, broker.ExecutionCompleted{ExecutionID: e.ID, ActionRef: e.ActionRef, Status: e.Status, FinishedAt: time.Now().UTC()})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(msgs) > 0 || len(reassigned) > 0 {
		m.deps.Logger.InfoContext(ctx, "sweeper repairing", "messages", len(msgs), "reassigned", len(reassigned))
	}
	if err := m.dispatchAll(ctx, reassigned); err != nil {
		return err
	}
	if err := broker.Send(ctx, m.deps.Broker, msgs...); err != nil {
		return err
	}
	// Waiting executions are scheduled by completions; should one be lost, or a worker have
	// just appeared, this fills every free slot.
	_, err = m.scheduleWaiting(ctx, sweepBatch)
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
