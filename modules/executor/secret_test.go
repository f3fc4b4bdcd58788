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

// An enforcement announced without its snapshot, as the rule matcher announces one whose
// action has secret parameters, is read back, and its execution records as secret both what
// the action declares now and what the enforcement recorded when the rule matched (the
// action may have changed in between). An execution refused for its parameters records them
// too, and its reason quotes no secret value. The values of them all are sealed in the row.
func TestExecutionRecordsSecretNames(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook", Enabled: true}},
		Actions: []store.Action{{Ref: "demo.deploy", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true,
			Parameters: json.RawMessage(`{"token": {"type": "string"}, "pin": {"type": "integer", "secret": true}}`)}},
		Rules: []store.Rule{{Ref: "demo.rule", TriggerRef: "demo.hook", ActionRef: "demo.deploy", Enabled: true}},
	})
	require.NoError(t, err)

	br := membroker.New(broker.Options{})
	defer br.Close()
	keys := storetest.Keyring(t)
	done := startExecutor(ctx, t, executor.Config{}, executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Sealer: keys})

	enforce := func(config string) int64 {
		t.Helper()
		ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
		require.NoError(t, err)
		enf, _, err := st.EnforcementInsert(ctx, store.EnforcementInsertParams{RuleRef: "demo.rule", TriggerRef: "demo.hook",
			EventID: ev.ID, Config: json.RawMessage(config), Secrets: []string{"token"}})
		require.NoError(t, err)
		require.NoError(t, broker.Send(ctx, br, broker.EnforcementCreated{EnforcementID: enf.ID, RuleRef: "demo.rule", EventID: ev.ID}))
		return enf.ID
	}
	execution := func(enf int64) store.Execution {
		t.Helper()
		var exec store.Execution
		require.Eventually(t, func() bool {
			list, _, err := st.ExecutionList(ctx, store.ExecutionFilter{RuleRef: "demo.rule"}, store.Page{Limit: 10})
			if err != nil {
				return false
			}
			for _, e := range list {
				if e.EnforcementID != nil && *e.EnforcementID == enf {
					exec = e
					return true
				}
			}
			return false
		}, 10*time.Second, 5*time.Millisecond)
		return exec
	}

	ok := execution(enforce(`{"token": "tok-123456", "pin": 4242}`))
	require.Equal(t, []string{"pin", "token"}, ok.Secrets)
	require.NotContains(t, string(ok.Parameters), "tok-123456", "the secret values are sealed in the row")
	require.NotContains(t, string(ok.Parameters), "4242")
	opened, _, err := keys.OpenJSON(ok.Parameters)
	require.NoError(t, err)
	require.JSONEq(t, `{"token": "tok-123456", "pin": 4242}`, string(opened))

	// The token was secret when the rule matched: the reason does not quote it either.
	refused := execution(enforce(`{"token": 99887766, "pin": 1}`))
	require.Equal(t, store.ExecutionFailed, refused.Status)
	require.Equal(t, []string{"pin", "token"}, refused.Secrets)
	require.NotNil(t, refused.Reason)
	require.Equal(t, `parameter "token": want string, got number`, *refused.Reason)
	require.NotContains(t, string(refused.Parameters), "99887766", "a refused execution's secrets are sealed too")

	cancel()
	require.NoError(t, <-done)
}
