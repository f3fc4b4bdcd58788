package executor_test

import (
	"context"
	"fmt"
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

// An execution that no live worker can run waits a while for one (workers may be starting)
// and then fails with a reason that says so, rather than sit requested for ever.
func TestNoWorkerFailsWithReason(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:    store.Pack{Ref: "demo"},
		Actions: []store.Action{{Ref: "demo.call", RunnerType: "http", OutputFormat: "json", TimeoutSeconds: 5, Enabled: true}},
	})
	require.NoError(t, err)
	// A live worker that cannot run http does not count.
	_, err = st.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "shell-only", Runners: []string{"shell"}, Concurrency: 1})
	require.NoError(t, err)
	exec, err := st.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.call", Admitted: true})
	require.NoError(t, err)

	br := membroker.New(broker.Options{})
	defer br.Close()
	heard := &notes{}
	done := startExecutor(ctx, t, executor.Config{NoWorkerTimeout: 200 * time.Millisecond, WorkerAliveWithin: time.Second, SweepInterval: 50 * time.Millisecond},
		executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Notifier: heard, Sealer: storetest.Keyring(t)})
	require.NoError(t, broker.Send(ctx, br, broker.ExecutionRequested{ExecutionID: exec.ID, ActionRef: exec.ActionRef}))

	require.Eventually(t, func() bool {
		e, err := st.ExecutionGet(ctx, exec.ID)
		require.NoError(t, err)
		return e.Status == store.ExecutionFailed
	}, 30*time.Second, 20*time.Millisecond)
	e, err := st.ExecutionGet(ctx, exec.ID)
	require.NoError(t, err)
	require.Equal(t, `no live worker can run runner "http"`, *e.Reason)
	// Scheduled first, or not, as the request and the sweep raced; failed last, once.
	require.Eventually(t, func() bool {
		got := fmt.Sprint(heard.of(exec.ID))
		return got == "[failed]" || got == "[requested>scheduled failed]"
	}, 10*time.Second, 5*time.Millisecond, "notified %v", heard.of(exec.ID))
	cancel()
	require.NoError(t, <-done)
}
