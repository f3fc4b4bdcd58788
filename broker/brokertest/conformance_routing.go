package brokertest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
)

// testSelectorRouting: a selected dispatch waits in its selector's queue alone, not in the
// runner's pool nor another selector's; and the news of a selector reaches every worker's own
// queue, which also keeps its targeted cancels to itself.
func testSelectorRouting(t *testing.T, newBroker Factory) {
	b := newBroker(t, fastOptions())
	ctx := context.Background()
	pool, eu, us := broker.DispatchQueue("shell"), broker.SelectorDispatchQueue("shell", "zone=eu"), broker.SelectorDispatchQueue("shell", "zone=us")
	workerA, workerB := broker.WorkerCancelQueue("routed-a"), broker.WorkerCancelQueue("routed-b")
	for _, q := range []broker.Queue{pool, eu, us, workerA, workerB} {
		require.NoError(t, b.Declare(ctx, q))
	}
	var msgs []broker.Message
	for _, p := range []broker.Payload{
		broker.ExecutionDispatched{ExecutionID: 1, Action: broker.ActionSnapshot{RunnerType: "shell"}, WorkerSelector: "zone=eu"},
		broker.WorkerSelectorAdded{Runner: "shell", WorkerSelector: "zone=eu"},
		broker.ExecutionCancelRequested{ExecutionID: 2, Worker: "routed-a"},
	} {
		m, err := broker.NewMessage(p)
		require.NoError(t, err)
		msgs = append(msgs, m)
	}
	publish(t, b, msgs...)
	want := []struct {
		q broker.Queue
		n int
	}{{pool, 0}, {eu, 1}, {us, 0}, {workerA, 2}, {workerB, 1}}
	require.Eventually(t, func() bool {
		for _, w := range want {
			if got, err := b.Depth(ctx, w.q); err != nil || got != w.n {
				return false
			}
		}
		return true
	}, wait, 10*time.Millisecond, "messages wait where their routes lead: %v", want)
}
