package executor_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/executor"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// A selected execution goes to its selector's queue, never to the runner's pool; every worker
// hears of the selector first; and with no live worker with the labels (one without them does
// not count) it waits there, then fails with the reason naming them.
func TestSelectedExecutionWaitsInItsQueueThenFails(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack: store.Pack{Ref: "demo"},
		Actions: []store.Action{{Ref: "demo.eu", RunnerType: "shell", EntryPoint: "run.sh", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true,
			WorkerSelector: store.Labels{"zone": "eu", "gpu": "true"}}},
	})
	require.NoError(t, err)
	_, err = st.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "us", Runners: []string{"shell"}, Labels: store.Labels{"zone": "us"}, Concurrency: 1})
	require.NoError(t, err)
	exec, err := st.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.eu", Admitted: true, Status: store.ExecutionScheduled})
	require.NoError(t, err)

	br := membroker.New(broker.Options{})
	defer br.Close()
	control := broker.WorkerCancelQueue("us")
	require.NoError(t, br.Declare(ctx, control))
	done := startExecutor(ctx, t, executor.Config{WorkerWaitTimeout: 300 * time.Millisecond, WorkerAliveWithin: time.Second, SweepInterval: 50 * time.Millisecond},
		executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Sealer: storetest.Keyring(t)})
	require.NoError(t, broker.Send(ctx, br, broker.ExecutionRequested{ExecutionID: exec.ID, ActionRef: exec.ActionRef}))

	selected := broker.SelectorDispatchQueue("shell", "gpu=true,zone=eu")
	require.Eventually(t, func() bool {
		n, err := br.Depth(ctx, selected)
		require.NoError(t, err)
		return n == 1
	}, 10*time.Second, 10*time.Millisecond, "the dispatch waits in the selector's queue")
	pool, err := br.Depth(ctx, broker.DispatchQueue("shell"))
	require.NoError(t, err)
	require.Zero(t, pool, "the runner's pool never sees it")
	require.Regexp(t, `^attune\.workers\.shell-sel-[0-9a-f]{16}\.dispatch$`, selected.Name)

	news := make(chan broker.WorkerSelectorAdded, 1)
	sctx, stop := context.WithCancel(ctx)
	go func() {
		_ = br.Subscribe(sctx, broker.Subscription{Queue: control, Prefetch: 1}, func(_ context.Context, msg broker.Message) error {
			p, err := broker.Decode[broker.WorkerSelectorAdded](msg)
			if err == nil {
				news <- p
			}
			return err
		})
	}()
	select {
	case p := <-news:
		require.Equal(t, broker.WorkerSelectorAdded{Runner: "shell", WorkerSelector: "gpu=true,zone=eu"}, p)
	case <-time.After(10 * time.Second):
		t.Fatal("the worker was not told of the selector")
	}
	stop()

	require.Eventually(t, func() bool {
		e, err := st.ExecutionGet(ctx, exec.ID)
		require.NoError(t, err)
		return e.Status == store.ExecutionFailed
	}, 30*time.Second, 20*time.Millisecond)
	e, err := st.ExecutionGet(ctx, exec.ID)
	require.NoError(t, err)
	require.Equal(t, `no live worker has labels gpu=true,zone=eu and runner "shell"; waited 300ms`, *e.Reason)
	cancel()
	require.NoError(t, <-done)
}
