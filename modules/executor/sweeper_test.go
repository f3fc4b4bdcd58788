package executor_test

import (
	"context"
	"encoding/json"
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

var _ executor.Store = (*store.Store)(nil)

// A crash between a commit and its publish leaves a row no message announces. The sweeper
// finds it and publishes the message, so the work is late, not lost (an event never matched,
// an execution never admitted); and an execution held by a worker that stopped is abandoned.
func TestSweeperRepairsLostMessages(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook"}},
		Actions:  []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
	})
	require.NoError(t, err)
	br := membroker.New(broker.Options{})
	defer br.Close()

	// An event whose event.created was never published, and a running execution whose
	// worker has gone.
	ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: json.RawMessage(`{}`)})
	require.NoError(t, err)
	w, err := st.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "gone", Runners: []string{"noop"}, Concurrency: 1})
	require.NoError(t, err)
	exec, err := st.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	_, ok, err := st.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"requested"}, To: "running", Worker: &w.ID})
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, st.WorkerSetInactive(ctx, "gone"))
	// An execution an older version made undecided, whose execution.requested was never
	// published: nobody has admitted it.
	lost, err := st.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
	require.NoError(t, err)

	events := make(chan broker.Message, 4)
	go func() {
		_ = br.Subscribe(ctx, broker.Subscription{Queue: broker.QueueRuleEvents}, func(_ context.Context, m broker.Message) error {
			events <- m
			return nil
		})
	}()
	heard := &notes{}
	done := startExecutor(ctx, t, executor.Config{SweepInterval: 50 * time.Millisecond, SweepAfter: time.Millisecond},
		executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Notifier: heard, Sealer: storetest.Keyring(t)})

	select {
	case msg := <-events:
		p, err := broker.Decode[broker.EventCreated](msg)
		require.NoError(t, err)
		require.Equal(t, ev.ID, p.EventID)
	case <-time.After(30 * time.Second):
		t.Fatal("the sweeper did not republish the event")
	}
	require.Eventually(t, func() bool {
		e, err := st.ExecutionGet(ctx, exec.ID)
		require.NoError(t, err)
		return e.Status == store.ExecutionAbandoned
	}, 30*time.Second, 20*time.Millisecond, "the orphaned execution was not abandoned")
	require.Eventually(t, func() bool {
		e, err := st.ExecutionGet(ctx, lost.ID)
		require.NoError(t, err)
		return e.Status == store.ExecutionScheduled && e.Admitted
	}, 30*time.Second, 20*time.Millisecond, "the unannounced request was never admitted and dispatched")
	heard.wait(t, exec.ID, "abandoned")
	heard.wait(t, lost.ID, "requested>scheduled")

	cancel()
	require.NoError(t, <-done)
}
