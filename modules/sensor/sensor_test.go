package sensor_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/sensor"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

const ruleRef = "tick.every_second"

// replica is one sensor module running on its own pool, as in its own process.
type replica struct {
	mod    *sensor.Module
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, url string, br broker.Broker) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := store.Open(ctx, store.Config{URL: url, MaxConns: 6})
	require.NoError(t, err)
	mod, err := sensor.New(sensor.Config{}, sensor.Deps{Logger: slog.New(slog.DiscardHandler), Store: store.NewStore(pool), Broker: br})
	require.NoError(t, err)
	r := &replica{mod: mod, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- mod.Run(ctx)
		pool.Close()
	}()
	return r
}

// stop cancels the replica and waits for it to return.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(t, err)
		r.done <- nil // let a second stop return at once
	case <-time.After(15 * time.Second):
		t.Fatal("the sensor did not stop")
	}
}

// collector keeps the EventCreated messages the rule matcher's queue receives.
type collector struct {
	mu     sync.Mutex
	events []broker.EventCreated
}

func (c *collector) handle(_ context.Context, m broker.Message) error {
	p, err := broker.Decode[broker.EventCreated](m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, p)
	return nil
}

func (c *collector) all() []broker.EventCreated {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

func TestTimerFiresEachTickOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.NewDatabase(t)
	pool, err := store.Open(ctx, store.Config{URL: url, MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := store.NewStore(pool)
	core, err := pack.Core()
	require.NoError(t, err)
	_, err = pack.Register(ctx, s, core)
	require.NoError(t, err)
	_, err = s.PackRegister(ctx, store.PackRegistration{
		Pack:  store.Pack{Ref: "tick", Path: "/packs/tick"},
		Rules: []store.Rule{{Ref: ruleRef, TriggerRef: sensor.IntervalTimer, TriggerParams: json.RawMessage(`{"interval": 1}`), ActionRef: "core.noop", Enabled: true}},
	})
	require.NoError(t, err)

	br := membroker.New(broker.Options{})
	var got collector
	subCtx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- br.Subscribe(subCtx, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 8}, got.handle)
	}()
	t.Cleanup(func() {
		stopSub()
		<-subDone
		_ = br.Close()
	})

	a, b := startReplica(t, url, br), startReplica(t, url, br)
	t.Cleanup(func() { a.stop(t); b.stop(t) })
	var both atomic.Bool
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for watchCtx.Err() == nil {
			if a.mod.Leading() && b.mod.Leading() {
				both.Store(true)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	require.Eventually(t, func() bool { return len(got.all()) >= 3 }, 20*time.Second, 50*time.Millisecond, "three ticks")
	var leader, follower *replica
	require.Eventually(t, func() bool {
		leader, follower = a, b
		if b.mod.Leading() {
			leader, follower = b, a
		}
		return leader.mod.Leading() && !follower.mod.Leading()
	}, 5*time.Second, 10*time.Millisecond, "one replica leads")

	// The leader goes away; the other takes over and the ticks go on.
	leader.stop(t)
	before := len(got.all())
	require.Eventually(t, func() bool { return follower.mod.Leading() && len(got.all()) >= before+3 },
		20*time.Second, 50*time.Millisecond, "three more ticks from the other replica")
	require.False(t, both.Load(), "never two leaders at once")

	// Disabling the rule stops its timer. A tick in flight when the update commits may still
	// land, so only ticks due more than a second later count.
	disabled := time.Now()
	_, err = pool.Exec(ctx, `UPDATE attune.rule SET enabled = false WHERE ref = $1`, ruleRef)
	require.NoError(t, err)
	require.Never(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM attune.timer_tick WHERE rule_ref = $1 AND tick_at > $2`,
			ruleRef, disabled.Add(time.Second)).Scan(&n))
		return n > 0
	}, 3*time.Second, 100*time.Millisecond, "no tick after the rule was disabled")

	// Every event was announced once, and every tick has exactly one event. The events are
	// counted again at each look: a tick the disabling did not beat may still be landing.
	var rows, ticks int
	require.Eventually(t, func() bool {
		require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM attune.event WHERE rule_ref = $1),
			(SELECT count(*) FROM attune.timer_tick WHERE rule_ref = $1)`, ruleRef).Scan(&rows, &ticks))
		return len(got.all()) == rows
	}, 10*time.Second, 20*time.Millisecond, "each event published")
	require.Equal(t, rows, ticks)

	var fired []time.Time
	seen := map[int64]bool{}
	for _, e := range got.all() {
		require.False(t, seen[e.EventID], "event %d announced twice", e.EventID)
		seen[e.EventID] = true
		require.Equal(t, sensor.IntervalTimer, e.TriggerRef)
		require.Equal(t, ruleRef, e.RuleRef)
		ev, err := s.EventGet(ctx, e.EventID)
		require.NoError(t, err)
		require.Equal(t, "timer", ev.Source)
		require.Equal(t, ruleRef, *ev.RuleRef)
		var p struct {
			Type            string  `json:"type"`
			IntervalSeconds float64 `json:"interval_seconds"`
			FiredAt         string  `json:"fired_at"`
			ExecutionCount  int     `json:"execution_count"`
		}
		require.NoError(t, json.Unmarshal(ev.Payload, &p))
		require.Equal(t, "interval", p.Type)
		require.EqualValues(t, 1, p.IntervalSeconds)
		require.Positive(t, p.ExecutionCount)
		at, err := time.Parse(time.RFC3339, p.FiredAt)
		require.NoError(t, err)
		fired = append(fired, at)
	}
	slices.SortFunc(fired, time.Time.Compare)
	for i := 1; i < len(fired); i++ {
		// Distinct, and none lost at the hand-over: the new leader fired the ticks the old
		// one had not.
		require.Equal(t, time.Second, fired[i].Sub(fired[i-1]), "ticks %s and %s", fired[i-1], fired[i])
	}
}
