package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// syncBuffer is a log sink that timers may write to concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestSyncKeepsUnchangedTimers(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	// Daily timers with no catch-up never fire during the test, so no store is needed.
	m := &Module{cfg: Config{Grace: time.Second}, deps: Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))}}
	ctx := context.Background()
	timers := map[string]*timer{}
	defer func() {
		for _, tm := range timers {
			tm.halt()
		}
	}()
	daily := func(ref, params string) store.Rule {
		return store.Rule{Ref: ref, TriggerRef: IntervalTimer, TriggerParams: json.RawMessage(params)}
	}

	m.sync(ctx, timers, []store.Rule{
		daily("a", `{"interval": 1, "unit": "days"}`),
		daily("b", `{"interval": 2, "unit": "days"}`),
		daily("bad", `{"interval": 0}`),
		{Ref: "hook", TriggerRef: "core.webhook", TriggerParams: json.RawMessage(`{"url": "x"}`)},
	}, false)
	require.Len(t, timers, 3, "no timer for a rule on another trigger")
	a, b, bad := timers["a"], timers["b"], timers["bad"]
	require.NotNil(t, a.stop)
	require.Nil(t, bad.stop, "a rule with bad trigger_params is skipped")
	require.Equal(t, 1, strings.Count(logs.String(), "bad trigger_params"))
	require.Contains(t, logs.String(), "rule=bad")
	require.Contains(t, logs.String(), `err="interval: want an integer greater than 0, got 0"`, "the warning says why")

	m.sync(ctx, timers, []store.Rule{
		daily("a", `{"interval": 1, "unit": "days"}`),
		daily("b", `{"interval": 3, "unit": "days"}`),
		daily("bad", `{"interval": 0}`),
	}, false)
	require.Same(t, a, timers["a"], "an unchanged rule keeps its timer")
	require.NotSame(t, b, timers["b"], "a changed rule gets a new timer")
	require.Equal(t, 1, strings.Count(logs.String(), "bad trigger_params"), "a bad rule is reported once per change")
	select {
	case <-b.done:
	default:
		t.Fatal("the old timer of a changed rule is stopped")
	}

	m.sync(ctx, timers, []store.Rule{daily("a", `{"interval": 1, "unit": "days"}`)}, false)
	require.Len(t, timers, 1, "timers of rules gone or disabled stop")
	require.Same(t, a, timers["a"])
}

func TestFireOncePerTick(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	_, err := s.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "core", Path: "/packs/core"},
		Triggers: []store.Trigger{{Ref: IntervalTimer}},
		Actions:  []store.Action{{Ref: "core.noop", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
		Rules:    []store.Rule{{Ref: "core.tick", TriggerRef: IntervalTimer, TriggerParams: json.RawMessage(`{"interval": 5}`), ActionRef: "core.noop", Enabled: true}},
	})
	require.NoError(t, err)
	r, err := s.RuleGetByRef(ctx, "core.tick")
	require.NoError(t, err)
	sched, err := plan(r)
	require.NoError(t, err)
	br := membroker.New(broker.Options{})
	defer func() { _ = br.Close() }()

	// Two leaders at once (one frozen past its lease, say) fire the same tick: one event.
	due := sched.Next(time.Now())
	results := make(chan bool, 2)
	heard := &notes{}
	for range 2 {
		m, err := New(Config{}, Deps{Logger: slog.New(slog.DiscardHandler), Store: s, Broker: br, Notifier: heard})
		require.NoError(t, err)
		go func() {
			fired, err := m.fire(ctx, r, sched, due, 1)
			if err != nil {
				t.Errorf("fire: %v", err)
			}
			results <- fired
		}()
	}
	first, second := <-results, <-results
	require.True(t, first != second, "exactly one of the two fired the tick")
	events, total, err := s.EventList(ctx, store.EventFilter{TriggerRef: IntervalTimer}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 1, total)
	require.JSONEq(t, `{"type": "interval", "interval_seconds": 5, "fired_at": "`+due.Format(time.RFC3339)+`", "execution_count": 1}`, string(events[0].Payload))
	// The live stream hears of the one event, from the leader that fired it, once it is committed.
	require.Equal(t, []broker.Notification{broker.EventNotification(events[0].ID, IntervalTimer, events[0].Created)}, heard.all())
}

// notes records what the timers tell the live stream.
type notes struct {
	mu  sync.Mutex
	got []broker.Notification
}

func (n *notes) Notify(ns ...broker.Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, ns...)
}

func (n *notes) all() []broker.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got
}
