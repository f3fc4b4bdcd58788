package amqpbroker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/attune-go/attune/broker"
)

// Subscribe consumes s.Queue until ctx ends, re-subscribing on a new channel whenever the
// connection is restored; see broker.Subscriber.
func (b *Broker) Subscribe(ctx context.Context, s broker.Subscription, h broker.Handler) error {
	if _, err := s.Queue.Bindings(); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	prefetch := max(s.Prefetch, 1)
	d := broker.NewDispatcher(ctx, s.Queue.Name, prefetch, h, b.cfg.Options)
	defer d.Drain()
	log := b.cfg.Logger.With("queue", b.ns.Name(s.Queue.Name))
	delay := b.cfg.ReconnectMin
	for {
		conn, err := b.connection(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("subscribe %s: %w", s.Queue.Name, err)
		}
		consumed, err := b.consume(ctx, conn, s.Queue, prefetch, d)
		if ctx.Err() != nil {
			return nil
		}
		if refused(err) {
			// The broker will refuse this subscription every time (a queue declared with
			// other arguments, a missing permission): retrying would only spin.
			return fmt.Errorf("subscribe %s: %w", s.Queue.Name, err)
		}
		if consumed {
			delay = b.cfg.ReconnectMin
		}
		log.Warn("subscription interrupted; resubscribing", "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
		delay = min(delay*2, b.cfg.ReconnectMax)
	}
}

// refused reports whether err is the broker turning the subscription down for good.
func refused(err error) bool {
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) {
		return false
	}
	switch amqpErr.Code {
	case amqp.PreconditionFailed, amqp.AccessRefused, amqp.NotFound, amqp.ResourceLocked:
		return true
	}
	return false
}

// consume runs one channel's worth of a subscription. It returns when ctx ends (after
// cancelling the consumer and draining in-flight handlers, so their acks still reach the
// channel) or when the channel dies.
// It reports whether consuming got under way, so that the caller can tell a subscription
// that ran for a while from one that cannot start.
func (b *Broker) consume(ctx context.Context, conn *amqp.Connection, q broker.Queue, prefetch int, d *broker.Dispatcher) (bool, error) {
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return false, fmt.Errorf("set prefetch: %w", err)
	}
	if err := b.declareQueue(ch, q); err != nil {
		return false, err
	}
	b.declaredMu.Lock()
	b.declared[q.Name] = q
	b.declaredMu.Unlock()

	tag := "attune-" + uuid.NewString()
	deliveries, err := ch.Consume(b.ns.Name(q.Name), tag, false, q.Transient, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("consume %s: %w", b.ns.Name(q.Name), err)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	for {
		select {
		case dl, ok := <-deliveries:
			if !ok {
				return true, fmt.Errorf("channel closed: %v", <-closed)
			}
			if !d.Dispatch(ctx, &delivery{d: dl, broker: b, queue: b.ns.Name(q.Name)}) {
				// Stopping while every slot is held: this delivery stays unacked and goes back
				// to the queue when the channel closes.
				_ = ch.Cancel(tag, false)
				d.Drain()
				return true, nil
			}
		case <-ctx.Done():
			// Stop intake first; what is already in flight is settled on this channel before
			// it closes, and whatever stays unacked is requeued by RabbitMQ when it does.
			_ = ch.Cancel(tag, false)
			d.Drain()
			return true, nil
		}
	}
}

type delivery struct {
	d      amqp.Delivery
	broker *Broker
	queue  string
}

func (dl *delivery) Body() []byte { return dl.d.Body }

// Redelivered reports RabbitMQ's flag: the message went to a consumer before, which was lost
// before it settled it.
func (dl *delivery) Redelivered() bool { return dl.d.Redelivered }

func (dl *delivery) Ack() error {
	if err := dl.d.Ack(false); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// Retry publishes the updated message straight to the queue it came from, through the default
// exchange so that no other queue sees it again, and acks the original once that is
// confirmed. A crash between the two leaves a duplicate, never a loss.
func (dl *delivery) Retry(ctx context.Context, m broker.Message) error {
	body, err := m.Marshal()
	if err != nil {
		return err
	}
	pub := publishing{exchange: "", routingKey: dl.queue, mandatory: !m.Type.BestEffort(), msg: amqpPublishing(m, body), label: string(m.Type) + " " + m.ID}
	if err := dl.broker.publish(ctx, []publishing{pub}); err != nil {
		return fmt.Errorf("requeue: %w", err)
	}
	return dl.Ack()
}

func (dl *delivery) DeadLetter() error {
	if err := dl.d.Nack(false, false); err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	return nil
}
