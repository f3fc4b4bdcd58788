package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// An event starts a trace; its enforcements, the executions they create, their children and
// their retries carry it on, whether or not a policy decides their admission (the two paths
// of attune.execution_create); an execution requested by hand starts a trace of its own.
func TestTraceCarriedFromEventToExecutions(t *testing.T) {
	t.Parallel()
	for name, limited := range map[string]bool{"no policy": false, "under a policy": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := storetest.NewStore(t)
			reg := store.PackRegistration{
				Pack:     store.Pack{Ref: "demo", Path: "/packs/demo"},
				Triggers: []store.Trigger{{Ref: "demo.hook"}},
				Actions: []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true,
					Retry: &store.Retry{MaxAttempts: 2, On: []string{"failed"}}}},
				Rules: []store.Rule{
					{Ref: "demo.rule", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true},
					{Ref: "demo.bad", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true},
				},
			}
			if limited {
				reg.Policies = []store.Policy{{Ref: "demo.limit", ActionRef: ptr("demo.run"), Enabled: true, ConcurrencyLimit: ptr(100)}}
			}
			_, err := s.PackRegister(ctx, reg)
			require.NoError(t, err)

			ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: json.RawMessage(`{}`), Source: "test"})
			require.NoError(t, err)
			trace := ev.Trace()
			_, err = uuid.Parse(trace)
			require.NoError(t, err, "every event starts a trace")

			created, err := s.EventEnforce(ctx, ev.ID, []store.EnforcementMatch{{RuleRef: "demo.rule"}, {RuleRef: "demo.bad", Reason: "evaluate conditions: no"}})
			require.NoError(t, err)
			require.Len(t, created, 1)
			require.Equal(t, trace, created[0].Trace(), "an enforcement carries its event's trace")

			// No trace given: the enforcement's.
			exec, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", EnforcementID: &created[0].ID,
				Parameters: json.RawMessage(`{}`)})
			require.NoError(t, err)
			require.Equal(t, trace, exec.Execution.Trace())
			// No trace given: the parent's (a workflow's task).
			child, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", ParentID: &exec.Execution.ID,
				Parameters: json.RawMessage(`{}`)})
			require.NoError(t, err)
			require.Equal(t, trace, child.Execution.Trace())
			// A trace given wins.
			own := uuid.NewString()
			given, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", ParentID: &exec.Execution.ID,
				Parameters: json.RawMessage(`{}`), TraceID: own})
			require.NoError(t, err)
			require.Equal(t, own, given.Execution.Trace())
			// Neither: a trace of its own.
			manual, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", Parameters: json.RawMessage(`{}`)})
			require.NoError(t, err)
			require.NotEmpty(t, manual.Execution.Trace())
			require.NotEqual(t, trace, manual.Execution.Trace())

			// The next attempt of a failed execution is in its trace.
			w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"noop"}, Concurrency: 4})
			require.NoError(t, err)
			_, ok, err := s.ExecutionClaim(ctx, child.Execution.ID, w.ID)
			require.NoError(t, err)
			require.True(t, ok)
			_, ok, err = s.ExecutionTransition(ctx, store.ExecutionTransition{ID: child.Execution.ID, From: []string{store.ExecutionRunning},
				To: store.ExecutionFailed})
			require.NoError(t, err)
			require.True(t, ok)
			_, err = s.Pool().Exec(ctx, `UPDATE attune.execution SET retry_at = now() WHERE retry_at IS NOT NULL`)
			require.NoError(t, err)
			attempts, err := s.ExecutionRetryDue(ctx, 10)
			require.NoError(t, err)
			require.Len(t, attempts, 1)
			require.Equal(t, trace, attempts[0].Execution.Trace())

			// Work of an enforcement older than traces joins none, rather than a new one each.
			ev2, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: json.RawMessage(`{}`)})
			require.NoError(t, err)
			old, err := s.EventEnforce(ctx, ev2.ID, []store.EnforcementMatch{{RuleRef: "demo.rule"}})
			require.NoError(t, err)
			_, err = s.Pool().Exec(ctx, `UPDATE attune.enforcement SET trace_id = NULL WHERE id = $1`, old[0].ID)
			require.NoError(t, err)
			untraced, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", EnforcementID: &old[0].ID,
				Parameters: json.RawMessage(`{}`)})
			require.NoError(t, err)
			require.Nil(t, untraced.Execution.TraceID)

			got, err := s.TraceGet(ctx, trace)
			require.NoError(t, err)
			require.Len(t, got.Events, 1)
			require.Equal(t, "test", got.Events[0].Source)
			require.Len(t, got.Enforcements, 2, "the refused match is in the trace")
			require.Equal(t, "demo.bad", got.Enforcements[1].RuleRef)
			require.Equal(t, "evaluate conditions: no", *got.Enforcements[1].Reason)
			ids := make([]int64, len(got.Executions))
			for i, e := range got.Executions {
				ids[i] = e.ID
			}
			require.Equal(t, []int64{exec.Execution.ID, child.Execution.ID, attempts[0].Execution.ID}, ids)
			require.False(t, got.Truncated)

			_, err = s.TraceGet(ctx, uuid.NewString())
			require.ErrorIs(t, err, store.ErrNotFound)
		})
	}
}
