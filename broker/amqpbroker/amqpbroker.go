// Package amqpbroker implements the broker contract on RabbitMQ through amqp091-go: durable
// topic exchanges, persistent messages (transient for best-effort types), pipelined publisher
// confirms, manual acks with per-subscription prefetch, dead-lettering, and automatic
// reconnection after the broker goes away.
package amqpbroker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/attune-go/attune/broker"
)

// ErrNotConnected is reported by Ping while the connection is down.
var ErrNotConnected = errors.New("not connected to RabbitMQ")

// Config configures the adapter.
type Config struct {
	URL string
	broker.Options
	// ConnectionName shows up in rabbitmqctl list_connections. Default "attune".
	ConnectionName string
	// Heartbeat is the AMQP heartbeat interval. Default 10s.
	Heartbeat time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between reconnection attempts.
	// Defaults 100ms and 5s.
	ReconnectMin time.Duration
	ReconnectMax time.Duration
}

func (c Config) withDefaults() Config {
	c.Options = c.Options.WithDefaults()
	c.ConnectionName = cmp.Or(c.ConnectionName, "attune")
	c.Heartbeat = cmp.Or(c.Heartbeat, 10*time.Second)
	c.ReconnectMin = cmp.Or(c.ReconnectMin, 100*time.Millisecond)
	c.ReconnectMax = cmp.Or(c.ReconnectMax, 5*time.Second)
	return c
}

// Broker is a RabbitMQ-backed broker.Broker holding one connection, re-established whenever
// it drops: one channel publishes, each subscription consumes on a channel of its own.
type Broker struct {
	cfg     Config
	ns      broker.Namespace
	display string // the URL without its password, for messages and logs

	mu     sync.Mutex
	conn   *amqp.Connection // nil while disconnected
	up     chan struct{}    // closed while conn is usable
	closed bool
	done   chan struct{}

	declaredMu sync.Mutex
	declared   map[string]broker.Queue // queues declared by subscriptions, for Teardown

	// pubLock serialises sending on the confirm channel. It is a channel rather than a mutex
	// so that a publish waiting for it gives up when its context ends: the holder may be
	// waiting for a reconnect, and a caller with a deadline must not queue behind it past it.
	pubLock chan struct{}
	pub     *publisher

	wg sync.WaitGroup
}

var _ broker.Broker = (*Broker)(nil)

// ValidateURL checks that raw is an AMQP URL, without echoing any password it holds.
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
		return fmt.Errorf("invalid AMQP URL %q: want amqp://user:password@host:port/vhost", redact(raw))
	}
	if _, err := amqp.ParseURI(raw); err != nil {
		return fmt.Errorf("invalid AMQP URL %q: %v", redact(raw), err)
	}
	return nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable>"
	}
	return u.Redacted()
}

// New connects to RabbitMQ and declares the topology. The first connection must succeed, so
// that a wrong URL fails at start; later losses are repaired in the background.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := ValidateURL(cfg.URL); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      cfg,
		ns:       cfg.Namespace,
		display:  redact(cfg.URL),
		up:       make(chan struct{}),
		done:     make(chan struct{}),
		declared: make(map[string]broker.Queue),
		pubLock:  make(chan struct{}, 1),
	}
	conn, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	b.setConn(conn)
	b.wg.Add(1)
	go b.supervise(conn)
	return b, nil
}

// Addr is the broker URL without credentials.
func (b *Broker) Addr() string { return b.display }

func (b *Broker) connect(ctx context.Context) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(b.cfg.ConnectionName)
	timeout := 5 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	conn, err := amqp.DialConfig(b.cfg.URL, amqp.Config{
		Heartbeat:  b.cfg.Heartbeat,
		Locale:     "en_US",
		Properties: props,
		Dial:       amqp.DefaultDial(timeout),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ at %s: %w", b.display, err)
	}
	if err := b.declareTopology(conn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

func (b *Broker) setConn(conn *amqp.Connection) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn = conn
	close(b.up)
}

// supervise waits for the connection to drop and dials again with backoff until Close.
func (b *Broker) supervise(conn *amqp.Connection) {
	defer b.wg.Done()
	log := b.cfg.Logger
	for {
		lost := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case err := <-lost:
			log.Warn("rabbitmq connection lost; reconnecting", "addr", b.display, "err", err)
		case <-b.done:
			return
		}
		b.mu.Lock()
		b.conn = nil
		b.up = make(chan struct{})
		b.mu.Unlock()

		delay := b.cfg.ReconnectMin
		for attempt := 1; ; attempt++ {
			select {
			case <-time.After(delay):
			case <-b.done:
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := b.connect(ctx)
			cancel()
			if err == nil {
				conn = c
				break
			}
			log.Warn("rabbitmq reconnect failed", "addr", b.display, "attempt", attempt, "err", err)
			delay = min(delay*2, b.cfg.ReconnectMax)
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			_ = conn.Close()
			return
		}
		b.mu.Unlock()
		b.setConn(conn)
		log.Info("rabbitmq connection restored", "addr", b.display)
	}
}

// connection returns the live connection, waiting for a reconnect while it is down.
func (b *Broker) connection(ctx context.Context) (*amqp.Connection, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, broker.ErrClosed
		}
		conn, up := b.conn, b.up
		b.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn, nil
		}
		var settle <-chan time.Time
		if conn != nil {
			// Closed, but the supervisor has not noticed yet and up is still the old, closed
			// channel: give it a moment rather than spin.
			up, settle = nil, time.After(10*time.Millisecond)
		}
		select {
		case <-up:
		case <-settle:
		case <-b.done:
			return nil, broker.ErrClosed
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for RabbitMQ at %s: %w", b.display, ctx.Err())
		}
	}
}

// Ping reports whether the connection is up.
func (b *Broker) Ping(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return broker.ErrClosed
	}
	if b.conn == nil || b.conn.IsClosed() {
		return fmt.Errorf("%w at %s", ErrNotConnected, b.display)
	}
	return nil
}

// Close closes the connection and stops reconnecting.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	conn := b.conn
	b.mu.Unlock()
	var err error
	if conn != nil && !conn.IsClosed() {
		err = conn.Close()
	}
	b.wg.Wait()
	if err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("close RabbitMQ connection: %w", err)
	}
	return nil
}
