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

// sweepLoop repairs what a crash between a commit and its publish would strand, and
// abandons the executions of workers that died. Only one replica sweeps at a time.
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
	err := m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		msgs = msgs[:0]
		if ok, err := q.TryAdvisoryXactLock(ctx, "attune_executor_sweeper"); err != nil || !ok {
			return err
		}
		before := time.Now().Add(-m.cfg.SweepAfter)
		events, err := q.EventListUnevaluated(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range events {
			msgs = append(msgs, eventCreated(e))
		}
		enfs, err := q.EnforcementListStale(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range enfs {
			msgs = append(msgs, broker.EnforcementCreated{EnforcementID: e.ID, RuleRef: e.RuleRef, EventID: e.EventID})
		}
		for status, since := range map[string]time.Time{
			store.ExecutionRequested: before,
			store.ExecutionScheduled: time.Now().Add(-redispatchAfter),
		} {
			execs, err := q.ExecutionListStale(ctx, status, since, sweepBatch)
			if err != nil {
				return err
			}
			for _, e := range execs {
				msgs = append(msgs, broker.ExecutionRequested{ExecutionID: e.ID, ActionRef: e.ActionRef})
			}
		}
		abandoned, err := q.ExecutionAbandonOrphans(ctx, m.cfg.WorkerAliveWithin)
		if err != nil {
			return err
		}
		for _, e := range abandoned {
			m.deps.Logger.WarnContext(ctx, "execution abandoned", "execution_id", e.ID, "action", e.ActionRef, "reason", deref(e.Reason))
			msgs = append(msgs, broker.ExecutionCompleted{ExecutionID: e.ID, ActionRef: e.ActionRef, Status: e.Status, FinishedAt: time.Now()})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(msgs) > 0 {
		m.deps.Logger.InfoContext(ctx, "sweeper republishing", "messages", len(msgs))
	}
	if err := broker.Send(ctx, m.deps.Broker, msgs...); err != nil {
		return err
	}
	// Waiting executions are scheduled by completions; should one be lost, or the replica
	// that left them waiting die, this fills every free slot.
	return m.scheduleWaiting(ctx, sweepBatch)
}

func eventCreated(e store.Event) broker.EventCreated {
	return broker.NewEventCreated(e.ID, e.TriggerRef, deref(e.RuleRef), e.Payload)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
