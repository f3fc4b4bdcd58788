package amqpbroker

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/attune-go/attune/broker"
)

// declareTopology declares the exchanges and the shared queues. Declarations are idempotent,
// so every process does it on every (re)connect: whichever role starts first, nothing it
// publishes falls into an exchange without its queues.
func (b *Broker) declareTopology(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("declare topology: open channel: %w", err)
	}
	defer ch.Close()
	for _, ex := range broker.Exchanges {
		if err := ch.ExchangeDeclare(b.ns.Name(ex), amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", b.ns.Name(ex), err)
		}
	}
	for _, q := range broker.SharedQueues {
		if err := b.declareQueue(ch, q); err != nil {
			return err
		}
	}
	return nil
}

// declareQueue declares q and its bindings. Every queue but the dead-letter queue itself
// dead-letters into the dead-letter exchange. The arguments must be the same on every
// declaration, or RabbitMQ refuses it.
func (b *Broker) declareQueue(ch *amqp.Channel, q broker.Queue) error {
	bindings, err := q.Bindings()
	if err != nil {
		return fmt.Errorf("declare queue: %w", err)
	}
	name := b.ns.Name(q.Name)
	args := amqp.Table{}
	if !q.DeadLetters {
		args["x-dead-letter-exchange"] = b.ns.Name(broker.ExchangeDeadLetter)
	}
	if q.Expires > 0 {
		args["x-expires"] = q.Expires.Milliseconds()
	}
	// A quorum queue cannot be exclusive: a transient queue, one process's own, stays classic
	// and lives on the node its connection is on, which redeclares it on the next node.
	if b.cfg.QueueType == QueueQuorum && !q.Transient {
		args["x-queue-type"] = string(QueueQuorum)
	}
	durable, exclusive, autoDelete := !q.Transient, q.Transient, q.Transient
	if _, err := ch.QueueDeclare(name, durable, autoDelete, exclusive, false, args); err != nil {
		return b.declareError(name, err)
	}
	for _, bd := range bindings {
		if err := ch.QueueBind(name, bd.RoutingKey, b.ns.Name(bd.Exchange), false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s with %s: %w", name, b.ns.Name(bd.Exchange), bd.RoutingKey, err)
		}
	}
	return nil
}

// Declare creates q and its bindings; see broker.Broker. Transient queues belong to the
// channel's connection and are declared by Subscribe only. A connection lost on the way is
// waited out, as Publish does; a declaration the broker refuses is an error at once.
func (b *Broker) Declare(ctx context.Context, q broker.Queue) error {
	if q.Transient {
		return nil
	}
	delay := b.cfg.ReconnectMin
	for {
		err := b.declareOnce(ctx, q)
		if err == nil || refused(err) || ctx.Err() != nil || errors.Is(err, broker.ErrClosed) {
			return err
		}
		b.cfg.Logger.Warn("declare interrupted; trying again", "queue", b.ns.Name(q.Name), "err", err, "retry_in", delay)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return fmt.Errorf("declare %s: %w", q.Name, ctx.Err())
		}
		delay = min(delay*2, b.cfg.ReconnectMax)
	}
}

func (b *Broker) declareOnce(ctx context.Context, q broker.Queue) error {
	conn, err := b.connection(ctx)
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("declare %s: open channel: %w", q.Name, err)
	}
	defer ch.Close()
	if err := b.declareQueue(ch, q); err != nil {
		return err
	}
	b.declaredMu.Lock()
	b.declared[q.Name] = q
	b.declaredMu.Unlock()
	return nil
}

// Depth reports how many messages wait in q; see broker.Broker. It declares nothing: a
// passive declare of a queue that does not exist closes the channel with 404, which means
// none waits.
func (b *Broker) Depth(ctx context.Context, q broker.Queue) (int, error) {
	if q.Transient {
		return 0, nil
	}
	conn, err := b.connection(ctx)
	if err != nil {
		return 0, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("depth of %s: open channel: %w", q.Name, err)
	}
	defer ch.Close()
	st, err := ch.QueueDeclarePassive(b.ns.Name(q.Name), true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("depth of %s: %w", q.Name, err)
	}
	return st.Messages, nil
}

// Teardown deletes the exchanges and every queue this broker declared. Tests use it to leave
// no trace of their namespace; production never calls it. It dials a connection of its own,
// so it works on a closed broker too.
func (b *Broker) Teardown() error {
	var conn *amqp.Connection
	var errs []error
	for _, u := range b.nodes {
		c, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(dialTimeout)})
		if err == nil {
			conn = c
			break
		}
		errs = append(errs, fmt.Errorf("teardown: connect to RabbitMQ at %s: %w", redact(u), err))
	}
	if conn == nil {
		return nodeErrors(errs)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("teardown: open channel: %w", err)
	}
	defer ch.Close()
	b.declaredMu.Lock()
	queues := append([]broker.Queue(nil), broker.SharedQueues...)
	for _, q := range b.declared {
		queues = append(queues, q)
	}
	b.declaredMu.Unlock()
	for _, q := range queues {
		if _, err := ch.QueueDelete(b.ns.Name(q.Name), false, false, false); err != nil {
			return fmt.Errorf("teardown: delete queue %s: %w", b.ns.Name(q.Name), err)
		}
	}
	for _, ex := range broker.Exchanges {
		if err := ch.ExchangeDelete(b.ns.Name(ex), false, false); err != nil {
			return fmt.Errorf("teardown: delete exchange %s: %w", b.ns.Name(ex), err)
		}
	}
	return nil
}
