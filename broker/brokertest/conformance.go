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

// Factory builds a fresh broker for one test; it owns its cleanup.
type Factory func(t *testing.T, opts broker.Options) broker.Broker

// wait bounds every wait for something to arrive.
const wait = 15 * time.Second

// Run is the conformance suite: the behaviour every broker adapter must share, so that code
// tested on the in-process broker behaves the same on RabbitMQ.
func Run(t *testing.T, newBroker Factory) {
	t.Run("DeliversWithEnvelopeIntact", func(t *testing.T) { t.Parallel(); testDelivers(t, newBroker) })
	t.Run("KeepsMessagesPublishedBeforeSubscribe", func(t *testing.T) { t.Parallel(); testKeepsEarly(t, newBroker) })
	t.Run("RoutesTargetedTypesToTheirTarget", func(t *testing.T) { t.Parallel(); testTargeted(t, newBroker) })
	t.Run("ReportsUnroutable", func(t *testing.T) { t.Parallel(); testUnroutable(t, newBroker) })
	t.Run("DropsUnroutableBestEffort", func(t *testing.T) { t.Parallel(); testBestEffort(t, newBroker) })
	t.Run("CompetingConsumersShareWork", func(t *testing.T) { t.Parallel(); testCompeting(t, newBroker) })
	t.Run("RequeuesOnError", func(t *testing.T) { t.Parallel(); testRequeue(t, newBroker) })
	t.Run("DeadLettersPermanentErrors", func(t *testing.T) { t.Parallel(); testPermanent(t, newBroker) })
	t.Run("DeadLettersAfterMaxAttempts", func(t *testing.T) { t.Parallel(); testMaxAttempts(t, newBroker) })
	t.Run("DrainsInFlightOnStop", func(t *testing.T) { t.Parallel(); testDrain(t, newBroker) })
	t.Run("RedeliversUnackedWhenConsumerStops", func(t *testing.T) { t.Parallel(); testRedeliver(t, newBroker) })
	t.Run("FansOutToTransientQueues", func(t *testing.T) { t.Parallel(); testFanOut(t, newBroker) })
	t.Run("PublishesConcurrently", func(t *testing.T) { t.Parallel(); testConcurrentPublish(t, newBroker) })
	t.Run("DeclaredQueueKeepsMessages", func(t *testing.T) { t.Parallel(); testDeclare(t, newBroker) })
	t.Run("ClosedBrokerRefuses", func(t *testing.T) { t.Parallel(); testClosed(t, newBroker) })
	t.Run("CountsWaitingMessages", func(t *testing.T) { t.Parallel(); testDepth(t, newBroker) })
	t.Run("RoutesBySelector", func(t *testing.T) { t.Parallel(); testSelectorRouting(t, newBroker) })
	t.Run("RetriesThroughAnOutage", func(t *testing.T) { t.Parallel(); testOutage(t, newBroker) })
	t.Run("GivesUpOnAnOutageTooLong", func(t *testing.T) { t.Parallel(); testOutageTooLong(t, newBroker) })
	t.Run("CountsWhatItCarries", func(t *testing.T) { t.Parallel(); testMeter(t, newBroker) })
}

func fastOptions() broker.Options {
	return broker.Options{RetryBackoff: 5 * time.Millisecond, DrainTimeout: 5 * time.Second, SourceService: "conformance"}
}

func event(tb testing.TB, id int64) broker.Message {
	tb.Helper()
	m, err := broker.NewMessage(broker.EventCreated{EventID: id, TriggerRef: "core.webhook"})
	require.NoError(tb, err)
	return m
}

func publish(tb testing.TB, b broker.Publisher, msgs ...broker.Message) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(tb, b.Publish(ctx, msgs...))
}

// subscription runs Subscribe in the background until stop is called, which waits for it to
// return and checks that it returned nil.
type subscription struct {
	cancel context.CancelFunc
	done   chan error
}

func subscribe(tb testing.TB, b broker.Subscriber, s broker.Subscription, h broker.Handler) *subscription {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub := &subscription{cancel: cancel, done: make(chan error, 1)}
	go func() { sub.done <- b.Subscribe(ctx, s, h) }()
	tb.Cleanup(func() { sub.stop(tb) })
	return sub
}

func (s *subscription) stop(tb testing.TB) {
	tb.Helper()
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok {
			require.NoError(tb, err)
			close(s.done)
		}
	case <-time.After(wait):
		tb.Fatalf("Subscribe did not return within %s of its context ending", wait)
	}
}

// collect is a handler that forwards every message it acks to a channel.
func collect(ch chan<- broker.Message) broker.Handler {
	return func(ctx context.Context, m broker.Message) error {
		select {
		case ch <- m:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func receive(tb testing.TB, ch <-chan broker.Message) broker.Message {
	tb.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(wait):
		tb.Fatalf("no message within %s", wait)
		return broker.Message{}
	}
}

func testDelivers(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	got := make(chan broker.Message, 1)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 4}, collect(got))
	sent := event(t, 42)
	sent.CorrelationID = "corr-1"
	sent.Headers.TraceID = "trace-1"
	publish(t, b, sent)

	m := receive(t, got)
	require.Equal(t, sent.ID, m.ID)
	require.Equal(t, broker.TypeEventCreated, m.Type)
	require.Equal(t, "corr-1", m.CorrelationID)
	require.Equal(t, "trace-1", m.Headers.TraceID)
	require.Equal(t, "conformance", m.Headers.SourceService)
	require.Equal(t, 0, m.Headers.RetryCount)
	require.WithinDuration(t, sent.Timestamp, m.Timestamp, time.Millisecond)
	p, err := broker.Decode[broker.EventCreated](m)
	require.NoError(t, err)
	require.Equal(t, broker.EventCreated{EventID: 42, TriggerRef: "core.webhook"}, p)
}

func testKeepsEarly(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	msgs := []broker.Message{event(t, 1), event(t, 2), event(t, 3)}
	publish(t, b, msgs...)
	got := make(chan broker.Message, len(msgs))
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, collect(got))
	for _, want := range msgs {
		require.Equal(t, want.ID, receive(t, got).ID, "a single consumer sees messages in publish order")
	}
}

func testTargeted(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	gotA := make(chan broker.Message, 4)
	gotB := make(chan broker.Message, 4)
	subscribe(t, b, broker.Subscription{Queue: broker.WorkerCancelQueue("worker-a"), Prefetch: 4}, collect(gotA))
	subscribe(t, b, broker.Subscription{Queue: broker.WorkerCancelQueue("worker-b"), Prefetch: 4}, collect(gotB))
	// Subscribe declares asynchronously; publish only once both queues are bound.
	toA, err := broker.NewMessage(broker.ExecutionCancelRequested{ExecutionID: 1, Worker: "worker-a"})
	require.NoError(t, err)
	toB, err := broker.NewMessage(broker.ExecutionCancelRequested{ExecutionID: 2, Worker: "worker-b"})
	require.NoError(t, err)
	publishWhenBound(t, b, toA)
	publishWhenBound(t, b, toB)

	require.Equal(t, toA.ID, receive(t, gotA).ID)
	require.Equal(t, toB.ID, receive(t, gotB).ID)
	require.Empty(t, gotA, "worker-a saw worker-b's dispatch")
	require.Empty(t, gotB, "worker-b saw worker-a's dispatch")
}

// publishWhenBound retries an unroutable publish until the subscriber's queue is bound.
func publishWhenBound(tb testing.TB, b broker.Publisher, m broker.Message) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		err := b.Publish(ctx, m)
		cancel()
		if err == nil {
			return
		}
		if !errors.Is(err, broker.ErrUnroutable) || time.Now().After(deadline) {
			tb.Fatalf("publish %s: %v", m.Type, err)
		}
		time.Sleep(10 * time.Millisecond) // polling for a binding that no event announces
	}
}

func testUnroutable(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	m, err := broker.NewMessage(broker.ExecutionCancelRequested{ExecutionID: 1, Worker: "nobody"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err = b.Publish(ctx, m)
	require.ErrorIs(t, err, broker.ErrUnroutable)
}

// notification is a best-effort message: a batch of one status change.
func notification(tb testing.TB, executionID int64) broker.Message {
	tb.Helper()
	m, err := broker.NewMessage(broker.NotificationCreated{Notifications: []broker.Notification{
		broker.ExecutionChanged(executionID, "core.noop", "running", "scheduled", time.Now()),
	}})
	require.NoError(tb, err)
	return m
}

// A best-effort message that no queue is bound for is dropped without an error, in the same
// call as messages that do reach their queue; a queue bound later never sees it.
func testBestEffort(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	require.True(t, broker.TypeNotificationCreated.BestEffort())
	require.False(t, broker.TypeEventCreated.BestEffort())
	events := make(chan broker.Message, 1)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, collect(events))
	lost, ev := notification(t, 1), event(t, 1)
	publish(t, b, lost, ev)
	require.Equal(t, ev.ID, receive(t, events).ID)

	got := make(chan broker.Message, 64)
	q := broker.Queue{Name: "attune.stream.late", Types: []broker.Type{broker.TypeNotificationCreated}, Transient: true}
	subscribe(t, b, broker.Subscription{Queue: q, Prefetch: 1}, collect(got))
	deadline := time.Now().Add(wait)
	for {
		// Subscribe binds in the background, and until it has, each of these is dropped too.
		sent := notification(t, 2)
		publish(t, b, sent)
		select {
		case m := <-got:
			require.NotEqual(t, lost.ID, m.ID, "a best-effort message published before any queue was bound was kept")
			return
		case <-time.After(20 * time.Millisecond): // polling for a binding nothing announces
		}
		require.False(t, time.Now().After(deadline), "the late queue was never bound")
	}
}

func testCompeting(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	const n = 60
	var mu sync.Mutex
	seen := make(map[string]int)
	perConsumer := [2]int{}
	done := make(chan struct{})
	handler := func(i int) broker.Handler {
		return func(ctx context.Context, m broker.Message) error {
			mu.Lock()
			defer mu.Unlock()
			seen[m.ID]++
			perConsumer[i]++
			if len(seen) == n {
				select {
				case <-done:
				default:
					close(done)
				}
			}
			return nil
		}
	}
	subscribe(t, b, broker.Subscription{Queue: broker.QueueExecutorRequests, Prefetch: 2}, handler(0))
	subscribe(t, b, broker.Subscription{Queue: broker.QueueExecutorRequests, Prefetch: 2}, handler(1))
	msgs := make([]broker.Message, n)
	for i := range msgs {
		m, err := broker.NewMessage(broker.ExecutionRequested{ExecutionID: int64(i), ActionRef: "core.noop"})
		require.NoError(t, err)
		msgs[i] = m
	}
	publish(t, b, msgs...)
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("only %d of %d messages arrived", len(seen), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, count := range seen {
		require.Equal(t, 1, count, "message %s handled more than once", id)
	}
}

func testRequeue(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	got := make(chan broker.Message, 1)
	var mu sync.Mutex
	attempts := 0
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(ctx context.Context, m broker.Message) error {
		mu.Lock()
		attempts++
		n := attempts
		mu.Unlock()
		if n < 3 {
			return errors.New("database unavailable")
		}
		return collect(got)(ctx, m)
	})
	sent := event(t, 7)
	publish(t, b, sent)
	m := receive(t, got)
	require.Equal(t, sent.ID, m.ID)
	require.Equal(t, 2, m.Headers.RetryCount)
}

func deadLetters(tb testing.TB, b broker.Subscriber) <-chan broker.Message {
	got := make(chan broker.Message, 8)
	subscribe(tb, b, broker.Subscription{Queue: broker.DeadLetterQueue, Prefetch: 8}, collect(got))
	return got
}

func testPermanent(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	dead := deadLetters(t, b)
	var mu sync.Mutex
	calls := 0
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(context.Context, broker.Message) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return broker.Permanent(errors.New("payload names no trigger"))
	})
	sent := event(t, 9)
	publish(t, b, sent)
	m := receive(t, dead)
	require.Equal(t, sent.ID, m.ID)
	mu.Lock()
	require.Equal(t, 1, calls, "a permanent error is not retried")
	mu.Unlock()
}

func testMaxAttempts(t *testing.T, newBroker Factory) {
	opts := fastOptions()
	opts.MaxAttempts = 3
	b := newBroker(t, opts)
	dead := deadLetters(t, b)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(context.Context, broker.Message) error {
		return errors.New("always failing")
	})
	sent := event(t, 11)
	publish(t, b, sent)
	m := receive(t, dead)
	require.Equal(t, sent.ID, m.ID)
	require.Equal(t, 2, m.Headers.RetryCount, "dead-lettered after its third attempt")
}

func testDrain(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	started := make(chan struct{})
	release := make(chan struct{})
	sub := subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(context.Context, broker.Message) error {
		close(started)
		<-release
		return nil
	})
	publish(t, b, event(t, 1))
	<-started
	sub.cancel()
	require.Never(t, func() bool { return len(sub.done) > 0 }, 200*time.Millisecond, 10*time.Millisecond,
		"Subscribe returned while a handler was still running")
	close(release)
	sub.stop(t)

	// The drained message was acked: a new consumer sees only what comes next.
	got := make(chan broker.Message, 2)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, collect(got))
	next := event(t, 2)
	publish(t, b, next)
	require.Equal(t, next.ID, receive(t, got).ID)
}

func testRedeliver(t *testing.T, newBroker Factory) {
	opts := fastOptions()
	opts.DrainTimeout = 50 * time.Millisecond
	b := newBroker(t, opts)
	started := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, func(context.Context, broker.Message) error {
		close(started)
		<-release // ignores cancellation, like a handler stuck in a call
		return nil
	})
	sent := event(t, 5)
	publish(t, b, sent)
	<-started
	stuck.stop(t)

	got := make(chan broker.Message, 1)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: 1}, collect(got))
	require.Equal(t, sent.ID, receive(t, got).ID)
}

func testFanOut(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	var chans []chan broker.Message
	for i := range 2 {
		got := make(chan broker.Message, 64)
		chans = append(chans, got)
		q := broker.Queue{Name: fmt.Sprintf("attune.stream.replica-%d", i), Types: []broker.Type{broker.TypeNotificationCreated}, Transient: true}
		subscribe(t, b, broker.Subscription{Queue: q, Prefetch: 1}, collect(got))
	}
	notification := func() broker.Message { return notification(t, 3) }
	// Subscribe binds in the background: publish until each replica's queue has seen one.
	for _, got := range chans {
		deadline := time.Now().Add(wait)
	bound:
		for {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			err := b.Publish(ctx, notification())
			cancel()
			if err != nil && !errors.Is(err, broker.ErrUnroutable) {
				t.Fatalf("publish: %v", err)
			}
			select {
			case <-got:
				break bound
			case <-time.After(20 * time.Millisecond): // polling for a binding nothing announces
			}
			if time.Now().After(deadline) {
				t.Fatal("a replica's queue was never bound")
			}
		}
	}
	final := notification()
	publish(t, b, final)
	for _, got := range chans {
		// Earlier notifications may still be in the channel; each replica must get the last.
		for receive(t, got).ID != final.ID {
			continue
		}
	}
}

func testConcurrentPublish(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	const publishers, each = 8, 25
	got := make(chan broker.Message, publishers*each)
	subscribe(t, b, broker.Subscription{Queue: broker.QueueExecutorCompletions, Prefetch: 16}, collect(got))
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m, err := broker.NewMessage(broker.ExecutionCompleted{ExecutionID: int64(p*each + i), Status: "completed"})
				if err == nil {
					err = b.Publish(context.Background(), m)
				}
				if err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ids := make(map[string]bool)
	for range publishers * each {
		ids[receive(t, got).ID] = true
	}
	require.Len(t, ids, publishers*each)
}

func testDeclare(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	q := broker.WorkerCancelQueue("early")
	require.NoError(t, b.Declare(context.Background(), q))
	require.NoError(t, b.Declare(context.Background(), q), "declaring twice is harmless")
	m, err := broker.NewMessage(broker.ExecutionCancelRequested{ExecutionID: 1, Worker: "early"})
	require.NoError(t, err)
	publish(t, b, m) // routable at once: the queue exists before anyone consumes it
	got := make(chan broker.Message, 1)
	subscribe(t, b, broker.Subscription{Queue: q, Prefetch: 1}, collect(got))
	require.Equal(t, m.ID, receive(t, got).ID)
}

func testClosed(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	ctx := context.Background()
	require.NoError(t, b.Ping(ctx))
	require.NoError(t, b.Close())
	require.Error(t, b.Ping(ctx))
	err := b.Publish(ctx, event(t, 1))
	require.ErrorIs(t, err, broker.ErrClosed)
}
