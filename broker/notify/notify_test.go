package notify_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/broker/notify"
)

const wait = 10 * time.Second

// gate is a publisher that shows each batch as its publish starts and holds the publish until
// the test releases it: the batching logic, seen from the broker's side.
type gate struct {
	batches chan []broker.Notification
	release chan error
}

func newGate() *gate {
	return &gate{batches: make(chan []broker.Notification, 16), release: make(chan error)}
}

func (g *gate) Publish(ctx context.Context, msgs ...broker.Message) error {
	for _, m := range msgs {
		p, err := broker.Decode[broker.NotificationCreated](m)
		if err != nil {
			return err
		}
		g.batches <- p.Notifications
	}
	select {
	case err := <-g.release:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) next(t *testing.T) []int64 {
	t.Helper()
	select {
	case b := <-g.batches:
		ids := make([]int64, len(b))
		for i, n := range b {
			ids[i] = n.ID
		}
		return ids
	case <-time.After(wait):
		t.Fatal("no publish")
		return nil
	}
}

func (g *gate) open(t *testing.T, err error) {
	t.Helper()
	select {
	case g.release <- err:
	case <-time.After(wait):
		t.Fatal("no publish waiting to be released")
	}
}

func changed(id int64) broker.Notification {
	return broker.ExecutionChanged(id, "core.noop", "running", "scheduled", time.Now())
}

// run runs n until the test ends and checks that it stops.
func run(t *testing.T, n *notify.Notifier) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(wait):
			t.Error("Run did not return after its context ended")
		}
	})
	return cancel
}

// holding runs a notifier of cfg that has sent changed(1) and whose publish of it the gate
// holds until the test opens it.
func holding(t *testing.T, cfg notify.Config) (*gate, *notify.Notifier) {
	t.Helper()
	g := newGate()
	n := notify.New(g, cfg)
	run(t, n)
	n.Notify(changed(1))
	require.Equal(t, []int64{1}, g.next(t))
	return g, n
}

// An idle notifier sends a change at once; what comes in while a publish is under way goes
// out together, in order, as soon as that publish returns.
func TestBatchesWhileAPublishIsUnderWay(t *testing.T) {
	t.Parallel()
	g, n := holding(t, notify.Config{})
	n.Notify(changed(2))
	n.Notify(changed(3), changed(4))
	g.open(t, nil)
	require.Equal(t, []int64{2, 3, 4}, g.next(t))
	g.open(t, nil)
}

// While the broker holds a publish, Notify still returns at once; past the bound the oldest
// notifications are dropped and counted, and the newest are sent.
func TestDropsOldestPastTheBound(t *testing.T) {
	t.Parallel()
	g, n := holding(t, notify.Config{MaxPending: 3})
	for id := int64(2); id <= 7; id++ {
		n.Notify(changed(id))
	}
	require.Equal(t, int64(3), n.Dropped())
	g.open(t, nil)
	require.Equal(t, []int64{5, 6, 7}, g.next(t))
	g.open(t, nil)
}

// A backlog larger than a batch goes out in several messages, oldest first.
func TestSplitsLargeBacklogs(t *testing.T) {
	t.Parallel()
	g, n := holding(t, notify.Config{MaxBatch: 2})
	n.Notify(changed(2), changed(3), changed(4), changed(5), changed(6))
	g.open(t, nil)
	for _, want := range [][]int64{{2, 3}, {4, 5}, {6}} {
		require.Equal(t, want, g.next(t))
		g.open(t, nil)
	}
}

func printed(id int64, text string) broker.Notification {
	return broker.OutputPrinted(id, "core.local", nil, broker.OutputChunk{Seq: 1, Stream: "stdout", Text: text}, time.Now())
}

// Output counts against a batch by its size, and PendingBytes tells a producer how much of it
// waits, so that it can drop what it prints while publishing falls behind.
func TestBoundsBatchesByOutputSize(t *testing.T) {
	t.Parallel()
	g, n := holding(t, notify.Config{MaxBatchBytes: 10})
	n.Notify(printed(2, "123456"), printed(3, "1234"), changed(4), printed(5, "1"), printed(6, "123456789012"), printed(7, "1"))
	require.Equal(t, 24, n.PendingBytes())
	g.open(t, nil)
	for _, want := range [][]int64{{2, 3, 4}, {5}, {6}, {7}} {
		require.Equal(t, want, g.next(t), "a batch carries at most 10 bytes of output, or one notification that alone carries more")
		g.open(t, nil)
	}
	require.Zero(t, n.PendingBytes())
}

// Past half the bound, the notifier says it is crowded, so that live output, which a reader
// can do without, gives way before status changes are pushed out; once the backlog has gone
// out, it says so no more.
func TestCrowdedPastHalfTheBound(t *testing.T) {
	t.Parallel()
	g, n := holding(t, notify.Config{MaxPending: 4})
	n.Notify(changed(2), changed(3))
	require.False(t, n.Crowded(), "half the bound waits")
	n.Notify(changed(4))
	require.True(t, n.Crowded(), "more than half waits")
	g.open(t, nil)
	require.Equal(t, []int64{2, 3, 4}, g.next(t))
	require.False(t, n.Crowded(), "nothing waits while the batch goes out")
	g.open(t, nil)
}

// A publish that fails loses its batch, counted, and the notifier goes on with the next.
func TestCountsFailedBatches(t *testing.T) {
	t.Parallel()
	g := newGate()
	n := notify.New(g, notify.Config{})
	run(t, n)
	n.Notify(changed(1), changed(2))
	require.Equal(t, []int64{1, 2}, g.next(t))
	g.open(t, errors.New("connection lost"))
	n.Notify(changed(3))
	require.Equal(t, []int64{3}, g.next(t))
	require.Equal(t, int64(2), n.Dropped())
	g.open(t, nil)
}

// What is pending when the notifier is stopped is still sent before Run returns.
func TestSendsPendingOnStop(t *testing.T) {
	t.Parallel()
	g := newGate()
	n := notify.New(g, notify.Config{})
	n.Notify(changed(1), changed(2))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	require.Equal(t, []int64{1, 2}, g.next(t))
	g.open(t, nil)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
}

// deadlines records the deadline of each publish, and fails it at once: a broker that is away.
type deadlines struct {
	mu   sync.Mutex
	seen []time.Time
}

func (d *deadlines) Publish(ctx context.Context, _ ...broker.Message) error {
	at, ok := ctx.Deadline()
	if !ok {
		return errors.New("a publish without a deadline")
	}
	d.mu.Lock()
	d.seen = append(d.seen, at)
	d.mu.Unlock()
	return errors.New("broker away")
}

// A stopping process gives everything still pending one PublishTimeout together, not one per
// batch: with the broker away, a backlog of many batches must not hold the stop for many
// timeouts.
func TestStopSharesOneTimeout(t *testing.T) {
	t.Parallel()
	d := &deadlines{}
	n := notify.New(d, notify.Config{MaxBatch: 2, PublishTimeout: time.Minute})
	for i := range 7 {
		n.Notify(changed(int64(i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, n.Run(ctx))
	d.mu.Lock()
	defer d.mu.Unlock()
	require.Len(t, d.seen, 4, "seven notifications, two a batch")
	for _, at := range d.seen[1:] {
		require.Equal(t, d.seen[0], at, "every batch within the one deadline")
	}
	require.Equal(t, int64(7), n.Dropped())
}

// Through a real broker: a notification reaches a stream queue as a NotificationCreated, and
// with no stream queue at all nothing fails.
func TestPublishesThroughTheBroker(t *testing.T) {
	t.Parallel()
	br := membroker.New(broker.Options{})
	t.Cleanup(func() { _ = br.Close() })
	n := notify.New(br, notify.Config{})
	run(t, n)
	n.Notify(changed(1)) // nobody listens yet: dropped by the broker, not counted as lost here
	got := make(chan broker.NotificationCreated, 16)
	ctx, cancel := context.WithCancel(context.Background())
	subscribed := make(chan error, 1)
	go func() {
		subscribed <- br.Subscribe(ctx, broker.Subscription{Queue: broker.StreamQueue("test"), Prefetch: 1}, func(_ context.Context, m broker.Message) error {
			p, err := broker.Decode[broker.NotificationCreated](m)
			if err == nil {
				got <- p
			}
			return err
		})
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-subscribed) })
	deadline := time.After(wait)
	for id := int64(2); ; id++ {
		// The subscription binds in the background; until it has, each of these is dropped.
		n.Notify(changed(id))
		select {
		case p := <-got:
			require.NotEmpty(t, p.Notifications)
			last := p.Notifications[len(p.Notifications)-1]
			require.Equal(t, broker.NotifyExecution, last.Kind)
			require.Equal(t, "running", last.Status)
			require.Zero(t, n.Dropped())
			return
		case <-time.After(20 * time.Millisecond): // polling for a binding nothing announces
		case <-deadline:
			t.Fatal("no notification reached the stream queue")
		}
	}
}
