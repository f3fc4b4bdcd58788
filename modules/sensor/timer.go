package sensor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/schedule"
	"github.com/attune-go/attune/store"
)

// retryDelay spaces the attempts at a tick whose transaction failed; Grace bounds them.
const retryDelay = time.Second

// timer is one rule's schedule running while this replica leads.
type timer struct {
	// key is what the schedule is built from; a rule whose key changes gets a new timer, and
	// one whose key stays keeps its timer (and its execution_count) through rebuilds.
	key string
	// stop and done are nil for a rule whose trigger_params cannot be scheduled; it is kept
	// so that the warning is logged once per change, not at every rebuild.
	stop context.CancelFunc
	done chan struct{}
}

// halt stops the timer and waits until it has.
func (t *timer) halt() {
	if t.stop != nil {
		t.stop()
		<-t.done
	}
}

func timerKey(r store.Rule) string { return r.TriggerRef + " " + string(r.TriggerParams) }

// sync brings timers in line with the enabled rules: timers of rules gone or changed stop,
// rules new or changed get a timer, and the others are left alone. With catchUp, new timers
// start from Grace ago (but never before their rule was last changed), so that a tick that fell
// in a leadership hand-over still fires, once.
func (m *Module) sync(ctx context.Context, timers map[string]*timer, rules []store.Rule, catchUp bool) {
	want := make(map[string]store.Rule)
	for _, r := range rules {
		if isTimer(r.TriggerRef) {
			want[r.Ref] = r
		}
	}
	for ref, t := range timers {
		if r, ok := want[ref]; !ok || timerKey(r) != t.key {
			t.halt()
			delete(timers, ref)
			if t.stop != nil {
				// Said after the halt, which waits for the timer's last tick: none follows.
				m.deps.Logger.InfoContext(ctx, "timer stopped", "rule", ref)
			}
		}
	}
	now := time.Now()
	for ref, r := range want {
		if _, ok := timers[ref]; ok {
			continue
		}
		t := &timer{key: timerKey(r)}
		timers[ref] = t
		sched, err := plan(r)
		if err != nil {
			m.deps.Logger.WarnContext(ctx, "timer rule skipped: bad trigger_params", "rule", ref, "trigger", r.TriggerRef, "err", err)
			continue
		}
		from := now
		if catchUp {
			from = later(now.Add(-m.cfg.Grace), r.Updated)
		}
		tctx, stop := context.WithCancel(ctx)
		t.stop, t.done = stop, make(chan struct{})
		go func() {
			defer close(t.done)
			m.run(tctx, r, sched, from)
		}()
		m.deps.Logger.InfoContext(ctx, "timer started", "rule", ref, "trigger", r.TriggerRef)
	}
}

// run fires the ticks of one rule due after from, until ctx ends or the schedule does.
func (m *Module) run(ctx context.Context, r store.Rule, sched schedule.Schedule, from time.Time) {
	log := m.deps.Logger.With("rule", r.Ref, "trigger", r.TriggerRef)
	// count is the payload's execution_count: the ticks this timer fired. It is kept in
	// memory, so it starts again at 1 when the rule's trigger_params change and when another
	// replica takes the leadership over.
	count := 0
	for due := sched.Next(from); !due.IsZero(); {
		if !sleepUntil(ctx, due) {
			return
		}
		if late := time.Since(due); late > m.cfg.Grace {
			log.WarnContext(ctx, "timer ticks skipped: too late to fire", "due", due, "late", late)
			due = sched.Next(time.Now())
			continue
		}
		fired, err := m.fire(ctx, r, sched, due, count+1)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.WarnContext(ctx, "timer tick failed; trying again", "due", due, "err", err, "retry_in", retryDelay)
			select {
			case <-time.After(retryDelay):
				continue // the same tick, until it is too late
			case <-ctx.Done():
				return
			}
		}
		if fired {
			count++
		}
		due = sched.Next(due)
	}
	log.DebugContext(ctx, "timer has no ticks left")
}

// fire records the tick due at due and its event in one transaction, then announces the
// event. It reports false when the tick had been fired already, by a previous leader.
func (m *Module) fire(ctx context.Context, r store.Rule, sched schedule.Schedule, due time.Time, count int) (bool, error) {
	payload, err := json.Marshal(sched.Payload(due, count))
	if err != nil {
		return false, fmt.Errorf("encode payload of rule %s: %w", r.Ref, err)
	}
	var ev store.Event
	fired := false
	err = m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		fired = false
		first, err := q.TimerTickInsert(ctx, r.Ref, due)
		if err != nil || !first {
			return err
		}
		ev, err = q.EventInsert(ctx, store.EventInsertParams{TriggerRef: r.TriggerRef, Payload: payload, Source: "timer", RuleRef: r.Ref})
		fired = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("fire timer of rule %s due %s: %w", r.Ref, due.Format(time.RFC3339), err)
	}
	if !fired {
		m.deps.Logger.DebugContext(ctx, "timer tick already fired", "rule", r.Ref, "due", due)
		return false, nil
	}
	m.announceEvent(ctx, ev, r.Ref, m.deps.Logger.With("rule", r.Ref))
	return true, nil
}

// announceEvent tells the live stream and the rule matcher (ruleRef: only that rule's, or ""
// for every rule) of an event committed. The relay keeps what the broker cannot take now,
// and a publish lost with the process is repaired by the executor's sweeper, which
// republishes events no rule matcher has evaluated.
func (m *Module) announceEvent(ctx context.Context, ev store.Event, ruleRef string, log *slog.Logger) {
	if m.deps.Notifier != nil {
		m.deps.Notifier.Notify(broker.EventNotification(ev.ID, ev.TriggerRef, ev.Created))
	}
	if err := m.deps.Relay.Send(ctx, broker.NewEventCreated(ev.ID, ev.TriggerRef, ruleRef, ev.Payload, ev.Created, ev.Trace())); err != nil {
		log.WarnContext(ctx, "publish event; the sweeper will", "event_id", ev.ID, "trace_id", ev.Trace(), "err", err)
	}
}

// sleepUntil waits until the wall clock reaches t, and reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		d := time.Until(t)
		if d <= 0 {
			return true
		}
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return false
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
