package broker

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Delivery is one message handed to a subscription by an adapter, with the three ways to
// settle it.
type Delivery interface {
	Body() []byte
	Ack() error
	// Retry puts m (the message with its retry count raised) back at the tail of the queue
	// and then acknowledges the original, so the count survives the round trip.
	Retry(ctx context.Context, m Message) error
	// DeadLetter rejects the message into the dead-letter exchange.
	DeadLetter() error
}

// Dispatcher runs a Handler over deliveries with bounded concurrency and settles each one by
// the handler's verdict. Adapters feed it; it holds the policy they share.
type Dispatcher struct {
	handler Handler
	opts    Options
	queue   string
	meter   QueueMeter
	slots   chan struct{}
	wg      sync.WaitGroup
	// handlers run under their own context, not the subscription's: stopping a subscription
	// must let in-flight work finish, and only a drain that runs out of time cancels it.
	handlerCtx    context.Context
	cancelHandler context.CancelFunc

	drainOnce sync.Once
	drained   bool
}

// NewDispatcher returns a dispatcher that runs at most prefetch handlers at once.
func NewDispatcher(ctx context.Context, queue string, prefetch int, h Handler, opts Options) *Dispatcher {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	opts = opts.WithDefaults()
	return &Dispatcher{
		handler:       h,
		opts:          opts,
		queue:         queue,
		meter:         opts.Meter.Queue(QueueKind(queue)),
		slots:         make(chan struct{}, max(prefetch, 1)),
		handlerCtx:    hctx,
		cancelHandler: cancel,
	}
}

// Dispatch handles del in its own goroutine, waiting first for a free slot. It reports false,
// leaving del unsettled for the adapter to hand back, when ctx ends before a slot frees:
// handlers from a lost channel can hold every slot, and a stopping subscription must not wait
// behind them.
func (d *Dispatcher) Dispatch(ctx context.Context, del Delivery) bool {
	select {
	case d.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	d.wg.Add(1)
	go func() {
		defer func() {
			<-d.slots
			d.wg.Done()
		}()
		d.handle(del)
	}()
	return true
}

// abandonGrace is how long a drain waits for handlers after cancelling their context. It
// exceeds the worker's grace between SIGTERM and SIGKILL for an action, so that a cancelled
// action is killed, not left behind, before its subscription gives up on it.
const abandonGrace = 7 * time.Second

// Drain waits for in-flight handlers. If they are still running after the drain timeout their
// context is cancelled; a handler that ignores that too is abandoned after a short grace, and
// its message is left unsettled for the adapter to redeliver. Drain reports whether every
// handler returned. Later calls return the first call's answer at once.
func (d *Dispatcher) Drain() bool {
	d.drainOnce.Do(func() { d.drained = d.drain() })
	return d.drained
}

func (d *Dispatcher) drain() bool {
	defer d.cancelHandler()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(d.opts.DrainTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
	}
	d.opts.Logger.Warn("drain timed out, cancelling handlers", "queue", d.queue)
	d.cancelHandler()
	timer.Reset(abandonGrace)
	select {
	case <-done:
		return true
	case <-timer.C:
		d.opts.Logger.Error("abandoning handlers that ignore cancellation; their messages will be redelivered", "queue", d.queue)
		return false
	}
}

func (d *Dispatcher) handle(del Delivery) {
	log := d.opts.Logger
	d.meter.Consumed()
	m, err := Unmarshal(del.Body())
	if err != nil {
		log.Error("dead-lettering unreadable message", "queue", d.queue, "err", err)
		d.deadLetter(del)
		return
	}
	if r, ok := del.(redelivered); m.Headers.RetryCount > 0 || m.Headers.OutageRetries > 0 || ok && r.Redelivered() {
		d.meter.Redelivered()
	}
	herr := d.runHandler(m)
	switch {
	case herr == nil:
		d.settle(del.Ack(), "ack")
	case IsPermanent(herr):
		log.Error("dead-lettering message", "queue", d.queue, "message_id", m.ID, "message_type", m.Type, "trace_id", m.Headers.TraceID, "err", herr)
		d.deadLetter(del)
	case IsTransient(herr) && m.Headers.OutageSince != nil && time.Since(*m.Headers.OutageSince) > d.opts.MaxOutage:
		log.Error("dead-lettering message whose dependency has been away too long", "queue", d.queue, "message_id", m.ID,
			"message_type", m.Type, "trace_id", m.Headers.TraceID, "since", *m.Headers.OutageSince, "err", herr)
		d.deadLetter(del)
	case IsTransient(herr):
		log.Warn("requeueing message while a dependency is away", "queue", d.queue, "message_id", m.ID, "message_type", m.Type,
			"outage_retries", m.Headers.OutageRetries, "err", herr)
		d.backoff(m.Headers.OutageRetries)
		if m.Headers.OutageSince == nil {
			now := time.Now().UTC()
			m.Headers.OutageSince = &now
		}
		m.Headers.OutageRetries++
		d.settle(del.Retry(d.handlerCtx, m), "retry")
	case m.Headers.RetryCount+1 >= d.opts.MaxAttempts:
		log.Error("dead-lettering message after its last attempt", "queue", d.queue, "message_id", m.ID,
			"message_type", m.Type, "trace_id", m.Headers.TraceID, "attempts", m.Headers.RetryCount+1, "err", herr)
		d.deadLetter(del)
	default:
		log.Warn("requeueing message", "queue", d.queue, "message_id", m.ID, "message_type", m.Type, "trace_id", m.Headers.TraceID,
			"retry_count", m.Headers.RetryCount, "err", herr)
		d.backoff(m.Headers.RetryCount)
		m.Headers.RetryCount++
		d.settle(del.Retry(d.handlerCtx, m), "retry")
	}
}

func (d *Dispatcher) runHandler(m Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			d.opts.Logger.Error("handler panicked", "queue", d.queue, "message_id", m.ID, "panic", r)
			err = Permanent(panicError{value: r})
		}
	}()
	return d.handler(d.handlerCtx, m)
}

type panicError struct{ value any }

func (p panicError) Error() string { return fmt.Sprintf("handler panicked: %v", p.value) }

// backoff waits before a requeue so that a failing dependency is not hammered, but gives
// way at once when the subscription is draining out of time.
func (d *Dispatcher) backoff(retryCount int) {
	delay := d.opts.RetryBackoff << min(retryCount, 6)
	delay = min(delay, 5*time.Second)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.handlerCtx.Done():
	}
}

func (d *Dispatcher) deadLetter(del Delivery) {
	d.meter.DeadLettered()
	d.settle(del.DeadLetter(), "dead-letter")
}

// settle logs a failed settlement. The adapter redelivers what could not be settled (AMQP
// redelivers unacked messages when the channel closes), so there is nothing more to do here.
func (d *Dispatcher) settle(err error, how string) {
	if err != nil {
		d.opts.Logger.Warn("settling message failed; it will be redelivered", "queue", d.queue, "how", how, "err", err)
	}
}
