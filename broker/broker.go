package broker

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"
)

// Handler processes one message. Its error decides the message's fate: nil acknowledges,
// Permanent(err) dead-letters, anything else requeues (see Options.MaxAttempts).
type Handler func(ctx context.Context, m Message) error

// Publisher sends messages to the exchanges their types route to.
type Publisher interface {
	// Publish returns nil only once the broker has taken responsibility for every message
	// (for AMQP: a publisher confirm). A message it could not hand over is retried until ctx
	// ends and then reported, never dropped silently. A message no queue is bound for is
	// ErrUnroutable, except for best-effort types (Type.BestEffort), which are sent transient
	// and dropped without an error when nobody listens. Safe for concurrent use.
	Publish(ctx context.Context, msgs ...Message) error
}

// Sender publishes what a commit calls for. A process's relay (package broker/relay)
// implements it, keeping what the broker cannot take at once; Direct publishes and waits.
type Sender interface {
	Send(ctx context.Context, payloads ...Payload) error
}

// Direct is a Sender that publishes through p and returns its error: for tests, and tools
// that have no relay running.
func Direct(p Publisher) Sender { return directSender{p} }

type directSender struct{ p Publisher }

func (d directSender) Send(ctx context.Context, payloads ...Payload) error {
	return Send(ctx, d.p, payloads...)
}

// Subscription says what to consume and how much of it at once.
type Subscription struct {
	Queue Queue
	// Prefetch bounds the messages handled concurrently by this subscription.
	Prefetch int
}

// Subscriber consumes queues.
type Subscriber interface {
	// Subscribe declares the queue, then delivers its messages to h until ctx ends. It then
	// stops taking messages, lets in-flight handlers finish within Options.DrainTimeout, and
	// returns nil. Messages not settled by then are redelivered to another consumer.
	Subscribe(ctx context.Context, s Subscription, h Handler) error
}

// Broker is what a process holds: one connection to publish and subscribe through.
type Broker interface {
	Publisher
	Subscriber
	// Declare creates a queue and its bindings ahead of Subscribe, so that messages routed to
	// it are kept from that moment on. Declaring twice is harmless.
	Declare(ctx context.Context, q Queue) error
	// Depth reports how many messages wait in q for a consumer, not counting those delivered
	// and not yet settled. A queue that does not exist holds none. The executor's sweeper
	// asks it to tell a message lost from one still on its way: while a queue holds messages,
	// rows waiting for them may just be behind a backlog.
	Depth(ctx context.Context, q Queue) (int, error)
	// Ping reports whether the broker is reachable now; readiness checks call it.
	Ping(ctx context.Context) error
	// Close releases the connection. Subscriptions must have returned before.
	Close() error
}

// ErrClosed is returned by a broker that has been closed.
var ErrClosed = errors.New("broker closed")

// ErrUnroutable is returned by Publish when no queue is bound for a message, which the broker
// would otherwise drop without a word (a dispatch to a worker whose queue is gone, say).
// Best-effort types are the exception: for them nobody listening is no error.
var ErrUnroutable = errors.New("no queue is bound for the message")

// Options are shared by every adapter.
type Options struct {
	Namespace Namespace
	// MaxAttempts is how many times a message is handled before a failing one is
	// dead-lettered. Default 10.
	MaxAttempts int
	// MaxOutage is how long a message is retried while its handler says a dependency is away
	// (IsTransient) before it is dead-lettered all the same: longer than any outage worth
	// waiting out, so that a message whose own handling fails that way is not retried for
	// ever. Default 1h.
	MaxOutage time.Duration
	// DrainTimeout bounds how long a stopping subscription waits for in-flight handlers.
	// Default 10s.
	DrainTimeout time.Duration
	// RetryBackoff is the delay before the first requeue; it doubles per attempt up to 5s.
	// Default 100ms.
	RetryBackoff time.Duration
	// SourceService is stamped on published envelopes that do not name one.
	SourceService string
	Logger        *slog.Logger
	// Meter counts what is published and consumed; nil counts nothing.
	Meter Meter
}

// WithDefaults fills unset options.
func (o Options) WithDefaults() Options {
	o.MaxAttempts = cmp.Or(o.MaxAttempts, 10)
	o.MaxOutage = cmp.Or(o.MaxOutage, time.Hour)
	o.DrainTimeout = cmp.Or(o.DrainTimeout, 10*time.Second)
	o.RetryBackoff = cmp.Or(o.RetryBackoff, 100*time.Millisecond)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Meter == nil {
		o.Meter = noMeter{}
	}
	return o
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that no retry can fix: the message is dead-lettered.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err: err}
}

// IsTransient reports whether err says that a dependency is away for now (the database
// restarting, say): an error whose chain holds one with a method Transient() bool that
// reports true, such as store.ErrUnavailable. A handler failing for that reason is retried
// for as long as it takes, without using up the message's attempts: an outage, however long,
// must not dead-letter the work that waited through it.
func IsTransient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}

// IsPermanent reports whether err, or an error it wraps, was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
