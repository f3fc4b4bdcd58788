// Package relay publishes the messages a process sends after a commit, keeping those the
// broker cannot take at the moment and sending them, in order, as soon as it can.
//
// A request or a handler that has committed its change must neither hang on an unreachable
// broker (a webhook client cannot tell a hung request from a lost one) nor forget the message
// its commit calls for. Send tries the broker for a short, fixed time; when it cannot, the
// messages wait in memory and Run sends them as soon as the broker is back, so that the work
// they announce resumes within seconds of its return rather than at the next sweep. What a
// process held when it died is found again from the rows by the executor's sweeper.
package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attune-go/attune/broker"
)

// Config tunes a Relay.
type Config struct {
	// Attempt bounds a Send's own try at the broker, before it keeps the messages for Run.
	// Default 1s: a healthy broker confirms in milliseconds.
	Attempt time.Duration
	// MaxPending bounds the messages kept; past it the oldest are dropped (and logged): the
	// rows they announce are still there for the executor's sweeper. Default 100000.
	MaxPending int
	// MaxBatch bounds the messages one retry publishes. Default 500.
	MaxBatch int
	// FinalFlush bounds the last try, when Run's context ends. Default 2s.
	FinalFlush time.Duration
	Logger     *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Attempt = cmp.Or(c.Attempt, time.Second)
	c.MaxPending = cmp.Or(c.MaxPending, 100_000)
	c.MaxBatch = cmp.Or(c.MaxBatch, 500)
	c.FinalFlush = cmp.Or(c.FinalFlush, 2*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Relay is a process's after-commit publisher. It is safe for concurrent use.
type Relay struct {
	pub broker.Publisher
	cfg Config

	mu      sync.Mutex
	pending []broker.Message
	// removed counts the messages ever taken off the front of pending, sent or dropped, so
	// that a flush knows how many of the ones it sent are still there to remove.
	removed int64
	wake    chan struct{}

	dropped atomic.Int64
}

// New returns a Relay that publishes through pub; Run must run for kept messages to go.
func New(pub broker.Publisher, cfg Config) *Relay {
	return &Relay{pub: pub, cfg: cfg.withDefaults(), wake: make(chan struct{}, 1)}
}

// Send publishes payloads, or keeps them for Run when the broker does not take them within
// Config.Attempt. Either way the caller may go on as if they were sent: they will be, unless
// the process dies first. While messages are kept, later ones queue behind them without
// trying the broker, so that a broker outage costs each caller nothing and messages keep
// their order. Only a message that can never be sent is an error: one that cannot be encoded,
// or broker.ErrUnroutable (no queue is bound for it).
func (r *Relay) Send(ctx context.Context, payloads ...broker.Payload) error {
	if len(payloads) == 0 {
		return nil
	}
	msgs := make([]broker.Message, 0, len(payloads))
	for _, p := range payloads {
		m, err := broker.NewMessage(p)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if r.keepIfBacklogged(msgs) {
		return nil
	}
	err := r.attempt(ctx, msgs)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrUnroutable):
		return err
	}
	r.cfg.Logger.WarnContext(ctx, "broker did not take messages; keeping them until it does", "messages", len(msgs), "err", err)
	r.keep(msgs)
	return nil
}

// attempt publishes msgs and returns within Config.Attempt whatever the broker does: not every
// step of a publish heeds its context (opening a channel on a connection the server is
// closing can hang), so the publish runs on its own and is left behind when it overruns. Its
// messages are then kept and sent again by Run: at least once, a duplicate at worst.
func (r *Relay) attempt(ctx context.Context, msgs []broker.Message) error {
	// The caller's cancellation does not withdraw what its commit calls for.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Attempt)
	done := make(chan error, 1)
	go func() {
		defer cancel()
		done <- r.pub.Publish(actx, msgs...)
	}()
	select {
	case err := <-done:
		return err
	case <-actx.Done():
		return fmt.Errorf("publish %d messages: no confirm within %s: %w", len(msgs), r.cfg.Attempt, actx.Err())
	}
}

// Pending reports how many messages wait for the broker.
func (r *Relay) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

func (r *Relay) keepIfBacklogged(msgs []broker.Message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 {
		return false
	}
	r.appendLocked(msgs)
	return true
}

func (r *Relay) keep(msgs []broker.Message) {
	r.mu.Lock()
	r.appendLocked(msgs)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Relay) appendLocked(msgs []broker.Message) {
	r.pending = append(r.pending, msgs...)
	if over := len(r.pending) - r.cfg.MaxPending; over > 0 {
		r.removeFrontLocked(over)
		r.dropped.Add(int64(over))
	}
}

func (r *Relay) removeFrontLocked(n int) {
	r.pending = append(r.pending[:0:0], r.pending[n:]...)
	r.removed += int64(n)
}

// Run sends kept messages, oldest first, retrying with backoff until the broker takes them,
// until ctx ends; it then tries once more within Config.FinalFlush and reports what it lost.
func (r *Relay) Run(ctx context.Context) error {
	const minDelay, maxDelay = 50 * time.Millisecond, 2 * time.Second
	delay := minDelay
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.reportDropped(ctx)
		if r.Pending() == 0 {
			delay = minDelay
			select {
			case <-ctx.Done():
				return nil
			case <-r.wake:
			}
		}
		timer.Reset(delay)
		select {
		case <-ctx.Done():
			r.finalFlush(ctx)
			return nil
		case <-timer.C:
		}
		if err := r.flush(ctx, 5*time.Second); err != nil {
			delay = min(delay*2, maxDelay)
			continue
		}
		delay = minDelay
	}
}

// flush publishes batches of the oldest kept messages until none is left or one fails.
func (r *Relay) flush(ctx context.Context, timeout time.Duration) error {
	for {
		r.mu.Lock()
		batch := r.pending[:min(len(r.pending), r.cfg.MaxBatch):min(len(r.pending), r.cfg.MaxBatch)]
		removedBefore := r.removed
		r.mu.Unlock()
		if len(batch) == 0 {
			return nil
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		err := r.pub.Publish(pctx, batch...)
		cancel()
		if errors.Is(err, broker.ErrUnroutable) {
			// Nobody will ever take one of these: send them one by one so that only the
			// unroutable ones are dropped.
			err = r.sendEach(pctx, batch)
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		// The batch was the front of pending; what the bound dropped meanwhile was taken
		// from that same front.
		r.removeFrontLocked(max(0, len(batch)-int(r.removed-removedBefore)))
		left := len(r.pending)
		r.mu.Unlock()
		r.cfg.Logger.InfoContext(ctx, "kept messages sent", "messages", len(batch), "still_kept", left)
	}
}

func (r *Relay) sendEach(ctx context.Context, batch []broker.Message) error {
	for _, m := range batch {
		err := r.pub.Publish(context.WithoutCancel(ctx), m)
		if errors.Is(err, broker.ErrUnroutable) {
			r.cfg.Logger.ErrorContext(ctx, "dropping a kept message no queue is bound for", "message_id", m.ID, "message_type", m.Type)
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Relay) finalFlush(ctx context.Context) {
	if r.Pending() == 0 {
		return
	}
	if err := r.flush(ctx, r.cfg.FinalFlush); err != nil {
		r.cfg.Logger.WarnContext(ctx, "stopping with messages the broker did not take; the executor's sweeper will find their rows",
			"messages", r.Pending(), "err", err)
	}
}

func (r *Relay) reportDropped(ctx context.Context) {
	if n := r.dropped.Swap(0); n > 0 {
		r.cfg.Logger.WarnContext(ctx, "kept messages dropped past the bound; the executor's sweeper will find their rows", "messages", n)
	}
}
