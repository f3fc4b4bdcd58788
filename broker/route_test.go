package broker_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
)

// Every message type must reach some queue: the bug this guards against is a type published
// under a key that no consumer's queue is bound to, where it silently disappears.
func TestEveryTypeIsConsumed(t *testing.T) {
	t.Parallel()
	queues := append([]broker.Queue{}, broker.SharedQueues...)
	queues = append(queues, broker.DispatchQueue("shell"), broker.WorkerCancelQueue("w"), broker.StreamQueue("r"))
	bound := make(map[broker.Route]bool)
	for _, q := range queues {
		bs, err := q.Bindings()
		require.NoError(t, err)
		for _, b := range bs {
			bound[broker.Route(b)] = true
		}
	}
	for _, typ := range broker.Types() {
		target := ""
		switch typ {
		case broker.TypeExecutionDispatched:
			target = "shell"
		case broker.TypeExecutionCancelRequested:
			target = "w"
		}
		r, err := broker.RouteOf(typ, target)
		require.NoError(t, err)
		require.True(t, bound[r], "%s is published to %s/%s where no queue is bound", typ, r.Exchange, r.RoutingKey)
	}
}

func TestRouteOfChecksTargets(t *testing.T) {
	t.Parallel()
	_, err := broker.RouteOf(broker.TypeExecutionDispatched, "")
	require.ErrorContains(t, err, "target is required")
	_, err = broker.RouteOf(broker.TypeExecutionDispatched, "a.b")
	require.ErrorContains(t, err, "one routing-key word")
	_, err = broker.RouteOf(broker.TypeEventCreated, "w1")
	require.ErrorContains(t, err, "takes no target")
	_, err = broker.RouteOf("Bogus", "")
	require.ErrorContains(t, err, "unknown message type")
	r, err := broker.RouteOf(broker.TypeExecutionDispatched, "w1")
	require.NoError(t, err)
	require.Equal(t, broker.Route{Exchange: broker.ExchangeExecutions, RoutingKey: "execution.dispatch.w1"}, r)
}

func TestUnmarshalRejectsForeignBodies(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"not json":      `{"message_id":`,
		"wrong version": `{"message_id":"1","message_type":"EventCreated","version":"9"}`,
		"unknown type":  `{"message_id":"1","message_type":"Nope","version":"1.0"}`,
	} {
		_, err := broker.Unmarshal([]byte(body))
		require.Error(t, err, name)
		require.True(t, broker.IsPermanent(err), "%s: an unreadable body can never be handled, so it must dead-letter", name)
	}
}

func TestDecodeChecksType(t *testing.T) {
	t.Parallel()
	m, err := broker.NewMessage(broker.EventCreated{EventID: 1})
	require.NoError(t, err)
	_, err = broker.Decode[broker.ExecutionRequested](m)
	require.True(t, broker.IsPermanent(err))
	p, err := broker.Decode[broker.EventCreated](m)
	require.NoError(t, err)
	require.Equal(t, int64(1), p.EventID)
}

// A selected dispatch goes to its selector's queue alone: not to the runner's pool, nor to
// another selector's.
func TestSelectorDispatchQueue(t *testing.T) {
	t.Parallel()
	eu := broker.SelectorDispatchQueue("shell", "zone=eu")
	require.Equal(t, eu, broker.SelectorDispatchQueue("shell", "zone=eu"))
	require.NotEqual(t, eu.Name, broker.SelectorDispatchQueue("shell", "zone=us").Name)
	require.NotEqual(t, eu.Name, broker.SelectorDispatchQueue("http", "zone=eu").Name)
	m, err := broker.NewMessage(broker.ExecutionDispatched{Action: broker.ActionSnapshot{RunnerType: "shell"}, WorkerSelector: "zone=eu"})
	require.NoError(t, err)
	r, err := m.Route()
	require.NoError(t, err)
	bound := func(q broker.Queue) bool {
		bs, err := q.Bindings()
		require.NoError(t, err)
		return bs[0] == broker.Binding(r)
	}
	require.True(t, bound(eu))
	require.False(t, bound(broker.DispatchQueue("shell")))
	require.False(t, bound(broker.SelectorDispatchQueue("shell", "zone=us")))
}

// A queue that names one process or one selector is counted under its kind, so that
// restarts do not add series.
func TestQueueKind(t *testing.T) {
	for name, kind := range map[string]string{
		broker.QueueRuleEvents.Name:                           "attune.rules.events",
		broker.DispatchQueue("shell").Name:                    "attune.workers.shell.dispatch",
		broker.SelectorDispatchQueue("shell", "zone=eu").Name: "attune.workers.shell-sel.dispatch",
		broker.WorkerCancelQueue("host-123").Name:             "attune.worker.cancel",
		broker.StreamQueue("host-1-abcd").Name:                "attune.stream",
		broker.DeadLetterQueue.Name:                           "attune.dead_letters",
	} {
		require.Equal(t, kind, broker.QueueKind(name), name)
	}
}
