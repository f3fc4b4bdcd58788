package brokertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
)

func testDepth(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	ctx := context.Background()
	q := broker.WorkerCancelQueue("counted")
	n, err := b.Depth(ctx, q)
	require.NoError(t, err)
	require.Zero(t, n, "a queue that does not exist holds nothing")
	require.NoError(t, b.Declare(ctx, q))
	for id := range int64(3) {
		m, err := broker.NewMessage(broker.ExecutionCancelRequested{ExecutionID: id, Worker: "counted"})
		require.NoError(t, err)
		publish(t, b, m)
	}
	require.Eventually(t, func() bool {
		n, err := b.Depth(ctx, q)
		return err == nil && n == 3
	}, wait, 10*time.Millisecond, "three messages wait")
	got := make(chan broker.Message, 3)
	subscribe(t, b, broker.Subscription{Queue: q, Prefetch: 3}, collect(got))
	for range 3 {
		receive(t, got)
	}
	require.Eventually(t, func() bool {
		n, err := b.Depth(ctx, q)
		return err == nil && n == 0
	}, wait, 10*time.Millisecond, "none waits once consumed")
}

// transientError is what a handler returns while a dependency is away.
type transientError struct{}

func (transientError) Error() string   { return "database unavailable" }
func (transientError) Transient() bool { return true }

func testOutage(t *testing.T, newBroker Factory) {
	opts := fastOptions()
	opts.MaxAttempts = 2
	b := newBroker(t, opts)
	dead := deadLetters(t, b)
	var mu sync.Mutex
	calls := 0
	got := make(chan broker.Message, 1)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(_ context.Context, m broker.Message) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 5 {
			return fmt.Errorf("enforce event: %w", transientError{})
		}
		got <- m
		return nil
	})
	sent := event(t, 12)
	publish(t, b, sent)
	m := receive(t, got)
	require.Equal(t, sent.ID, m.ID, "handled once the outage is over, though it outlasted MaxAttempts")
	require.Equal(t, 0, m.Headers.RetryCount, "an outage uses up no attempt")
	require.Equal(t, 5, m.Headers.OutageRetries)
	select {
	case d := <-dead:
		t.Fatalf("dead-lettered %s during an outage", d.ID)
	default:
	}
}

func testOutageTooLong(t *testing.T, newBroker Factory) {
	opts := fastOptions()
	opts.MaxOutage = 50 * time.Millisecond
	b := newBroker(t, opts)
	dead := deadLetters(t, b)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(context.Context, broker.Message) error {
		return fmt.Errorf("enforce event: %w", transientError{})
	})
	sent := event(t, 13)
	publish(t, b, sent)
	m := receive(t, dead)
	require.Equal(t, sent.ID, m.ID, "dead-lettered once its outage outlasted MaxOutage")
	require.NotNil(t, m.Headers.OutageSince)
	require.Zero(t, m.Headers.RetryCount)
}
