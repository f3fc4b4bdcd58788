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

func TestConformance(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, func(t *testing.T, opts broker.Options) broker.Broker {
		return brokertest.NewAMQP(t, opts)
	})
}

// The same with quorum queues, which a single node runs too: only the live stream's
// transient queues stay classic.
func TestConformanceQuorum(t *testing.T) {
	t.Parallel()
	brokertest.Run(t, func(t *testing.T, opts broker.Options) broker.Broker {
		return brokertest.NewAMQPWith(t, amqpbroker.Config{Options: opts, QueueType: amqpbroker.QueueQuorum})
	})
}

// The connection is cut under a running subscription and comes back: Ping follows it, the
// subscription resumes on its own and a publish made while it was gone still arrives.
func TestReconnectsAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t)
	proxy := brokertest.NewProxy(t, hostPort(t, url))
	b := brokertest.NewAMQPAt(t, proxiedURL(t, url, proxy.Addr()), broker.Options{RetryBackoff: 5 * time.Millisecond})
	testSurvivesOutage(t, b, proxy)
}

// The same with RabbitMQ itself stopped and started (opt-in: it disturbs every other test).
func TestReconnectsAfterRabbitMQRestart(t *testing.T) {
	url := brokertest.URL(t)
	rabbit := brokertest.RestartableRabbitMQ(t, hostPort(t, url))
	b := brokertest.NewAMQP(t, broker.Options{RetryBackoff: 5 * time.Millisecond})
	testSurvivesOutage(t, b, rabbit)
}

func testSurvivesOutage(t *testing.T, b *amqpbroker.Broker, outage brokertest.Outage) {
	got := subscribeEvents(t, b, 2)

	before := mustMessage(t, 1)
	require.NoError(t, b.Publish(context.Background(), before))
	require.Equal(t, before.ID, (<-got).ID)

	outage.Stop()
	require.Eventually(t, func() bool { return errors.Is(b.Ping(context.Background()), amqpbroker.ErrNotConnected) },
		10*time.Second, 10*time.Millisecond, "Ping still succeeds with the broker gone")

	// A publish while the broker is away waits for it instead of failing or dropping.
	during := mustMessage(t, 2)
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		published <- b.Publish(ctx, during)
	}()

	outage.Start(t)
	require.Eventually(t, func() bool { return b.Ping(context.Background()) == nil },
		60*time.Second, 10*time.Millisecond, "no reconnect after the broker came back")
	require.NoError(t, <-published)
	for {
		select {
		case m := <-got:
			if m.ID == during.ID {
				return
			}
			// The first message's ack may have been cut off with the connection: delivery is
			// at least once, so it may come again, but nothing else may.
			require.Equal(t, before.ID, m.ID, "unexpected message after the reconnect")
		case <-time.After(60 * time.Second):
			t.Fatal("the subscription did not resume after the reconnect")
		}
	}
}

func TestNewFailsClearlyWhenUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := amqpbroker.New(ctx, amqpbroker.Config{URL: "amqp://guest:secret@127.0.0.1:1/"})
	require.ErrorContains(t, err, "connect to RabbitMQ at amqp://guest:xxxxx@127.0.0.1:1/")
	require.NotContains(t, err.Error(), "secret")
}

func TestValidateURL(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"localhost:5672", "http://localhost", "amqp://", "amqp://user:pw@host:notaport/"} {
		err := amqpbroker.ValidateURL(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), ":pw@", "the password must not be echoed")
	}
	require.NoError(t, amqpbroker.ValidateURL("amqp://guest:guest@localhost:5672/"))
}

func mustMessage(tb testing.TB, id int64) broker.Message {
	tb.Helper()
	m, err := broker.NewMessage(broker.EventCreated{EventID: id, TriggerRef: "core.webhook"})
	require.NoError(tb, err)
	return m
}

func BenchmarkPublishConsume(b *testing.B) {
	brokertest.BenchPublishConsume(b, brokertest.NewAMQP(b, broker.Options{}))
}

// A queue that the broker will never let us declare (here: one that exists with other
// arguments) fails the subscription with the broker's reason instead of retrying forever.
func TestSubscribeFailsWhenRefused(t *testing.T) {
	t.Parallel()
	ns := brokertest.Namespace(t)
	b := brokertest.NewAMQP(t, broker.Options{Namespace: ns})
	conn, err := amqp.Dial(brokertest.URL(t))
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	name := string(ns) + ".attune.conflicting"
	_, err = ch.QueueDeclare(name, true, false, false, false, nil)
	require.NoError(t, err)
	t.Cleanup(func() { brokertest.DeleteQueues(t, name) }) // its own connection: conn is closed by then

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := broker.Queue{Name: "attune.conflicting", Types: []broker.Type{broker.TypeEventCreated}}
	err = b.Subscribe(ctx, broker.Subscription{Queue: q}, func(context.Context, broker.Message) error { return nil })
	require.ErrorContains(t, err, "PRECONDITION_FAILED")
	require.NoError(t, ctx.Err(), "Subscribe gave up at once rather than at the deadline")
}

// A declaration made while the broker is away waits for it, as a publish does, rather than
// fail the caller (a worker starting during a broker restart).
func TestDeclareWaitsOutAnOutage(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t)
	proxy := brokertest.NewProxy(t, hostPort(t, url))
	b := brokertest.NewAMQPAt(t, proxiedURL(t, url, proxy.Addr()), broker.Options{})
	proxy.Stop()
	require.Eventually(t, func() bool { return b.Ping(context.Background()) != nil }, 10*time.Second, 10*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		done <- b.Declare(ctx, broker.WorkerCancelQueue("late"))
	}()
	proxy.Start(t)
	require.NoError(t, <-done)
}

// A worker's queues expire after their last consumer, so that worker names that change with
// every process do not leave queues behind for good. Declaring with exactly these arguments
// succeeds only if the queue has them.
func TestWorkerQueuesExpire(t *testing.T) {
	t.Parallel()
	ns := brokertest.Namespace(t)
	b := brokertest.NewAMQP(t, broker.Options{Namespace: ns})
	q := broker.WorkerCancelQueue("w1")
	require.NoError(t, b.Declare(context.Background(), q))
	conn, err := amqp.Dial(brokertest.URL(t))
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare(string(ns)+"."+q.Name, true, false, false, false, amqp.Table{
		"x-dead-letter-exchange": string(ns) + "." + broker.ExchangeDeadLetter,
		"x-expires":              broker.WorkerQueueExpiry.Milliseconds(),
	})
	require.NoError(t, err)
}

// Best-effort messages are not written to disk, and the others are: read the delivery mode
// RabbitMQ hands out for each.
func TestBestEffortIsTransient(t *testing.T) {
	t.Parallel()
	ns := brokertest.Namespace(t)
	b := brokertest.NewAMQP(t, broker.Options{Namespace: ns})
	conn, err := amqp.Dial(brokertest.URL(t))
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil) // server-named, exclusive
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(q.Name, "#", string(ns)+"."+broker.ExchangeNotifications, false, nil))
	require.NoError(t, ch.QueueBind(q.Name, "#", string(ns)+"."+broker.ExchangeEvents, false, nil))

	n, err := broker.NewMessage(broker.NotificationCreated{Notifications: []broker.Notification{broker.EventNotification(1, "core.webhook", time.Now())}})
	require.NoError(t, err)
	ev := mustMessage(t, 1)
	require.NoError(t, b.Publish(context.Background(), n, ev))
	// Confirmed means enqueued: both are there to get.
	modes := map[string]uint8{}
	for range 2 {
		d, ok, err := ch.Get(q.Name, true)
		require.NoError(t, err)
		require.True(t, ok, "a confirmed message is not in the queue")
		modes[d.MessageId] = d.DeliveryMode
	}
	require.Equal(t, map[string]uint8{n.ID: amqp.Transient, ev.ID: amqp.Persistent}, modes)
}
