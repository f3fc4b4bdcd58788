package amqpbroker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/amqpbroker"
	"github.com/attune-go/attune/broker/brokertest"
)

// With several nodes, the first that answers is used: a dead one ahead of it costs a failed
// dial, not the start.
func TestConnectsToTheFirstNodeThatAnswers(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t)
	b := brokertest.NewAMQPWith(t, amqpbroker.Config{URL: "amqp://guest:guest@127.0.0.1:1/", URLs: []string{url}})
	require.Equal(t, redacted(url), b.Addr())
}

// When the node a process is connected to goes away, it reconnects to the next one, where
// its subscriptions resume and its publishes go on, without waiting for the lost node.
func TestReconnectsToTheNextNode(t *testing.T) {
	t.Parallel()
	url := brokertest.URL(t)
	// Two proxies to the one test RabbitMQ stand for two nodes of a cluster: they share
	// their queues.
	first, firstURL := brokertest.NewURLProxy(t, url)
	_, secondURL := brokertest.NewURLProxy(t, url)
	b := brokertest.NewAMQPWith(t, amqpbroker.Config{URL: firstURL, URLs: []string{secondURL},
		Options: broker.Options{RetryBackoff: 5 * time.Millisecond}, QueueType: amqpbroker.QueueQuorum})
	require.Equal(t, redacted(firstURL), b.Addr())

	got := subscribeEvents(t, b, 2)
	before := mustMessage(t, 1)
	require.NoError(t, b.Publish(context.Background(), before))
	require.Equal(t, before.ID, receiveMessage(t, got).ID)

	first.Stop() // for good: the process must not wait for it
	require.Eventually(t, func() bool { return b.Addr() == redacted(secondURL) && b.Ping(context.Background()) == nil },
		30*time.Second, 10*time.Millisecond, "no reconnect to the second node")
	after := mustMessage(t, 2)
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	require.NoError(t, b.Publish(pctx, after))
	for {
		m := receiveMessage(t, got)
		if m.ID == after.ID {
			return
		}
		// The first message's ack may have been cut off with the connection.
		require.Equal(t, before.ID, m.ID, "unexpected message after the reconnect")
	}
}

func receiveMessage(t *testing.T, got <-chan broker.Message) broker.Message {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no message within 30s")
		return broker.Message{}
	}
}

func redacted(url string) string {
	user, rest, ok := strings.Cut(strings.TrimPrefix(url, "amqp://"), "@")
	if !ok {
		return url
	}
	name, _, _ := strings.Cut(user, ":")
	return "amqp://" + name + ":xxxxx@" + rest
}
