// Package amqpbroker implements the broker contract on RabbitMQ through amqp091-go: durable
// topic exchanges, classic or quorum queues, persistent messages (transient for best-effort
// types), pipelined publisher confirms, manual acks with per-subscription prefetch,
// dead-lettering, and automatic reconnection after the broker goes away, to another node of
// a cluster when several are given.
package amqpbroker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/attune-go/attune/broker"
)

// ErrNotConnected is reported by Ping while the connection is down.
var ErrNotConnected = errors.New("not connected to RabbitMQ")

// Config configures the adapter.
type Config struct {
	// URL is the node to connect to. URLs lists further nodes of the same cluster: the
	// adapter connects to the first of URL and URLs that answers and, when that connection
	// drops, to the next one in turn.
	URL  string
	URLs []string
	// QueueType is the type of the durable queues it declares. Default classic.
	QueueType QueueType
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
	c.QueueType = cmp.Or(c.QueueType, QueueClassic)
	return c
}

// nodes lists the URLs to connect to, in the order they are tried.
func (c Config) nodes() []string {
	var out []string
	for _, u := range append([]string{c.URL}, c.URLs...) {
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

// Broker is a RabbitMQ-backed broker.Broker holding one connection, re-established whenever
// it drops: one channel publishes, each subscription consumes on a channel of its own.
type Broker struct {
	cfg   Config
	ns    broker.Namespace
	nodes []string

	mu     sync.Mutex
	node   int              // index in nodes of the connection, or of the last one
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
	nodes := cfg.nodes()
	if len(nodes) == 0 {
		return nil, errors.New("no RabbitMQ URL")
	}
	for _, u := range nodes {
		if err := ValidateURL(u); err != nil {
			return nil, err
		}
	}
	if err := cfg.QueueType.validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:      cfg,
		ns:       cfg.Namespace,
		nodes:    nodes,
		up:       make(chan struct{}),
		done:     make(chan struct{}),
		declared: make(map[string]broker.Queue),
		pubLock:  make(chan struct{}, 1),
	}
	conn, node, err := b.connect(ctx, 0)
	if err != nil {
		return nil, err
	}
	b.setConn(conn, node)
	b.wg.Add(1)
	go b.supervise(conn)
	return b, nil
}

// Addr is the URL of the node connected to (the last one, while disconnected) without
// credentials.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return redact(b.nodes[b.node])
}

// dialTimeout bounds one node's dial and handshake, so that a node that hangs rather than
// refuses does not keep the others from being tried.
const dialTimeout = 5 * time.Second

// connect dials the nodes in turn from first, wrapping around, until one answers and takes
// the topology; it returns the connection and that node's index. A node that refuses the
// topology (a queue declared with other arguments) ends the attempt: the nodes of a cluster
// share their queues, so the next would refuse it too.
func (b *Broker) connect(ctx context.Context, first int) (*amqp.Connection, int, error) {
	var errs []error
	for i := range b.nodes {
		node := (first + i) % len(b.nodes)
		conn, err := b.dial(ctx, node)
		if err == nil {
			return conn, node, nil
		}
		errs = append(errs, err)
		if refused(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, 0, nodeErrors(errs)
}

// nodeErrors is what each node answered, on one line.
type nodeErrors []error

func (e nodeErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e nodeErrors) Unwrap() []error { return e }

func (b *Broker) dial(ctx context.Context, node int) (*amqp.Connection, error) {
	display := redact(b.nodes[node])
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(b.cfg.ConnectionName)
	timeout := dialTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline))
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("connect to RabbitMQ at %s: %w", display, context.DeadlineExceeded)
	}
	conn, err := amqp.DialConfig(b.nodes[node], amqp.Config{
		Heartbeat:  b.cfg.Heartbeat,
		Locale:     "en_US",
		Properties: props,
		Dial:       amqp.DefaultDial(timeout),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to RabbitMQ at %s: %w", display, err)
	}
	if err := b.declareTopology(conn); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("RabbitMQ at %s: %w", display, err)
	}
	return conn, nil
}

func (b *Broker) setConn(conn *amqp.Connection, node int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conn, b.node = conn, node
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
			log.Warn("rabbitmq connection lost; reconnecting", "addr", b.Addr(), "err", err)
		case <-b.done:
			return
		}
		b.mu.Lock()
		b.conn = nil
		b.up = make(chan struct{})
		// The next node first: the one just lost is likely down, and the others of its
		// cluster hold the same queues.
		next := (b.node + 1) % len(b.nodes)
		b.mu.Unlock()

		delay := b.cfg.ReconnectMin
		node := 0
		for attempt := 1; ; attempt++ {
			select {
			case <-time.After(delay):
			case <-b.done:
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(b.nodes))*dialTimeout+5*time.Second)
			c, n, err := b.connect(ctx, next)
			cancel()
			if err == nil {
				conn, node = c, n
				break
			}
			log.Warn("rabbitmq reconnect failed", "attempt", attempt, "err", err)
			delay = min(delay*2, b.cfg.ReconnectMax)
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			_ = conn.Close()
			return
		}
		b.mu.Unlock()
		b.setConn(conn, node)
		log.Info("rabbitmq connection restored", "addr", b.Addr())
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
		conn, up, display := b.conn, b.up, redact(b.nodes[b.node])
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
			return nil, fmt.Errorf("wait for RabbitMQ at %s: %w", display, ctx.Err())
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
		return fmt.Errorf("%w at %s", ErrNotConnected, redact(b.nodes[b.node]))
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
