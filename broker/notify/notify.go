// Package notify batches the changes a process commits into best-effort NotificationCreated
// messages for the api replicas' live streams, so that hundreds of status changes a second
// cost a handful of messages and never hold up the work that made them.
package notify

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/attune-go/attune/broker"
)

// Config tunes a Notifier.
type Config struct {
	// MaxPending bounds the notifications waiting to be sent; past it the oldest are dropped.
	// Default 10000.
	MaxPending int
	// MaxBatch bounds the notifications one message carries. Default 1000.
	MaxBatch int
	// MaxBatchBytes bounds the output (live output's text) one message carries; a single
	// notification larger than it still goes, alone. Default 256 KiB.
	MaxBatchBytes int
	// PublishTimeout bounds one publish; a batch not confirmed by then is dropped: a
	// notification that late is worth little to a live view. Default 2s.
	PublishTimeout time.Duration
	Logger         *slog.Logger
}

func (c Config) withDefaults() Config {
	c.MaxPending = cmp.Or(c.MaxPending, 10000)
	c.MaxBatch = cmp.Or(c.MaxBatch, 1000)
	c.MaxBatchBytes = cmp.Or(c.MaxBatchBytes, 256<<10)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, 2*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Notifier gathers notifications and sends them from one loop: a batch as soon as the previous
// publish has returned. An idle process therefore sends each change at once, and a busy one
// sends whatever piled up during the last publish as one message. Notify never blocks, and
// nothing waits for a notification to be sent: the bound on what waits drops the oldest.
type Notifier struct {
	pub broker.Publisher
	cfg Config

	mu      sync.Mutex
	pending []broker.Notification
	wake    chan struct{} // holds a token while pending may be non-empty
	// pendingBytes is the output that pending carries, which a producer of live output reads
	// to drop what it prints rather than pile it up here while publishing falls behind.
	pendingBytes atomic.Int64
	// pendingCount is len(pending), for Crowded, which must not wait on mu.
	pendingCount atomic.Int64

	dropped  atomic.Int64 // notifications lost, to the bound or to a failed publish
	reported int64        // dropped as of the last warning; the Run loop's own
	warnedAt time.Time
}

// New returns a Notifier that publishes through pub once Run runs.
func New(pub broker.Publisher, cfg Config) *Notifier {
	return &Notifier{pub: pub, cfg: cfg.withDefaults(), wake: make(chan struct{}, 1)}
}

// Notify queues ns for the next batch. Call it after the change is committed.
func (n *Notifier) Notify(ns ...broker.Notification) {
	if len(ns) == 0 {
		return
	}
	n.mu.Lock()
	n.pending = append(n.pending, ns...)
	n.pendingBytes.Add(int64(bytesOf(ns)))
	if over := len(n.pending) - n.cfg.MaxPending; over > 0 {
		n.pendingBytes.Add(-int64(bytesOf(n.pending[:over])))
		// Re-slicing costs nothing; append copies into a new array once the old one is used
		// up, so what a long overrun keeps stays within twice the bound. What is dropped is
		// cleared first: the array would keep its output reachable until then.
		clear(n.pending[:over])
		n.pending = n.pending[over:]
		n.dropped.Add(int64(over))
	}
	n.pendingCount.Store(int64(len(n.pending)))
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// PendingBytes reports how much output the notifications waiting to be sent carry.
func (n *Notifier) PendingBytes() int { return int(n.pendingBytes.Load()) }

// Crowded reports whether more than half the notifications MaxPending allows wait to be sent.
// A producer of what a reader can do without (live output) then holds it back, so that it
// never pushes status changes out of the bound.
func (n *Notifier) Crowded() bool { return n.pendingCount.Load() > int64(n.cfg.MaxPending/2) }

// Dropped reports how many notifications were lost so far: to the bound on what waits, or
// with a publish that failed.
func (n *Notifier) Dropped() int64 { return n.dropped.Load() }

// Run sends batches until ctx ends, then sends what is still pending within one
// PublishTimeout, so that the last changes of a stopping process are not lost for nothing; it
// returns nil. A publish is bounded by PublishTimeout, not by ctx: stopping lets the one under
// way finish.
func (n *Notifier) Run(ctx context.Context) error {
	send := context.WithoutCancel(ctx)
	for {
		select {
		case <-n.wake:
		case <-ctx.Done():
		}
		// Stopping wins over a wake-up that came at the same time.
		if ctx.Err() != nil {
			break
		}
		n.sendPending(send)
	}
	// One PublishTimeout for everything left, not one per batch: a broker that is away must
	// not hold a stopping process for MaxPending/MaxBatch timeouts.
	last, cancel := context.WithTimeout(send, n.cfg.PublishTimeout)
	defer cancel()
	n.sendPending(last)
	return nil
}

// sendPending publishes what waits, one message per MaxBatch notifications.
func (n *Notifier) sendPending(ctx context.Context) {
	for {
		batch := n.take()
		if len(batch) == 0 {
			return
		}
		n.send(ctx, batch)
	}
}

// take removes up to MaxBatch of the oldest pending notifications, carrying at most
// MaxBatchBytes of output unless the first alone carries more.
func (n *Notifier) take() []broker.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	k, size := 0, 0
	for k < min(len(n.pending), n.cfg.MaxBatch) {
		b := n.pending[k].Bytes()
		if k > 0 && size+b > n.cfg.MaxBatchBytes {
			break
		}
		k, size = k+1, size+b
	}
	if k == 0 {
		return nil
	}
	n.pendingBytes.Add(-int64(size))
	// The batch gets an array of its own, and what it took is cleared from pending's, so
	// that neither keeps the other's output reachable: pending's array lives on while
	// notifications come, and the batch until its publish returns.
	batch := slices.Clone(n.pending[:k])
	clear(n.pending[:k])
	if k == len(n.pending) {
		n.pending = nil
	} else {
		n.pending = n.pending[k:]
	}
	n.pendingCount.Store(int64(len(n.pending)))
	return batch
}

func (n *Notifier) send(ctx context.Context, batch []broker.Notification) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PublishTimeout)
	defer cancel()
	err := broker.Send(ctx, n.pub, broker.NotificationCreated{Notifications: batch})
	if err != nil {
		n.dropped.Add(int64(len(batch)))
	}
	n.report(err)
}

func bytesOf(ns []broker.Notification) int {
	size := 0
	for _, n := range ns {
		size += n.Bytes()
	}
	return size
}

// warnEvery bounds how often losses are logged: a broker that is away, or a bound that a burst
// overruns, would otherwise log every batch.
const warnEvery = 10 * time.Second

func (n *Notifier) report(err error) {
	dropped := n.dropped.Load()
	if dropped == n.reported || time.Since(n.warnedAt) < warnEvery {
		return
	}
	args := []any{"dropped", dropped - n.reported, "dropped_total", dropped}
	if err != nil {
		args = append(args, "err", err)
	}
	n.cfg.Logger.Warn("live-stream notifications dropped", args...)
	n.reported, n.warnedAt = dropped, time.Now()
}
