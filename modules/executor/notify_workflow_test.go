package executor_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/executor"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// The executor's notifications of the execution of a workflow's task carry the workflow's id,
// so that a live stream of the workflow shows it.
func TestTaskNotificationsCarryTheirWorkflow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack: store.Pack{Ref: "demo"},
		Actions: []store.Action{storetest.WorkflowAction("demo.flow", ""),
			{Ref: "demo.step", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
	})
	require.NoError(t, err)
	w := storetest.FillWorkflow(t, st, storetest.Workflow{ActionRef: "demo.flow",
		Tasks: []storetest.WorkflowTask{{Name: "step", Children: []storetest.WorkflowChild{{ActionRef: "demo.step"}}}}})
	step := w.Children[0][0]

	br := membroker.New(broker.Options{})
	defer br.Close()
	heard := &notes{}
	done := startExecutor(ctx, t, executor.Config{}, executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Notifier: heard, Sealer: storetest.Keyring(t)})

	require.NoError(t, broker.Send(ctx, br, broker.ExecutionRequested{ExecutionID: step, ActionRef: "demo.step"}))
	heard.wait(t, step, "requested>scheduled")
	heard.mu.Lock()
	for _, n := range heard.got {
		if n.ID == step {
			require.NotNil(t, n.Workflow)
			require.Equal(t, w.ID, *n.Workflow)
		}
	}
	heard.mu.Unlock()
	cancel()
	require.NoError(t, <-done)
}
