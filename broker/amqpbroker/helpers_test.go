package amqpbroker_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
)

// subscribeEvents consumes the rule matcher's queue on b until the test ends, and checks then
// that the subscription returned nil.
func subscribeEvents(t *testing.T, b broker.Subscriber, prefetch int) <-chan broker.Message {
	t.Helper()
	got := make(chan broker.Message, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- b.Subscribe(ctx, broker.Subscription{Queue: broker.QueueRuleEvents, Prefetch: prefetch}, func(_ context.Context, m broker.Message) error {
			got <- m
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return got
}

func hostPort(tb testing.TB, raw string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("parse %s: %v", raw, err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5672"
	}
	return u.Host
}

func proxiedURL(tb testing.TB, raw, addr string) string {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("parse %s: %v", raw, err)
	}
	u.Host = addr
	return u.String()
}
