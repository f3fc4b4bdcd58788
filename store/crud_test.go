package store_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

func noopAction(ref, pack string) store.Action {
	return store.Action{Ref: ref, PackRef: pack, RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}
}

func requireInUse(t *testing.T, err error, what string, by ...string) {
	t.Helper()
	require.ErrorIs(t, err, store.ErrConflict)
	var inUse *store.InUseError
	require.ErrorAs(t, err, &inUse)
	require.Equal(t, what, inUse.What)
	require.Equal(t, by, inUse.By)
}

func TestActionWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)

	created, err := s.ActionCreate(ctx, noopAction("demo.extra", "demo"))
	require.NoError(t, err)
	require.Equal(t, "demo", created.PackRef)
	require.Equal(t, "/packs/demo", created.PackPath, "scripts run from the pack's directory")
	require.JSONEq(t, `{}`, string(created.Parameters))

	_, err = s.ActionCreate(ctx, noopAction("demo.extra", "demo"))
	require.ErrorIs(t, err, store.ErrConflict, "a ref in use")
	_, err = s.ActionCreate(ctx, noopAction("nope.extra", "nope"))
	require.ErrorIs(t, err, store.ErrNotFound, "no such pack")

	changed := noopAction("demo.extra", "other")
	changed.Description, changed.Enabled, changed.Parameters = "changed", false, json.RawMessage(`{"n": {"type": "integer"}}`)
	updated, err := s.ActionUpdate(ctx, changed)
	require.NoError(t, err)
	require.Equal(t, "changed", updated.Description)
	require.False(t, updated.Enabled)
	require.Equal(t, "demo", updated.PackRef, "an update does not move an action")
	require.True(t, updated.Updated.After(created.Updated) || updated.Updated.Equal(created.Updated))
	_, err = s.ActionUpdate(ctx, noopAction("demo.gone", "demo"))
	require.ErrorIs(t, err, store.ErrNotFound)

	// Rules keep an action, enabled or not, and are named.
	_, err = s.RuleCreate(ctx, store.Rule{Ref: "demo.off", PackRef: "demo", TriggerRef: "demo.hook", ActionRef: "demo.run"})
	require.NoError(t, err)
	_, err = s.ActionDelete(ctx, "demo.run")
	requireInUse(t, err, "action demo.run", "rule demo.off (disabled)", "rule demo.rule")
	require.Contains(t, err.Error(), "action demo.run is still used by rule demo.off (disabled), rule demo.rule")

	// Policies naming the action go with it; its executions stay.
	_, err = s.PolicyCreate(ctx, store.Policy{Ref: "ops.extra_limit", ActionRef: ptr("demo.extra"), Enabled: true, ConcurrencyLimit: ptr(1)})
	require.NoError(t, err)
	_, err = s.PolicyCreate(ctx, store.Policy{Ref: "ops.pack_limit", PackRef: ptr("demo"), Enabled: true, ConcurrencyLimit: ptr(1)})
	require.NoError(t, err)
	exec, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.extra"})
	require.NoError(t, err)
	before, err := s.ComponentVersion(ctx)
	require.NoError(t, err)
	removed, err := s.ActionDelete(ctx, "demo.extra")
	require.NoError(t, err)
	require.Equal(t, []string{"ops.extra_limit"}, removed)
	after, err := s.ComponentVersion(ctx)
	require.NoError(t, err)
	require.Greater(t, after, before, "caches of actions and policies learn of the deletion")
	_, err = s.ActionGetByRef(ctx, "demo.extra")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.PolicyGet(ctx, "ops.extra_limit")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.PolicyGet(ctx, "ops.pack_limit")
	require.NoError(t, err, "a policy of the whole pack stays with the pack")
	kept, err := s.ExecutionGet(ctx, exec.ID)
	require.NoError(t, err)
	require.Equal(t, "demo.extra", kept.ActionRef)

	_, err = s.ActionDelete(ctx, "demo.extra")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestTriggerWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)

	created, err := s.TriggerCreate(ctx, store.Trigger{Ref: "demo.ping", PackRef: "demo", Parameters: json.RawMessage(`{"url": {"type": "string"}}`)})
	require.NoError(t, err)
	require.True(t, created.Enabled)
	require.JSONEq(t, `{}`, string(created.Output))
	_, err = s.TriggerCreate(ctx, store.Trigger{Ref: "demo.ping", PackRef: "demo"})
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.TriggerCreate(ctx, store.Trigger{Ref: "nope.ping", PackRef: "nope"})
	require.ErrorIs(t, err, store.ErrNotFound)

	updated, err := s.TriggerUpdate(ctx, store.Trigger{Ref: "demo.ping", Label: "Ping", Output: json.RawMessage(`{"n": {"type": "integer"}}`)})
	require.NoError(t, err)
	require.Equal(t, "Ping", updated.Label)
	require.JSONEq(t, `{}`, string(updated.Parameters), "what an update leaves out is unset")
	_, err = s.TriggerUpdate(ctx, store.Trigger{Ref: "demo.gone"})
	require.ErrorIs(t, err, store.ErrNotFound)

	// Rules and sensors keep a trigger; its events stay.
	_, err = s.PackRegister(ctx, store.PackRegistration{
		Pack:    store.Pack{Ref: "watch"},
		Sensors: []store.Sensor{{Ref: "watch.pinger", TriggerRefs: []string{"demo.ping"}, Enabled: true}},
	})
	require.NoError(t, err)
	err = s.TriggerDelete(ctx, "demo.ping")
	requireInUse(t, err, "trigger demo.ping", "sensor watch.pinger")
	err = s.TriggerDelete(ctx, "demo.hook")
	requireInUse(t, err, "trigger demo.hook", "rule demo.rule")

	_, err = s.PackRegister(ctx, store.PackRegistration{Pack: store.Pack{Ref: "watch"}})
	require.NoError(t, err)
	ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.ping"})
	require.NoError(t, err)
	require.NoError(t, s.TriggerDelete(ctx, "demo.ping"))
	_, err = s.TriggerGetByRef(ctx, "demo.ping")
	require.ErrorIs(t, err, store.ErrNotFound)
	kept, err := s.EventGet(ctx, ev.ID)
	require.NoError(t, err)
	require.Equal(t, "demo.ping", kept.TriggerRef)
	require.ErrorIs(t, s.TriggerDelete(ctx, "demo.ping"), store.ErrNotFound)
}

func TestRuleWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	_, err := s.TriggerCreate(ctx, store.Trigger{Ref: "demo.other", PackRef: "demo"})
	require.NoError(t, err)
	version := func() int64 {
		t.Helper()
		v, err := s.ComponentVersion(ctx)
		require.NoError(t, err)
		return v
	}

	v := version()
	created, err := s.RuleCreate(ctx, store.Rule{Ref: "demo.new", PackRef: "demo", TriggerRef: "demo.hook", ActionRef: "demo.run",
		TriggerParams: json.RawMessage(`{"url": "x"}`), Conditions: json.RawMessage(`{"field": "a", "operator": "exists"}`), Enabled: true})
	require.NoError(t, err)
	require.Greater(t, version(), v, "the rule matcher learns of a new rule before the next event")
	require.JSONEq(t, `{}`, string(created.ActionParams))
	enabled, err := s.RuleListEnabledByTrigger(ctx, "demo.hook")
	require.NoError(t, err)
	require.Len(t, enabled, 2)

	_, err = s.RuleCreate(ctx, store.Rule{Ref: "demo.new", PackRef: "demo", TriggerRef: "demo.hook", ActionRef: "demo.run"})
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = s.RuleCreate(ctx, store.Rule{Ref: "demo.bad", PackRef: "demo", TriggerRef: "demo.hook", ActionRef: "demo.gone"})
	require.ErrorIs(t, err, store.ErrNotFound)

	updated, err := s.RuleUpdate(ctx, store.Rule{Ref: "demo.new", TriggerRef: "demo.other", ActionRef: "demo.run", Enabled: true})
	require.NoError(t, err)
	require.Equal(t, "demo.other", updated.TriggerRef)
	require.Equal(t, created.ID, updated.ID)
	require.JSONEq(t, `[]`, string(updated.Conditions), "what an update leaves out is unset")
	_, err = s.RuleUpdate(ctx, store.Rule{Ref: "demo.gone", TriggerRef: "demo.hook", ActionRef: "demo.run"})
	require.ErrorIs(t, err, store.ErrNotFound)
	byTrigger, err := s.RuleListByTrigger(ctx, "demo.other")
	require.NoError(t, err)
	require.Len(t, byTrigger, 1)

	v = version()
	off, err := s.RuleSetEnabled(ctx, "demo.new", false)
	require.NoError(t, err)
	require.False(t, off.Enabled)
	require.Greater(t, version(), v)
	enabled, err = s.RuleListEnabledByTrigger(ctx, "demo.other")
	require.NoError(t, err)
	require.Empty(t, enabled)
	byTrigger, err = s.RuleListByTrigger(ctx, "demo.other")
	require.NoError(t, err)
	require.Len(t, byTrigger, 1, "disabled rules are listed too")
	_, err = s.RuleSetEnabled(ctx, "demo.gone", true)
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.RuleDelete(ctx, "demo.new"))
	require.ErrorIs(t, s.RuleDelete(ctx, "demo.new"), store.ErrNotFound)
}

func TestPackDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	_, err := s.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "ops"},
		Actions:  []store.Action{noopAction("ops.act", "")},
		Policies: []store.Policy{{Ref: "ops.own", ActionRef: ptr("ops.act"), Enabled: true, ConcurrencyLimit: ptr(1)}},
		Rules:    []store.Rule{{Ref: "ops.uses_demo", TriggerRef: "demo.hook", ActionRef: "ops.act", Enabled: false}},
	})
	require.NoError(t, err)

	// ops's rule uses demo's trigger: demo stays until it goes.
	_, err = s.PackDelete(ctx, "demo")
	requireInUse(t, err, "pack demo", "rule ops.uses_demo (disabled)")

	for _, p := range []store.Policy{
		{Ref: "x.on_action", ActionRef: ptr("ops.act"), Enabled: true, ConcurrencyLimit: ptr(1)},
		{Ref: "x.on_pack", PackRef: ptr("ops"), Enabled: true, ConcurrencyLimit: ptr(1)},
		{Ref: "x.elsewhere", ActionRef: ptr("demo.run"), Enabled: true, ConcurrencyLimit: ptr(1)},
	} {
		_, err := s.PolicyCreate(ctx, p)
		require.NoError(t, err)
	}
	ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
	require.NoError(t, err)
	enfs, err := s.EventEnforce(ctx, ev.ID, []store.EnforcementMatch{{RuleRef: "ops.uses_demo"}})
	require.NoError(t, err)
	exec, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "ops.act", EnforcementID: &enfs[0].ID})
	require.NoError(t, err)

	removed, err := s.PackDelete(ctx, "ops")
	require.NoError(t, err)
	require.Equal(t, []string{"ops.own", "x.on_action", "x.on_pack"}, removed)
	_, err = s.PackGetByRef(ctx, "ops")
	require.ErrorIs(t, err, store.ErrNotFound)
	for _, gone := range []func() error{
		func() error { _, err := s.ActionGetByRef(ctx, "ops.act"); return err },
		func() error { _, err := s.RuleGetByRef(ctx, "ops.uses_demo"); return err },
	} {
		require.ErrorIs(t, gone(), store.ErrNotFound)
	}
	_, err = s.PolicyGet(ctx, "x.elsewhere")
	require.NoError(t, err, "a policy on another pack's action stays")
	keptExec, err := s.ExecutionGet(ctx, exec.ID)
	require.NoError(t, err)
	require.Equal(t, "ops.act", keptExec.ActionRef)
	keptEnf, err := s.EnforcementGet(ctx, enfs[0].ID)
	require.NoError(t, err)
	require.Equal(t, "ops.uses_demo", keptEnf.RuleRef)

	// Now nothing else uses demo: it goes with its own rule, trigger and action.
	_, err = s.PackDelete(ctx, "demo")
	require.NoError(t, err)
	_, err = s.TriggerGetByRef(ctx, "demo.hook")
	require.ErrorIs(t, err, store.ErrNotFound)
	keptEv, err := s.EventGet(ctx, ev.ID)
	require.NoError(t, err)
	require.Equal(t, "demo.hook", keptEv.TriggerRef)
	_, err = s.PackDelete(ctx, "demo")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestWorkerDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w1", Runners: []string{"shell"}, Concurrency: 1})
	require.NoError(t, err)

	err = s.WorkerDelete(ctx, "w1", time.Minute)
	require.ErrorIs(t, err, store.ErrConflict, "it heartbeats")
	require.ErrorContains(t, err, "worker w1 is alive")

	exec, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	_, _, err = s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"requested"}, To: "running", Worker: &w.ID})
	require.NoError(t, err)
	require.NoError(t, s.WorkerSetInactive(ctx, "w1"))
	err = s.WorkerDelete(ctx, "w1", time.Minute)
	requireInUse(t, err, "worker w1", "execution "+strconv.FormatInt(exec.ID, 10))

	_, err = s.ExecutionAbandonOrphans(ctx, time.Minute, true)
	require.NoError(t, err)
	require.NoError(t, s.WorkerDelete(ctx, "w1", time.Minute))
	_, err = s.WorkerGetByName(ctx, "w1")
	require.ErrorIs(t, err, store.ErrNotFound)
	kept, err := s.ExecutionGet(ctx, exec.ID)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionAbandoned, kept.Status)
	require.ErrorIs(t, s.WorkerDelete(ctx, "w1", time.Minute), store.ErrNotFound)
}
