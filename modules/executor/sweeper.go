package executor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

const sweepBatch = 500

// redispatchAfter is how long an execution may sit scheduled before its dispatch is sent
// again. It is long because a backlog legitimately keeps executions queued in the broker; a
// duplicate dispatch is harmless, only wasteful.
const redispatchAfter = 5 * time.Minute

// overdueMargin is how far past its timeout a running execution is taken for lost.
const overdueMargin = time.Minute

// republishEvery is how often the sweeper sends the same repair again. A row can stay stale
// for long for reasons a message does not fix (the sensor role is down and nobody consumes
// event.created); sending it every sweep would only pile duplicates into the queue.
const republishEvery = 5 * time.Minute

// republished remembers what this replica's sweeps sent and when.
type republished struct {
	mu   sync.Mutex
	sent map[string]time.Time
}

// due reports whether key may be sent now, and if so records that it is.
func (r *republished) due(key string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sent == nil {
		r.sent = make(map[string]time.Time)
	}
	if at, ok := r.sent[key]; ok && now.Sub(at) < republishEvery {
		return false
	}
	for k, at := range r.sent {
		if now.Sub(at) >= republishEvery {
			delete(r.sent, k)
		}
	}
	r.sent[key] = now
	return true
}

// sweepLoop repairs what a crash between a commit and its publish would strand, and what a
// worker that died leaves behind. Only one replica sweeps at a time.
func (m *Module) sweepLoop(ctx context.Context) error {
	return m.every(ctx, m.cfg.SweepInterval, "sweep", m.sweep)
}

// every runs pass each interval until ctx ends. A failed pass is logged and the next one
// tries again: the loops repair and catch up, so one failure must not stop the role.
func (m *Module) every(ctx context.Context, interval time.Duration, what string, pass func(context.Context) error) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if err := pass(ctx); err != nil && ctx.Err() == nil {
			m.deps.Logger.WarnContext(ctx, what+" failed", "err", err)
		}
	}
}

func (m *Module) sweep(ctx context.Context) error {
	var msgs []broker.Payload
	var ended []store.Execution
	err := m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		msgs, ended = msgs[:0], ended[:0]
		if ok, err := q.TryAdvisoryXactLock(ctx, "attune_executor_sweeper"); err != nil || !ok {
			return err
		}
		before := time.Now().Add(-m.cfg.SweepAfter)
		events, err := q.EventListUnevaluated(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, e := range events {
			if m.resent.due(fmt.Sprintf("event/%d", e.ID), now) {
				msgs = append(msgs, broker.NewEventCreated(e.ID, e.TriggerRef, deref(e.RuleRef), e.Payload))
			}
		}
		enfs, err := q.EnforcementListStale(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range enfs {
			if m.resent.due(fmt.Sprintf("enforcement/%d", e.ID), now) {
				msgs = append(msgs, broker.EnforcementCreated{EnforcementID: e.ID, RuleRef: e.RuleRef, EventID: e.EventID})
			}
		}
		// A dispatch lost after its commit; otherwise a scheduled execution is just queued
		// in its runner's dispatch queue.
		stuck, err := q.ExecutionListStale(ctx, store.ExecutionScheduled, time.Now().Add(-redispatchAfter), sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range stuck {
			if m.resent.due(fmt.Sprintf("dispatch/%d", e.ID), now) {
				msgs = append(msgs, broker.ExecutionRequested{ExecutionID: e.ID, ActionRef: e.ActionRef})
			}
		}
		// A request that neither passed admission nor waits in a queue: lost after its commit.
		unadmitted, err := q.ExecutionListUnadmitted(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range unadmitted {
			if m.resent.due(fmt.Sprintf("request/%d", e.ID), now) {
				msgs = append(msgs, broker.ExecutionRequested{ExecutionID: e.ID, ActionRef: e.ActionRef})
			}
		}
		// A cancel request lost after its commit.
		canceling, err := q.ExecutionListStale(ctx, store.ExecutionCanceling, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range canceling {
			if e.Worker != nil && m.resent.due(fmt.Sprintf("cancel/%d", e.ID), now) {
				msgs = append(msgs, broker.ExecutionCancelRequested{ExecutionID: e.ID, Worker: *e.Worker})
			}
		}
		// What nobody will finish, or nobody can run, ends with the reason.
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
	m.notify("", ended...)
	if len(msgs) > 0 {
		m.deps.Logger.InfoContext(ctx, "sweeper repairing", "messages", len(msgs))
	}
	if err := broker.Send(ctx, m.deps.Broker, msgs...); err != nil {
		return err
	}
	// Admitted waiters are scheduled by the completion that admitted them; should that
	// message be lost, this schedules them.
	return m.scheduleWaiting(ctx)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
