package amqpbroker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/amqpbroker"
	"github.com/attune-go/attune/broker/brokertest"
)

// With quorum queues every durable queue, a worker's expiring ones included, is a quorum
// queue, and the live stream's transient queue stays an exclusive classic one. Declaring with
// exactly these arguments succeeds only if the queue has them.
func TestQuorumDeclaresQuorumQueues(t *testing.T) {
	t.Parallel()
	ns := brokertest.Namespace(t)
	b := brokertest.NewAMQPWith(t, amqpbroker.Config{Options: broker.Options{Namespace: ns}, QueueType: amqpbroker.QueueQuorum})
	cancelQueue := broker.WorkerCancelQueue("w1")
	require.NoError(t, b.Declare(context.Background(), cancelQueue))

	ch := channel(t)
	dlx := amqp.Table{"x-dead-letter-exchange": string(ns) + "." + broker.ExchangeDeadLetter}
	for _, q := range []struct {
		name string
		args amqp.Table
	}{
		{broker.DeadLetterQueue.Name, amqp.Table{}},
		{broker.QueueRuleEvents.Name, dlx},
		{broker.QueueExecutorCompletions.Name, dlx},
		{cancelQueue.Name, amqp.Table{"x-dead-letter-exchange": dlx["x-dead-letter-exchange"], "x-expires": broker.WorkerQueueExpiry.Milliseconds()}},
	} {
		q.args["x-queue-type"] = "quorum"
		_, err := ch.QueueDeclare(string(ns)+"."+q.name, true, false, false, false, q.args)
		require.NoError(t, err, "%s is not a quorum queue with these arguments", q.name)
	}

	// A transient queue is consumed on the broker's connection, which makes it exclusive.
	stream := broker.StreamQueue("replica")
	got := make(chan broker.Message, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Subscribe(ctx, broker.Subscription{Queue: stream, Prefetch: 1}, func(_ context.Context, m broker.Message) error {
			got <- m
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	n, err := broker.NewMessage(broker.NotificationCreated{Notifications: []broker.Notification{broker.EventNotification(1, "core.webhook", time.Now())}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		// Until the subscription has declared its queue, nobody listens and the publish is
		// dropped: publish again until one arrives.
		require.NoError(t, b.Publish(context.Background(), n))
		select {
		case <-got:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}, 10*time.Second, time.Millisecond)
	_, err = channel(t).QueueDeclarePassive(string(ns)+"."+stream.Name, false, true, false, false, nil)
	var amqpErr *amqp.Error
	require.ErrorAs(t, err, &amqpErr, "another connection may touch the stream queue: it is not exclusive")
	require.Equal(t, amqp.ResourceLocked, amqpErr.Code, amqpErr.Reason)
}

// Asking for quorum queues where classic ones exist (or the other way round) fails at once,
// naming the queue and what to do, rather than retrying or crashing later.
func TestQueueTypeMismatchIsAClearError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ existing, asked amqpbroker.QueueType }{
		{amqpbroker.QueueClassic, amqpbroker.QueueQuorum},
		{amqpbroker.QueueQuorum, amqpbroker.QueueClassic},
	} {
		t.Run(string(tc.asked), func(t *testing.T) {
			t.Parallel()
			ns := brokertest.Namespace(t)
			brokertest.NewAMQPWith(t, amqpbroker.Config{Options: broker.Options{Namespace: ns}, QueueType: tc.existing})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := amqpbroker.New(ctx, amqpbroker.Config{URL: brokertest.URL(t), Options: broker.Options{Namespace: ns}, QueueType: tc.asked})
			require.ErrorIs(t, err, amqpbroker.ErrQueueTypeMismatch)
			require.ErrorContains(t, err, "declare queue "+string(ns)+"."+broker.DeadLetterQueue.Name)
			require.ErrorContains(t, err, "it is a "+string(tc.existing)+" queue and "+string(tc.asked)+" was asked for")
			require.ErrorContains(t, err, "rabbitmqctl delete_queue")
			require.NoError(t, ctx.Err(), "New gave up at once rather than at the deadline")
		})
	}
}

func TestParseQueueType(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"classic", "quorum"} {
		qt, err := amqpbroker.ParseQueueType(ok)
		require.NoError(t, err)
		require.Equal(t, ok, string(qt))
	}
	_, err := amqpbroker.ParseQueueType("stream")
	require.EqualError(t, err, `invalid queue type "stream": want classic or quorum`)
}

// channel opens a channel on the test RabbitMQ, closed at cleanup.
func channel(t *testing.T) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(brokertest.URL(t))
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
			t.Logf("close: %v", err)
		}
	})
	ch, err := conn.Channel()
	require.NoError(t, err)
	return ch
}
