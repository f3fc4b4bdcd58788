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

// An ask whose parameters cannot make an inquiry fails at once, the reason naming the
// parameter, and makes none: a timeout too long for a duration included, which would
// otherwise wrap around into the past and time the inquiry out at once.
func TestAskWithBadParametersFails(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:    store.Pack{Ref: "demo"},
		Actions: []store.Action{{Ref: "demo.ask", RunnerType: "inquiry", OutputFormat: "json", TimeoutSeconds: 5, Enabled: true}},
	})
	require.NoError(t, err)
	br := membroker.New(broker.Options{})
	defer br.Close()
	done := startExecutor(ctx, t, executor.Config{}, executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Sealer: storetest.Keyring(t)})

	for params, reason := range map[string]string{
		`{"timeout_seconds": 60}`:                                  "prompt: required",
		`{"prompt": "go?", "timeout_seconds": 0}`:                  "timeout_seconds: want more than 0",
		`{"prompt": "go?", "timeout_seconds": 1000000000000}`:      "timeout_seconds: want at most",
		`{"prompt": "go?", "roles": ["root"]}`:                     `roles[0]: unknown role "root"`,
		`{"prompt": "go?", "schema": {"type": "nope"}}`:            "not a valid JSON Schema: schema.type",
		`{"prompt": "go?", "timeout_seconds": 60, "schema": "no"}`: "schema",
	} {
		c, err := st.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.ask", Parameters: json.RawMessage(params)})
		require.NoError(t, err)
		require.NoError(t, broker.Send(ctx, br, broker.ExecutionRequested{ExecutionID: c.Execution.ID, ActionRef: "demo.ask"}))
		var exec store.Execution
		require.Eventually(t, func() bool {
			exec, err = st.ExecutionGet(ctx, c.Execution.ID)
			return err == nil && store.IsTerminal(exec.Status)
		}, 10*time.Second, 10*time.Millisecond, params)
		require.Equal(t, store.ExecutionFailed, exec.Status, params)
		require.Contains(t, *exec.Reason, "cannot ask: "+reason, params)
		_, err = st.InquiryOfExecution(ctx, c.Execution.ID)
		require.ErrorIs(t, err, store.ErrNotFound, params)
	}
	cancel()
	require.NoError(t, <-done)
}
