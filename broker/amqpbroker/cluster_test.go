package amqpbroker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/amqpbroker"
	"github.com/attune-go/attune/broker/brokertest"
)

// On a three-node cluster with quorum queues, the node the broker is connected to, which
// leads every queue it declared, crashes: the broker moves to another node, where its
// publishes are confirmed once the queues have a new leader and its subscription resumes.
// (On RabbitMQ 3.10 a channel that began publishing to a quorum queue during the election
// nacked every later publish to it: without a new channel after a nack, no publish got
// through again.)
func TestSurvivesANodeCrash(t *testing.T) {
	c := brokertest.NewCluster(t, 3)
	urls := c.URLs()
	b := brokertest.NewAMQPWith(t, amqpbroker.Config{URL: urls[0], URLs: urls[1:], QueueType: amqpbroker.QueueQuorum,
		Options: broker.Options{RetryBackoff: 5 * time.Millisecond}})
	got := subscribeEvents(t, b, 4)
	publish := func(from, to int64) map[string]bool {
		sent := map[string]bool{}
		for id := from; id < to; id++ {
			m := mustMessage(t, id)
			pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
			start := time.Now()
			require.NoError(t, b.Publish(pctx, m), "publish %d", id)
			pcancel()
			t.Logf("publish %d confirmed in %s through %s", id, time.Since(start).Round(time.Millisecond), b.Addr())
			sent[m.ID] = true
		}
		return sent
	}
	awaitAll := func(sent map[string]bool) {
		for len(sent) > 0 {
			delete(sent, receiveMessage(t, got).ID) // a redelivery of an earlier one is allowed
		}
	}
	awaitAll(publish(0, 5))
	c.Nodes[0].Kill()
	awaitAll(publish(5, 15))
	require.NotEqual(t, c.Nodes[0].Addr(), b.Addr())
}
