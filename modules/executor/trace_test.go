package executor_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/modules/executor"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// The execution an enforcement makes joins its trace, and the dispatch that hands it to the
// workers carries the trace in its header, on RabbitMQ.
func TestDispatchCarriesTheTrace(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook", Enabled: true}},
		Actions:  []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
		Rules:    []store.Rule{{Ref: "demo.rule", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true}},
	})
	require.NoError(t, err)
	_, err = st.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"noop"}, Concurrency: 1})
	require.NoError(t, err)
	ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: json.RawMessage(`{}`)})
	require.NoError(t, err)
	enfs, err := st.EventEnforce(ctx, ev.ID, []store.EnforcementMatch{{RuleRef: "demo.rule", Config: json.RawMessage(`{}`)}})
	require.NoError(t, err)
	require.Len(t, enfs, 1)

	br := brokertest.NewAMQP(t, broker.Options{})
	dispatched := make(chan broker.Message, 1)
	go func() {
		_ = br.Subscribe(ctx, broker.Subscription{Queue: broker.DispatchQueue("noop"), Prefetch: 1}, func(_ context.Context, m broker.Message) error {
			dispatched <- m
			return nil
		})
	}()
	done := startExecutor(ctx, t, executor.Config{WorkerAliveWithin: time.Minute},
		executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Sealer: storetest.Keyring(t)})
	e := enfs[0]
	require.NoError(t, broker.Send(ctx, br, broker.InTrace(e.Trace(),
		broker.EnforcementCreated{EnforcementID: e.ID, RuleRef: e.RuleRef, EventID: ev.ID, ActionRef: "demo.run", Config: e.Config})))

	select {
	case m := <-dispatched:
		require.Equal(t, ev.Trace(), m.Headers.TraceID, "the dispatch carries the event's trace")
		p, err := broker.Decode[broker.ExecutionDispatched](m)
		require.NoError(t, err)
		exec, err := st.ExecutionGet(ctx, p.ExecutionID)
		require.NoError(t, err)
		require.Equal(t, ev.Trace(), exec.Trace(), "the execution joins it")
	case <-time.After(30 * time.Second):
		t.Fatal("nothing dispatched")
	}
	cancel()
	require.NoError(t, <-done)
}
