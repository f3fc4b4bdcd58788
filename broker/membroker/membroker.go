// Package membroker is the in-process broker: the same routing, acknowledgement, requeue,
// dead-letter and redelivery semantics as RabbitMQ, inside one process, for
// `serve --roles=all` without a broker URL and for fast tests.
package membroker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/attune-go/attune/broker"
)

// Broker is an in-process broker. The zero value is not usable; call New.
type Broker struct {
	opts broker.Options

	mu       sync.Mutex
	closed   bool
	bindings map[string][]binding // by exchange name
	queues   map[string]*queue
}

type binding struct {
	pattern string
	queue   *queue
}

var _ broker.Broker = (*Broker)(nil)

// New returns a broker with the shared topology declared.
func New(opts broker.Options) *Broker {
	b := &Broker{
		opts:     opts.WithDefaults(),
		bindings: make(map[string][]binding),
		queues:   make(map[string]*queue),
	}
	for _, q := range broker.SharedQueues {
		if _, err := b.declare(q); err != nil {
			// The shared topology is static; failing to derive it is a programming error.
			panic(fmt.Sprintf("membroker: declare shared queue: %v", err))
		}
	}
	return b
}

// Declare creates q and its bindings; see broker.Broker.
func (b *Broker) Declare(_ context.Context, q broker.Queue) error {
	if _, err := b.declare(q); err != nil {
		return fmt.Errorf("declare %s: %w", q.Name, err)
	}
	return nil
}

// Depth reports how many messages wait in q; see broker.Broker.
func (b *Broker) Depth(_ context.Context, spec broker.Queue) (int, error) {
	b.mu.Lock()
	q, ok := b.queues[spec.Name]
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return 0, broker.ErrClosed
	}
	if !ok {
		return 0, nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items), nil
}

// Close stops the broker; later publishes fail with broker.ErrClosed.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// Ping reports whether the broker is open.
func (b *Broker) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return broker.ErrClosed
	}
	return nil
}

// Publish routes each message to every queue bound to its exchange under a matching key.
func (b *Broker) Publish(ctx context.Context, msgs ...broker.Message) error {
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("publish %s: %w", m.Type, err)
		}
		if m.Headers.SourceService == "" {
			m.Headers.SourceService = b.opts.SourceService
		}
		r, err := m.Route()
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		body, err := m.Marshal()
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		err = b.route(r.Exchange, r.RoutingKey, body)
		if errors.Is(err, broker.ErrUnroutable) && m.Type.BestEffort() {
			continue // nobody listens, which is no error for a best-effort message
		}
		if err != nil {
			return fmt.Errorf("publish %s %s: %w", m.Type, m.ID, err)
		}
		b.opts.Meter.Published(m.Type)
	}
	return nil
}

func (b *Broker) route(exchange, key string, body []byte) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return broker.ErrClosed
	}
	var targets []*queue
	for _, bd := range b.bindings[exchange] {
		if topicMatch(bd.pattern, key) && !containsQueue(targets, bd.queue) {
			targets = append(targets, bd.queue)
		}
	}
	b.mu.Unlock()
	if len(targets) == 0 {
		return broker.ErrUnroutable
	}
	for _, q := range targets {
		q.push(item{routingKey: key, body: body})
	}
	return nil
}

func containsQueue(qs []*queue, q *queue) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// declare creates q if needed and adds any binding it lacks; declaring twice is harmless.
func (b *Broker) declare(spec broker.Queue) (*queue, error) {
	bs, err := spec.Bindings()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, broker.ErrClosed
	}
	q, ok := b.queues[spec.Name]
	if !ok {
		q = newQueue(spec.Name, !spec.DeadLetters)
		b.queues[spec.Name] = q
	}
	for _, bd := range bs {
		if !b.bound(bd.Exchange, bd.RoutingKey, q) {
			b.bindings[bd.Exchange] = append(b.bindings[bd.Exchange], binding{pattern: bd.RoutingKey, queue: q})
		}
	}
	return q, nil
}

func (b *Broker) bound(exchange, pattern string, q *queue) bool {
	for _, bd := range b.bindings[exchange] {
		if bd.pattern == pattern && bd.queue == q {
			return true
		}
	}
	return false
}

// remove deletes a transient queue and its bindings.
func (b *Broker) remove(q *queue) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.queues, q.name)
	for ex, bs := range b.bindings {
		kept := bs[:0]
		for _, bd := range bs {
			if bd.queue != q {
				kept = append(kept, bd)
			}
		}
		b.bindings[ex] = kept
	}
}

// Subscribe consumes s.Queue until ctx ends; see broker.Subscriber.
func (b *Broker) Subscribe(ctx context.Context, s broker.Subscription, h broker.Handler) error {
	q, err := b.declare(s.Queue)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", s.Queue.Name, err)
	}
	if s.Queue.Transient {
		defer b.remove(q)
	}
	prefetch := max(s.Prefetch, 1)
	credit := make(chan struct{}, prefetch)
	c := &consumer{broker: b, queue: q, credit: credit}
	d := broker.NewDispatcher(ctx, s.Queue.Name, prefetch, h, b.opts)
	for {
		select {
		case credit <- struct{}{}:
		case <-ctx.Done():
			return c.stop(d)
		}
		it, ok := q.pop(ctx)
		if !ok {
			<-credit
			return c.stop(d)
		}
		if !d.Dispatch(ctx, c.track(it)) {
			return c.stop(d)
		}
	}
}

// consumer tracks one subscription's unsettled deliveries, so that they can be redelivered
// when it stops.
type consumer struct {
	broker *Broker
	queue  *queue
	credit chan struct{}

	mu        sync.Mutex
	unsettled map[*delivery]struct{}
}

func (c *consumer) track(it item) *delivery {
	d := &delivery{item: it, consumer: c}
	c.mu.Lock()
	if c.unsettled == nil {
		c.unsettled = make(map[*delivery]struct{})
	}
	c.unsettled[d] = struct{}{}
	c.mu.Unlock()
	return d
}

// settle removes d from the unsettled set; it reports false when d was already settled or
// handed back, so that each delivery is settled once.
func (c *consumer) settle(d *delivery) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.unsettled[d]; !ok {
		return false
	}
	delete(c.unsettled, d)
	<-c.credit
	return true
}

func (c *consumer) stop(d *broker.Dispatcher) error {
	d.Drain()
	c.mu.Lock()
	defer c.mu.Unlock()
	for del := range c.unsettled {
		del.item.redelivered = true
		c.queue.pushFront(del.item)
		delete(c.unsettled, del)
	}
	return nil
}

type delivery struct {
	item     item
	consumer *consumer
}

func (d *delivery) Body() []byte { return d.item.body }

// Redelivered reports whether the item was handed back by a consumer that stopped.
func (d *delivery) Redelivered() bool { return d.item.redelivered }

func (d *delivery) Ack() error {
	d.consumer.settle(d)
	return nil
}

func (d *delivery) Retry(_ context.Context, m broker.Message) error {
	body, err := m.Marshal()
	if err != nil {
		return err
	}
	if d.consumer.settle(d) {
		d.consumer.queue.push(item{routingKey: d.item.routingKey, body: body})
	}
	return nil
}

func (d *delivery) DeadLetter() error {
	if !d.consumer.settle(d) {
		return nil
	}
	if !d.consumer.queue.deadLetters {
		return nil
	}
	err := d.consumer.broker.route(broker.ExchangeDeadLetter, d.item.routingKey, d.item.body)
	if errors.Is(err, broker.ErrUnroutable) {
		return nil // RabbitMQ, too, drops a dead letter that nothing is bound for.
	}
	return err
}
