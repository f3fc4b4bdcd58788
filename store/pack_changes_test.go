package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// Registering says what it changed, kind by kind, and registering the same pack again
// changes nothing, not even a component's updated time.
func TestPackRegisterReportsChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	limit := 1
	action := func(ref string, timeout int, params string) store.Action {
		return store.Action{Ref: ref, RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: timeout, Enabled: true, Parameters: json.RawMessage(params)}
	}
	first := store.PackRegistration{
		Pack:     store.Pack{Ref: "demo", Path: "/packs/demo", Version: "1"},
		Triggers: []store.Trigger{{Ref: "demo.hook"}},
		Actions:  []store.Action{action("demo.run", 5, `{"b": {"type": "string"}, "a": {"type": "integer"}}`), action("demo.other", 5, `{}`)},
		Sensors:  []store.Sensor{{Ref: "demo.watch", TriggerRefs: []string{"demo.hook"}, Enabled: true}},
		Rules:    []store.Rule{{Ref: "demo.on_hook", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true}},
		Policies: []store.Policy{{Ref: "demo.one", ActionRef: ptr("demo.run"), Enabled: true, ConcurrencyLimit: &limit}},
	}
	none := []string{}
	kind := func(added, updated, removed []string, unchanged int) store.ComponentChanges {
		return store.ComponentChanges{Added: added, Updated: updated, Removed: removed, Unchanged: unchanged}
	}

	r, err := s.PackRegister(ctx, first)
	require.NoError(t, err)
	require.Equal(t, "demo", r.Ref)
	require.Equal(t, store.PackChanges{
		Pack:           store.PackAdded,
		Actions:        kind([]string{"demo.other", "demo.run"}, none, none, 0),
		Triggers:       kind([]string{"demo.hook"}, none, none, 0),
		Sensors:        kind([]string{"demo.watch"}, none, none, 0),
		Rules:          kind([]string{"demo.on_hook"}, none, none, 0),
		Policies:       kind([]string{"demo.one"}, none, none, 0),
		RulesReenabled: none, RulesDisabled: none,
	}, r.Changes)
	before, err := s.ActionGetByRef(ctx, "demo.run")
	require.NoError(t, err)

	// The same pack again, its parameters' keys in another order (the same JSON).
	first.Actions[0].Parameters = json.RawMessage(`{"a": {"type": "integer"}, "b": {"type": "string"}}`)
	r, err = s.PackRegister(ctx, first)
	require.NoError(t, err)
	require.False(t, r.Changes.Changed(), "%+v", r.Changes)
	require.Equal(t, store.PackChanges{
		Pack:           store.PackUnchanged,
		Actions:        kind(none, none, none, 2),
		Triggers:       kind(none, none, none, 1),
		Sensors:        kind(none, none, none, 1),
		Rules:          kind(none, none, none, 1),
		Policies:       kind(none, none, none, 1),
		RulesReenabled: none, RulesDisabled: none,
	}, r.Changes)
	after, err := s.ActionGetByRef(ctx, "demo.run")
	require.NoError(t, err)
	require.Equal(t, before.Updated, after.Updated, "an unchanged action is not written")

	// An action changed, one added and one gone; the rule, disabled meanwhile, enabled again.
	_, err = s.RuleSetEnabled(ctx, "demo.on_hook", false)
	require.NoError(t, err)
	second := first
	second.Pack.Version = "2"
	second.Actions = []store.Action{action("demo.run", 9, `{}`), action("demo.new", 5, `{}`)}
	r, err = s.PackRegister(ctx, second)
	require.NoError(t, err)
	require.True(t, r.Changes.Changed())
	require.Equal(t, store.PackChanges{
		Pack:           store.PackUpdated,
		Actions:        kind([]string{"demo.new"}, []string{"demo.run"}, []string{"demo.other"}, 0),
		Triggers:       kind(none, none, none, 1),
		Sensors:        kind(none, none, none, 1),
		Rules:          kind(none, []string{"demo.on_hook"}, none, 0),
		Policies:       kind(none, none, none, 1),
		RulesReenabled: []string{"demo.on_hook"}, RulesDisabled: none,
	}, r.Changes)
	require.Equal(t, "2", r.Version)

	// Everything gone but the pack.
	r, err = s.PackRegister(ctx, store.PackRegistration{Pack: second.Pack})
	require.NoError(t, err)
	require.Equal(t, store.PackChanges{
		Pack:           store.PackUnchanged,
		Actions:        kind(none, none, []string{"demo.new", "demo.run"}, 0),
		Triggers:       kind(none, none, []string{"demo.hook"}, 0),
		Sensors:        kind(none, none, []string{"demo.watch"}, 0),
		Rules:          kind(none, none, []string{"demo.on_hook"}, 0),
		Policies:       kind(none, none, []string{"demo.one"}, 0),
		RulesReenabled: none, RulesDisabled: none,
	}, r.Changes)
}
