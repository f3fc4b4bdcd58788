package relay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/broker/relay"
)

// While RabbitMQ is out of reach, Send answers within its attempt bound (the first) or at once
// (every later one), and nothing is lost: once RabbitMQ is back, everything sent arrives, in
// the order it was sent.
func TestKeepsWhatTheBrokerCannotTakeAndSendsItInOrder(t *testing.T) {
	t.Parallel()
	proxy, proxied := brokertest.NewURLProxy(t, brokertest.URL(t))
	b := brokertest.NewAMQPAt(t, proxied, broker.Options{RetryBackoff: 5 * time.Millisecond})
	require.NoError(t, b.Declare(context.Background(), broker.QueueRuleEvents))

	const attempt = 300 * time.Millisecond
	r := relay.New(b, relay.Config{Attempt: attempt})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = r.Run(ctx) }()

	event := func(id int64) broker.Payload { return broker.EventCreated{EventID: id, TriggerRef: "demo.hook"} }
	require.NoError(t, r.Send(ctx, event(1)))
	require.Zero(t, r.Pending(), "taken at once while the broker is there")

	proxy.Stop()
	require.Eventually(t, func() bool { return b.Ping(ctx) != nil }, 10*time.Second, 10*time.Millisecond)
	start := time.Now()
	require.NoError(t, r.Send(ctx, event(2)))
	first := time.Since(start)
	start = time.Now()
	for id := int64(3); id <= 50; id++ {
		require.NoError(t, r.Send(ctx, event(id)))
	}
	rest := time.Since(start)
	t.Logf("with the broker away: the first send answered in %s, the next 48 in %s", first, rest)
	require.Less(t, first, attempt+2*time.Second, "the first send waits its attempt and no longer")
	require.Equal(t, 49, r.Pending(), "the later ones queue behind it without trying the broker")

	proxy.Start(t)
	require.Eventually(t, func() bool { return r.Pending() == 0 }, 60*time.Second, 10*time.Millisecond, "kept messages never sent")

	got := make(chan int64, 64)
	sub, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Subscribe(sub, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(_ context.Context, m broker.Message) error {
			p, err := broker.Decode[broker.EventCreated](m)
			if err != nil {
				return err
			}
			got <- p.EventID
			return nil
		})
	}()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()
	var order []int64
	for len(order) < 50 {
		select {
		case id := <-got:
			order = append(order, id)
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of 50 messages arrived: %v", len(order), order)
		}
	}
	for i, id := range order {
		require.Equal(t, int64(i+1), id, "messages arrive in the order they were sent: %v", order)
	}
}

// A message no queue is bound for can never be sent: Send says so instead of keeping it.
func TestUnroutableIsAnError(t *testing.T) {
	t.Parallel()
	b := membroker.New(broker.Options{})
	defer b.Close()
	r := relay.New(b, relay.Config{})
	err := r.Send(context.Background(), broker.ExecutionCancelRequested{ExecutionID: 1, Worker: "nobody"})
	require.True(t, errors.Is(err, broker.ErrUnroutable), "got %v", err)
	require.Zero(t, r.Pending())
}

// The messages kept are bounded: past the bound the oldest go (the sweeper finds their rows),
// and what is left is sent once the broker takes it again.
func TestKeepsABoundedBacklog(t *testing.T) {
	t.Parallel()
	b := membroker.New(broker.Options{})
	require.NoError(t, b.Close()) // every publish fails until... never: the bound is what is tested
	r := relay.New(b, relay.Config{Attempt: 10 * time.Millisecond, MaxPending: 5})
	for id := range int64(8) {
		require.NoError(t, r.Send(context.Background(), broker.EventCreated{EventID: id, TriggerRef: "demo.hook"}))
	}
	require.Equal(t, 5, r.Pending())
}
