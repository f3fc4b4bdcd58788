package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// Every path that creates an execution or an enforcement records the secret names it is
// given, in the batched statements too, each item its own; none given is an empty list.
func TestSecretNamesRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)

	e, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Secrets: []string{"token"}})
	require.NoError(t, err)
	require.Equal(t, []string{"token"}, e.Secrets)
	got, err := s.ExecutionGet(ctx, e.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"token"}, got.Secrets)
	e, err = s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
	require.NoError(t, err)
	require.Empty(t, e.Secrets)

	event := func() int64 {
		ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
		require.NoError(t, err)
		return ev.ID
	}
	enfs, err := s.EventEnforce(ctx, event(), []store.EnforcementMatch{{RuleRef: "demo.rule", Secrets: []string{"a", "b"}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, enfs[0].Secrets)
	batch, err := s.EventEnforceBatch(ctx, []store.EventEnforcement{
		{EventID: event(), Matches: []store.EnforcementMatch{{RuleRef: "demo.rule", Secrets: []string{"c"}}}},
		{EventID: event(), Matches: []store.EnforcementMatch{{RuleRef: "demo.rule"}}},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, batch[0][0].Secrets)
	require.Empty(t, batch[1][0].Secrets)
	read, err := s.EnforcementGetTarget(ctx, batch[0][0].ID)
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, read.Secrets, "the executor reads them back")

	one, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run",
		EnforcementID: &enfs[0].ID, Secrets: []string{"x"}})
	require.NoError(t, err)
	require.True(t, one.Created())
	require.Equal(t, []string{"x"}, one.Execution.Secrets)
	out, err := s.ExecutionCreate(ctx, []store.ExecutionCreateParams{
		{ActionRef: "demo.run", EnforcementID: &batch[0][0].ID, Secrets: []string{"y", "z"}},
		{ActionRef: "demo.run", EnforcementID: &batch[1][0].ID},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"y", "z"}, out[0].Execution.Secrets)
	require.Empty(t, out[1].Execution.Secrets)
	require.NotNil(t, out[1].Execution.Secrets, "an empty list, not null")
}

// A rule is read with its action's parameter schema, whichever statement reads it.
func TestRuleReadWithActionParameters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	schema := `{"token": {"type": "string", "secret": true}}`
	_, err := s.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook"}},
		Actions: []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true,
			Parameters: json.RawMessage(schema)}},
	})
	require.NoError(t, err)
	rule := store.Rule{Ref: "demo.rule", PackRef: "demo", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true}

	created, err := s.RuleCreate(ctx, rule)
	require.NoError(t, err)
	updated, err := s.RuleUpdate(ctx, rule)
	require.NoError(t, err)
	enabled, err := s.RuleSetEnabled(ctx, "demo.rule", true)
	require.NoError(t, err)
	got, err := s.RuleGetByRef(ctx, "demo.rule")
	require.NoError(t, err)
	listed, _, err := s.RuleList(ctx, "", store.Page{Limit: 10})
	require.NoError(t, err)
	byTrigger, err := s.RuleListEnabledByTrigger(ctx, "demo.hook")
	require.NoError(t, err)
	for _, r := range []store.Rule{created, updated, enabled, got, listed[0], byTrigger[0]} {
		require.JSONEq(t, schema, string(r.ActionParameters))
	}
}
