package brokertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
)

// countingMeter is a broker.Meter that keeps its counts by name ("published EventCreated",
// "consumed attune.rules.events", ...).
type countingMeter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *countingMeter) add(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[what]++
}

func (c *countingMeter) get(what string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[what]
}

func (c *countingMeter) Published(t broker.Type) { c.add("published " + string(t)) }

func (c *countingMeter) Queue(kind string) broker.QueueMeter { return queueCounts{c, kind} }

type queueCounts struct {
	c    *countingMeter
	kind string
}

func (q queueCounts) Consumed()     { q.c.add("consumed " + q.kind) }
func (q queueCounts) Redelivered()  { q.c.add("redelivered " + q.kind) }
func (q queueCounts) DeadLettered() { q.c.add("dead-lettered " + q.kind) }

// testMeter: the meter counts what is published, and each delivery by its fate: handled,
// handled again after a failed attempt or after its consumer was lost, dead-lettered.
func testMeter(t *testing.T, newBroker Factory) {
	meter := &countingMeter{counts: make(map[string]int)}
	opts := fastOptions()
	opts.Meter = meter
	opts.DrainTimeout = 50 * time.Millisecond
	b := newBroker(t, opts)
	dead := deadLetters(t, b)
	got := make(chan broker.Message, 2)
	var failed sync.Once
	sub := subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(ctx context.Context, m broker.Message) error {
		p, err := broker.Decode[broker.EventCreated](m)
		if err != nil {
			return err
		}
		if p.EventID == 2 {
			return broker.Permanent(errors.New("payload names no trigger"))
		}
		fail := false
		failed.Do(func() { fail = true })
		if fail {
			return errors.New("database unavailable")
		}
		return collect(got)(ctx, m)
	})
	retried, refused := event(t, 1), event(t, 2)
	publish(t, b, retried, refused)
	require.Equal(t, retried.ID, receive(t, got).ID)
	require.Equal(t, refused.ID, receive(t, dead).ID)
	want := map[string]int{
		"published EventCreated":            2,
		"consumed attune.rules.events":      3,
		"redelivered attune.rules.events":   1,
		"dead-lettered attune.rules.events": 1,
	}
	requireCounts(t, meter, want)
	sub.stop(t)

	// A delivery its stopping consumer never settled comes again, marked redelivered.
	started := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(context.Context, broker.Message) error {
		close(started)
		<-release
		return nil
	})
	lost := event(t, 3)
	publish(t, b, lost)
	<-started
	stuck.stop(t)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, collect(got))
	require.Equal(t, lost.ID, receive(t, got).ID)
	want["published EventCreated"] = 3
	want["consumed attune.rules.events"] = 5
	want["redelivered attune.rules.events"] = 2
	requireCounts(t, meter, want)
}

func requireCounts(t *testing.T, meter *countingMeter, want map[string]int) {
	t.Helper()
	require.Eventually(t, func() bool {
		for what, n := range want {
			if meter.get(what) != n {
				return false
			}
		}
		return true
	}, wait, 10*time.Millisecond, "counts: want %v, have %s", want, fmt.Sprint(meter.snapshot()))
}

func (c *countingMeter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}
