package executor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

const sweepBatch = 500

// lostAfter is how long a row may wait for its message before the sweeper takes the message
// for lost even though the queue that carries it still holds others: a backlog that old is
// not drained in order, or something keeps it from draining, and a duplicate costs little.
const lostAfter = 5 * time.Minute

// overdueMargin is how far past its timeout a running execution is taken for lost.
const overdueMargin = time.Minute

// republishEvery is how often the sweeper sends the same repair again. A row can stay stale
// for reasons a message does not fix (the sensor role is down and nobody consumes
// event.created); sending it every sweep would only pile duplicates into the queue.
const republishEvery = 30 * time.Second

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

// dbWatch keeps since when this process has reached PostgreSQL without a break. Heartbeats
// cannot reach a database that is away, so a worker's silence says nothing until the
// database has been back for as long as a worker may be silent.
type dbWatch struct {
	mu     sync.Mutex
	since  time.Time
	broken bool
}

func (w *dbWatch) observe(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case errors.Is(err, store.ErrUnavailable):
		w.broken = true
	case err == nil && w.broken:
		w.broken, w.since = false, time.Now()
	}
}

// watchedFor reports how long PostgreSQL has been reachable without a break, as far as this
// process saw.
func (w *dbWatch) watchedFor() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken {
		return 0
	}
	return time.Since(w.since)
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
		err := pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		m.db.observe(err)
		if err != nil {
			m.deps.Logger.WarnContext(ctx, what+" failed", "err", err)
		}
	}
}

// queueDepths answers, once per queue per sweep, whether a queue still holds messages.
type queueDepths struct {
	b      broker.Broker
	known  map[string]bool
	broken bool
}

// drained reports whether q holds no message waiting for a consumer. When the broker cannot
// say, nothing counts as drained: a message cannot be taken for lost on no evidence.
func (d *queueDepths) drained(ctx context.Context, q broker.Queue) bool {
	if held, ok := d.known[q.Name]; ok {
		return !held
	}
	if d.broken {
		return false
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	n, err := d.b.Depth(dctx, q)
	if err != nil {
		d.broken = true
		return false
	}
	d.known[q.Name] = n > 0
	return n == 0
}

func (m *Module) sweep(ctx context.Context) error {
	var msgs []broker.Payload
	var ended, undispatched []store.Execution
	now := time.Now()
	depths := &queueDepths{b: m.deps.Broker, known: make(map[string]bool)}
	// lost reports whether a row waiting since at for a message carried by q has lost it:
	// old enough, and q drained past it (or the row older than any backlog explains).
	lost := func(at time.Time, q broker.Queue) bool {
		return now.Sub(at) >= lostAfter || now.Sub(at) >= m.cfg.SweepAfter && depths.drained(ctx, q)
	}
	err := m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		msgs, ended, undispatched = msgs[:0], ended[:0], undispatched[:0]
		if ok, err := q.TryAdvisoryXactLock(ctx, "attune_executor_sweeper"); err != nil || !ok {
			return err
		}
		before := now.Add(-m.cfg.SweepAfter)
		events, err := q.EventListUnevaluated(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range events {
			if lost(e.Created, broker.QueueRuleEvents) && m.resent.due(fmt.Sprintf("event/%d", e.ID), now) {
				msgs = append(msgs, broker.NewEventCreated(e.ID, e.TriggerRef, deref(e.RuleRef), e.Payload, e.Created, e.Trace()))
			}
		}
		enfs, err := q.EnforcementListStale(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range enfs {
			if lost(e.Created, broker.QueueExecutorEnforcement) && m.resent.due(fmt.Sprintf("enforcement/%d", e.ID), now) {
				msgs = append(msgs, broker.InTrace(e.Trace(), broker.EnforcementCreated{EnforcementID: e.ID, RuleRef: e.RuleRef, EventID: e.EventID, Created: e.Created}))
			}
		}
		// A scheduled execution is carried first by the executor's request queue (when the
		// API created it) and then by its runner's dispatch queue; once both are drained past
		// it, its dispatch is lost.
		stuck, err := q.ExecutionListStale(ctx, store.ExecutionScheduled, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range stuck {
			action, err := m.actions.Get(ctx, e.ActionRef)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			onWorker := action.RunnerType != "" && action.RunnerType != workflowRunner && action.RunnerType != inquiryRunner
			dispatchLost := !onWorker
			switch {
			case onWorker && e.WorkerSelector != nil:
				// A selector's queue keeps its executions until a worker with its labels comes,
				// up to WorkerWaitTimeout: only a drained queue says that one was lost.
				dispatchLost = depths.drained(ctx, dispatchQueue(action.RunnerType, e.WorkerSelector.String()))
			case onWorker:
				dispatchLost = lost(e.Updated, broker.DispatchQueue(action.RunnerType))
			}
			if lost(e.Updated, broker.QueueExecutorRequests) && dispatchLost && m.resent.due(fmt.Sprintf("dispatch/%d", e.ID), now) {
				undispatched = append(undispatched, e)
			}
		}
		// Made undecided by an older version, and its request lost.
		unadmitted, err := q.ExecutionListUnadmitted(ctx, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range unadmitted {
			if lost(e.Created, broker.QueueExecutorRequests) && m.resent.due(fmt.Sprintf("request/%d", e.ID), now) {
				msgs = append(msgs, broker.InTrace(e.Trace(), broker.ExecutionRequested{ExecutionID: e.ID, ActionRef: e.ActionRef}))
			}
		}
		// A cancel request lost after its commit.
		canceling, err := q.ExecutionListStale(ctx, store.ExecutionCanceling, before, sweepBatch)
		if err != nil {
			return err
		}
		for _, e := range canceling {
			if e.Worker != nil && lost(e.Updated, broker.WorkerCancelQueue(*e.Worker)) && m.resent.due(fmt.Sprintf("cancel/%d", e.ID), now) {
				msgs = append(msgs, broker.InTrace(e.Trace(), broker.ExecutionCancelRequested{ExecutionID: e.ID, Worker: *e.Worker}))
			}
		}
		// What nobody will finish, or nobody can run, ends with the reason. A worker's
		// silence only counts once the database has been reachable for longer than a worker
		// may be silent: heartbeats cannot arrive while it is away.
		alive := m.cfg.WorkerAliveWithin
		trustSilence := m.db.watchedFor() >= alive
		for _, end := range []func() ([]store.Execution, error){
			func() ([]store.Execution, error) { return q.ExecutionAbandonOrphans(ctx, alive, trustSilence) },
			func() ([]store.Execution, error) { return q.ExecutionAbandonOverdue(ctx, overdueMargin) },
			func() ([]store.Execution, error) {
				if !trustSilence {
					return nil, nil
				}
				return q.ExecutionFailUnrunnable(ctx, store.UnrunnableParams{
					NoWorker: m.cfg.NoWorkerTimeout, Selected: m.cfg.WorkerWaitTimeout, AliveWithin: alive})
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
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.notify("", ended...)
	if n := len(msgs) + len(undispatched); n > 0 {
		m.deps.Logger.InfoContext(ctx, "sweeper repairing", "messages", n)
	}
	if err := m.deps.Relay.Send(ctx, msgs...); err != nil {
		return err
	}
	if err := m.dispatchAll(ctx, undispatched); err != nil {
		return err
	}
	// Admitted waiters are scheduled by the completion that admitted them; should that
	// message be lost, or the ending be one of the sweeper's own, this schedules them.
	return m.scheduleWaiting(ctx)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
