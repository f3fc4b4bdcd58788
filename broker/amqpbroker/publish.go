package amqpbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/attune-go/attune/broker"
)

// publisher is the confirm-mode channel all publishes go through. Publishing on it is
// serialised, waiting for confirms is not: confirms are pipelined across callers and across
// the messages of one call.
type publisher struct {
	ch      *amqp.Channel
	returns chan amqp.Return

	mu       sync.Mutex
	returned map[string]struct{} // message ids RabbitMQ handed back as unroutable
}

func newPublisher(conn *amqp.Connection) (*publisher, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open publish channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("enable publisher confirms: %w", err)
	}
	p := &publisher{ch: ch, returns: make(chan amqp.Return, returnBuffer), returned: make(map[string]struct{})}
	ch.NotifyReturn(p.returns)
	return p, nil
}

// returnBuffer must hold the returns that arrive between two confirm checks: the connection's
// reader goroutine blocks while it is full.
const returnBuffer = 4096

// wasReturned reports, once per message, whether RabbitMQ returned it as unroutable. The
// broker sends basic.return before the confirm, and the client handles both in order on one
// goroutine, so once a confirm has been seen its return is already in p.returns. Draining
// here, rather than in a goroutine of its own, leaves no gap between reading a return and
// recording it.
func (p *publisher) wasReturned(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
drain:
	for {
		select {
		case r, ok := <-p.returns:
			if !ok {
				break drain
			}
			p.returned[r.MessageId] = struct{}{}
		default:
			break drain
		}
	}
	_, ok := p.returned[id]
	delete(p.returned, id)
	if len(p.returned) > returnBuffer {
		// Returns of publishes whose callers gave up are never asked for; forget them.
		clear(p.returned)
	}
	return ok
}

// publishing is one message ready for the wire.
type publishing struct {
	exchange   string
	routingKey string
	// mandatory has RabbitMQ return the message when no queue is bound for it, which
	// Publish reports as broker.ErrUnroutable. Best-effort types go without.
	mandatory bool
	msg       amqp.Publishing
	label     string // "Type id" for errors
}

// Publish sends msgs and returns once RabbitMQ has confirmed every one of them. Messages that
// are nacked or caught by a lost connection are sent again, on the next connection if need
// be, until ctx ends.
func (b *Broker) Publish(ctx context.Context, msgs ...broker.Message) error {
	pending := make([]publishing, 0, len(msgs))
	for _, m := range msgs {
		p, err := b.encode(m)
		if err != nil {
			return err
		}
		pending = append(pending, p)
	}
	if err := b.publish(ctx, pending); err != nil {
		return err
	}
	for _, m := range msgs {
		b.cfg.Meter.Published(m.Type)
	}
	return nil
}

func (b *Broker) encode(m broker.Message) (publishing, error) {
	if m.Headers.SourceService == "" {
		m.Headers.SourceService = b.cfg.SourceService
	}
	r, err := m.Route()
	if err != nil {
		return publishing{}, fmt.Errorf("publish: %w", err)
	}
	body, err := m.Marshal()
	if err != nil {
		return publishing{}, fmt.Errorf("publish: %w", err)
	}
	return publishing{
		exchange:   b.ns.Name(r.Exchange),
		routingKey: r.RoutingKey,
		mandatory:  !m.Type.BestEffort(),
		msg:        amqpPublishing(m, body),
		label:      string(m.Type) + " " + m.ID,
	}, nil
}

func amqpPublishing(m broker.Message, body []byte) amqp.Publishing {
	mode := amqp.Persistent
	if m.Type.BestEffort() {
		// Not written to disk: a best-effort message is not worth an fsync.
		mode = amqp.Transient
	}
	return amqp.Publishing{
		ContentType:   "application/json",
		DeliveryMode:  mode,
		MessageId:     m.ID,
		CorrelationId: m.CorrelationID,
		Type:          string(m.Type),
		Timestamp:     m.Timestamp,
		AppId:         m.Headers.SourceService,
		Body:          body,
	}
}

func (b *Broker) publish(ctx context.Context, pending []publishing) error {
	delay := b.cfg.ReconnectMin
	var lastErr error
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			b.cfg.Logger.Warn("republishing unconfirmed messages", "count", len(pending), "attempt", attempt, "err", lastErr)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return unconfirmed(pending, ctx.Err(), lastErr)
			}
			delay = min(delay*2, b.cfg.ReconnectMax)
		}
		var err error
		pending, err = b.publishOnce(ctx, pending)
		if err != nil {
			if !errors.Is(err, errRetry) {
				return err
			}
			lastErr = err
		}
	}
	return nil
}

var errRetry = errors.New("retry")

// publishOnce sends pending on the current channel and waits for their confirms. It returns
// the messages that must be sent again.
func (b *Broker) publishOnce(ctx context.Context, pending []publishing) ([]publishing, error) {
	select {
	case b.pubLock <- struct{}{}:
	case <-ctx.Done():
		return nil, unconfirmed(pending, ctx.Err(), nil)
	}
	p, err := b.publisherChannel(ctx)
	if err != nil {
		<-b.pubLock
		if ctx.Err() != nil || errors.Is(err, broker.ErrClosed) {
			return nil, unconfirmed(pending, err, nil)
		}
		return pending, fmt.Errorf("%w: %w", errRetry, err)
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, len(pending))
	var sendErr error
	for _, m := range pending {
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, m.exchange, m.routingKey, m.mandatory, false, m.msg)
		if err != nil {
			sendErr = err
			break
		}
		confirms = append(confirms, dc)
	}
	<-b.pubLock

	var retry []publishing
	var unroutable []error
	nacked := false
	for i, dc := range confirms {
		ack, err := dc.WaitContext(ctx)
		if err != nil {
			return nil, unconfirmed(pending[i:], err, nil)
		}
		switch {
		case !ack:
			retry = append(retry, pending[i])
			nacked = true
		case pending[i].mandatory && p.wasReturned(pending[i].msg.MessageId):
			unroutable = append(unroutable, fmt.Errorf("publish %s to %s with key %s: %w",
				pending[i].label, pending[i].exchange, pending[i].routingKey, broker.ErrUnroutable))
		}
	}
	if nacked && !p.ch.IsClosed() {
		// A nack on a live channel means RabbitMQ could not hand the message to a queue; a
		// channel that began publishing to a quorum queue while its leader was being
		// re-elected nacks every later publish to it (seen on RabbitMQ 3.10), so the retry
		// goes through a new channel. Confirms others await on this one come back nacked
		// and are sent again too: a duplicate, never a loss.
		_ = p.ch.Close()
	}
	retry = append(retry, pending[len(confirms):]...)
	if len(unroutable) > 0 {
		return nil, errors.Join(unroutable...)
	}
	if sendErr != nil && ctx.Err() != nil {
		return nil, unconfirmed(retry, ctx.Err(), sendErr)
	}
	if len(retry) > 0 {
		cause := sendErr
		if cause == nil {
			cause = errors.New("broker nacked or the channel closed before confirming")
		}
		return retry, fmt.Errorf("%w: %w", errRetry, cause)
	}
	return nil, nil
}

// publisherChannel returns the confirm channel, opening a new one after a reconnect. The
// caller holds b.pubLock.
func (b *Broker) publisherChannel(ctx context.Context) (*publisher, error) {
	if b.pub != nil && !b.pub.ch.IsClosed() {
		return b.pub, nil
	}
	conn, err := b.connection(ctx)
	if err != nil {
		return nil, err
	}
	p, err := newPublisher(conn)
	if err != nil {
		return nil, err
	}
	b.pub = p
	return p, nil
}

func unconfirmed(pending []publishing, cause, last error) error {
	first := "message"
	if len(pending) > 0 {
		first = pending[0].label
	}
	if last != nil {
		return fmt.Errorf("publish %s (%d unconfirmed): %w (last error: %v)", first, len(pending), cause, last)
	}
	return fmt.Errorf("publish %s (%d unconfirmed): %w", first, len(pending), cause)
}
