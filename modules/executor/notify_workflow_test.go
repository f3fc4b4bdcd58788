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

// The executor's notifications of the execution of a workflow's task carry the workflow's id,
// so that a live stream of the workflow shows it.
func TestTaskNotificationsCarryTheirWorkflow(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := flowStore(ctx, t)
	w := storetest.FillWorkflow(t, st, storetest.Workflow{ActionRef: "demo.flow",
		Tasks: []storetest.WorkflowTask{{Name: "step", Children: []storetest.WorkflowChild{{ActionRef: "demo.step"}}}}})
	step := w.Children[0][0]

	br, heard, done := startHeardExecutor(ctx, t, st)

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

// A workflow's own ending is notified, and so is a task's child that its cancel ends before it
// ran: a page that follows the workflow on the stream hears that it ended, rather than
// depending on a read after its last task's ending that may come before the executor took that
// ending in (the workflow page then showed it running for good).
func TestWorkflowEndingsAreNotified(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := flowStore(ctx, t)
	def := `{"start": ["step"], "tasks": [{"name": "step", "action": "demo.step"}]}`
	// Its one task done: the next pass completes it.
	done := storetest.FillWorkflow(t, st, storetest.Workflow{ActionRef: "demo.flow", Definition: def,
		Tasks: []storetest.WorkflowTask{{Name: "step", Status: store.TaskSucceeded,
			Children: []storetest.WorkflowChild{{ActionRef: "demo.step", Status: store.ExecutionCompleted}}}}})
	// Cancelled while its task waits for its turn: the task's child and then it end cancelled.
	cancelled := storetest.FillWorkflow(t, st, storetest.Workflow{ActionRef: "demo.flow", Definition: def, Status: store.ExecutionCanceling,
		Tasks: []storetest.WorkflowTask{{Name: "step", Children: []storetest.WorkflowChild{{ActionRef: "demo.step"}}}}})

	br, heard, stopped := startHeardExecutor(ctx, t, st)

	// As the API asks after a resume or a cancel.
	for _, id := range []int64{done.ID, cancelled.ID} {
		require.NoError(t, broker.Send(ctx, br, broker.ExecutionRequested{ExecutionID: id, ActionRef: "demo.flow"}))
	}
	for id, status := range map[int64]string{done.ID: store.ExecutionCompleted, cancelled.ID: store.ExecutionCancelled} {
		require.Eventually(t, func() bool {
			e, err := st.ExecutionGet(ctx, id)
			return err == nil && e.Status == status
		}, 10*time.Second, 5*time.Millisecond, "workflow %d ends %s", id, status)
	}
	heard.wait(t, done.ID, "completed")
	heard.wait(t, cancelled.Children[0][0], "cancelled")
	heard.wait(t, cancelled.ID, "cancelled")
	heard.mu.Lock()
	for _, n := range heard.got {
		if n.ID == cancelled.Children[0][0] {
			require.Equal(t, cancelled.ID, *n.Workflow, "the child's ending carries its workflow")
		}
	}
	heard.mu.Unlock()
	cancel()
	require.NoError(t, <-stopped)
}

// flowStore is a store with the workflow demo.flow and the action demo.step its tasks run.
func flowStore(ctx context.Context, t *testing.T) *store.Store {
	t.Helper()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack: store.Pack{Ref: "demo"},
		Actions: []store.Action{storetest.WorkflowAction("demo.flow", ""),
			{Ref: "demo.step", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
	})
	require.NoError(t, err)
	return st
}

// startHeardExecutor starts an executor on st and an in-memory broker, its notifications kept.
func startHeardExecutor(ctx context.Context, t *testing.T, st *store.Store) (broker.Broker, *notes, <-chan error) {
	t.Helper()
	br := membroker.New(broker.Options{})
	t.Cleanup(func() { br.Close() })
	heard := &notes{}
	done := startExecutor(ctx, t, executor.Config{}, executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Notifier: heard, Sealer: storetest.Keyring(t)})
	return br, heard, done
}
