// Package brokertest holds what broker tests share: how to find a RabbitMQ to test against,
// a per-test AMQP broker in its own namespace, a TCP proxy that can cut the connection, and
// the conformance suite every adapter must pass.
package brokertest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
	tcrabbitmq "github.com/testcontainers/testcontainers-go/modules/rabbitmq"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/amqpbroker"
)

// EnvURL names the variable that points tests at a RabbitMQ.
const EnvURL = "ATTUNE_TEST_AMQP_URL"

var container struct {
	once sync.Once
	url  string
	err  error
}

// URL returns the AMQP URL tests use: ATTUNE_TEST_AMQP_URL, else a RabbitMQ container started
// once per test binary when a Docker engine answers. Without either the test is skipped, or
// fails under CI=true, where a missing service must never pass for a green run.
func URL(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	container.once.Do(func() { container.url, container.err = startContainer() })
	if container.err != nil {
		missing(tb, fmt.Sprintf("RabbitMQ: set %s or run a Docker engine (%v)", EnvURL, container.err))
	}
	return container.url
}

func startContainer() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := dockerHealthy(ctx); err != nil {
		return "", err
	}
	// The container outlives this test binary's tests; testcontainers' reaper removes it.
	c, err := tcrabbitmq.Run(ctx, "rabbitmq:3.13-alpine")
	if err != nil {
		return "", fmt.Errorf("start rabbitmq container: %w", err)
	}
	return c.AmqpURL(ctx)
}

func dockerHealthy(ctx context.Context) (err error) {
	defer func() {
		// testcontainers panics when it finds no Docker configuration at all.
		if r := recover(); r != nil {
			err = fmt.Errorf("no docker engine: %v", r)
		}
	}()
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return fmt.Errorf("no docker engine: %w", err)
	}
	defer p.Close()
	if err := p.Health(ctx); err != nil {
		return fmt.Errorf("no docker engine: %w", err)
	}
	return nil
}

func missing(tb testing.TB, what string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true and no %s", what)
	}
	tb.Skipf("no %s", what)
}

// Namespace returns a namespace no other test uses.
func Namespace(tb testing.TB) broker.Namespace {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(tb.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return broker.Namespace("test." + name + "." + uuid.NewString()[:8])
}

// NewAMQP connects an AMQP broker in a namespace of its own; at cleanup it deletes what it
// declared and closes.
func NewAMQP(tb testing.TB, opts broker.Options) *amqpbroker.Broker {
	tb.Helper()
	return NewAMQPAt(tb, URL(tb), opts)
}

// NewAMQPAt is NewAMQP against a given URL (a Proxy's, say).
func NewAMQPAt(tb testing.TB, url string, opts broker.Options) *amqpbroker.Broker {
	tb.Helper()
	return NewAMQPWith(tb, amqpbroker.Config{URL: url, Options: opts})
}

// NewAMQPWith is NewAMQP with the adapter's configuration: the test RabbitMQ when it names no
// URL, a namespace of the test's own when it names none, and a reconnect backoff of at most
// a second when it sets none.
func NewAMQPWith(tb testing.TB, cfg amqpbroker.Config) *amqpbroker.Broker {
	tb.Helper()
	if cfg.URL == "" && len(cfg.URLs) == 0 {
		cfg.URL = URL(tb)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = Namespace(tb)
	}
	if cfg.ReconnectMax == 0 {
		cfg.ReconnectMax = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := amqpbroker.New(ctx, cfg)
	if err != nil {
		tb.Fatalf("connect test broker: %v", err)
	}
	tb.Cleanup(func() {
		if err := b.Teardown(); err != nil {
			tb.Logf("teardown test broker: %v", err)
		}
		_ = b.Close()
	})
	return b
}

// DeleteQueues deletes queues by name on the test broker, for queues a test's processes
// declared that no test broker knows about (a worker's own queues).
func DeleteQueues(tb testing.TB, names ...string) {
	tb.Helper()
	conn, err := amqp.Dial(URL(tb))
	if err != nil {
		tb.Logf("delete queues: %v", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Logf("delete queues: %v", err)
		return
	}
	defer ch.Close()
	for _, n := range names {
		if _, err := ch.QueueDelete(n, false, false, false); err != nil {
			tb.Logf("delete queue %s: %v", n, err)
			return
		}
	}
}
