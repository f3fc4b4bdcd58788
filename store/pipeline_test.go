package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// seedPack registers a pack with one trigger, one action and one rule.
func seedPack(t *testing.T, s *store.Store) {
	t.Helper()
	_, err := s.PackRegister(context.Background(), store.PackRegistration{
		Pack:     store.Pack{Ref: "demo", Path: "/packs/demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook"}},
		Actions:  []store.Action{{Ref: "demo.run", RunnerType: "shell", EntryPoint: "run.sh", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
		Rules:    []store.Rule{{Ref: "demo.rule", TriggerRef: "demo.hook", ActionRef: "demo.run", Enabled: true}},
	})
	require.NoError(t, err)
}

func TestPackRegisterReplacesWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)

	// Registering again without the rule and with another action removes what is gone.
	_, err := s.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "demo", Path: "/packs/demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook"}},
		Actions:  []store.Action{{Ref: "demo.other", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
	})
	require.NoError(t, err)
	_, err = s.RuleGetByRef(ctx, "demo.rule")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ActionGetByRef(ctx, "demo.run")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ActionGetByRef(ctx, "demo.other")
	require.NoError(t, err)

	// A rule naming a missing action fails the whole registration.
	_, err = s.PackRegister(ctx, store.PackRegistration{
		Pack:  store.Pack{Ref: "demo", Path: "/packs/demo", Label: "changed"},
		Rules: []store.Rule{{Ref: "demo.bad", TriggerRef: "demo.hook", ActionRef: "demo.missing"}},
	})
	require.ErrorIs(t, err, store.ErrConflict)
	p, err := s.PackGetByRef(ctx, "demo")
	require.NoError(t, err)
	require.Empty(t, p.Label, "nothing of the failed registration was written")
	_, err = s.ActionGetByRef(ctx, "demo.other")
	require.NoError(t, err, "nothing was removed either")
}

func TestEventEnforcementExecution(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)

	ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: json.RawMessage(`{"a":1}`), Source: "test"})
	require.NoError(t, err)
	_, err = s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.nope"})
	require.ErrorIs(t, err, store.ErrNotFound, "an event needs its trigger")

	first, err := s.EventMarkEvaluated(ctx, ev.ID)
	require.NoError(t, err)
	require.True(t, first)
	again, err := s.EventMarkEvaluated(ctx, ev.ID)
	require.NoError(t, err)
	require.False(t, again, "a redelivery sees the event evaluated")

	enf, created, err := s.EnforcementInsert(ctx, store.EnforcementInsertParams{RuleRef: "demo.rule", TriggerRef: "demo.hook", EventID: ev.ID})
	require.NoError(t, err)
	require.True(t, created)
	dup, created, err := s.EnforcementInsert(ctx, store.EnforcementInsertParams{RuleRef: "demo.rule", TriggerRef: "demo.hook", EventID: ev.ID})
	require.NoError(t, err)
	require.False(t, created, "one enforcement per rule and event")
	require.Equal(t, enf.ID, dup.ID)

	exec, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", EnforcementID: &enf.ID})
	require.NoError(t, err)
	require.Equal(t, store.ExecutionRequested, exec.Status)
	_, err = s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", EnforcementID: &enf.ID})
	require.ErrorIs(t, err, store.ErrConflict, "one execution per enforcement")

	// Claims are conditional: the second of two claims gets nothing.
	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w1", Runners: []string{"shell"}, Concurrency: 2})
	require.NoError(t, err)
	_, ok, err := s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"requested"}, To: "scheduled", Worker: &w.ID})
	require.NoError(t, err)
	require.True(t, ok)
	running, ok, err := s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"scheduled"}, To: "running"})
	require.NoError(t, err)
	require.True(t, ok)
	require.NotNil(t, running.StartedAt)
	require.Equal(t, "w1", *running.Worker)
	_, ok, err = s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"scheduled"}, To: "running"})
	require.NoError(t, err)
	require.False(t, ok, "an execution is claimed once")

	done, ok, err := s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"running"}, To: "completed", Result: json.RawMessage(`{"succeeded":true}`)})
	require.NoError(t, err)
	require.True(t, ok)
	require.NotNil(t, done.FinishedAt)
	require.JSONEq(t, `{"succeeded":true}`, string(done.Result))
}

func TestWorkerPickAndOrphans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)

	_, err := s.WorkerPick(ctx, store.WorkerPickParams{Runner: "shell", AliveWithin: time.Minute})
	require.ErrorIs(t, err, store.ErrNotFound, "no worker yet")
	busy, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "busy", Runners: []string{"shell"}, Concurrency: 1})
	require.NoError(t, err)
	_, err = s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "http-only", Runners: []string{"http"}, Concurrency: 8})
	require.NoError(t, err)
	idle, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "idle", Runners: []string{"shell"}, Concurrency: 1})
	require.NoError(t, err)

	exec, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	_, _, err = s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"requested"}, To: "running", Worker: &busy.ID})
	require.NoError(t, err)
	picked, err := s.WorkerPick(ctx, store.WorkerPickParams{Runner: "shell", AliveWithin: time.Minute})
	require.NoError(t, err)
	require.Equal(t, idle.ID, picked.ID, "the worker with room left")

	require.NoError(t, s.WorkerSetInactive(ctx, "busy"))
	orphans, err := s.ExecutionAbandonOrphans(ctx, time.Minute, true)
	require.NoError(t, err)
	require.Len(t, orphans, 1)
	require.Equal(t, exec.ID, orphans[0].ID)
	require.Equal(t, store.ExecutionAbandoned, orphans[0].Status)
	require.Equal(t, "worker busy stopped before the execution finished", *orphans[0].Reason)
	again, err := s.ExecutionAbandonOrphans(ctx, time.Minute, true)
	require.NoError(t, err)
	require.Empty(t, again)
}

func TestEnforcementExecutionInOneStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
	require.NoError(t, err)
	enf, _, err := s.EnforcementInsert(ctx, store.EnforcementInsertParams{RuleRef: "demo.rule", TriggerRef: "demo.hook", EventID: ev.ID})
	require.NoError(t, err)

	target, err := s.EnforcementGetTarget(ctx, enf.ID)
	require.NoError(t, err)
	require.Equal(t, "demo.run", target.ActionRef)
	require.True(t, target.RuleEnabled)

	c, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", EnforcementID: &enf.ID})
	require.NoError(t, err)
	require.True(t, c.Created())
	require.Equal(t, enf.ID, *c.Execution.EnforcementID)
	require.Equal(t, store.ExecutionScheduled, c.Execution.Status, "no policy: scheduled as it is created")
	got, err := s.EnforcementGet(ctx, enf.ID)
	require.NoError(t, err)
	require.Equal(t, store.EnforcementProcessed, got.Status)

	again, err := s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", EnforcementID: &enf.ID})
	require.NoError(t, err)
	require.False(t, again.Created(), "a second delivery creates nothing")
	require.Equal(t, c.Execution.ID, again.Execution.ID)

	scheduled, err := s.ExecutionScheduleWaiting(ctx, 8)
	require.NoError(t, err)
	require.Empty(t, scheduled, "nothing waits for the scheduler: it was scheduled as it was created")
	exec := c.Execution

	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"shell"}, Concurrency: 1})
	require.NoError(t, err)
	other, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "other", Runners: []string{"shell"}, Concurrency: 1})
	require.NoError(t, err)
	claimed, ok, err := s.ExecutionClaim(ctx, exec.ID, w.ID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, store.ExecutionRunning, claimed.Status)
	require.Equal(t, "w", *claimed.Worker)
	_, ok, err = s.ExecutionClaim(ctx, exec.ID, other.ID)
	require.NoError(t, err)
	require.False(t, ok, "a second claim, by any worker, runs nothing")
}

func TestEventEnforceOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: json.RawMessage(`{"k":"v"}`)})
	require.NoError(t, err)
	matches := []store.EnforcementMatch{
		{RuleRef: "demo.rule", Config: json.RawMessage(`{"x":1}`)},
		{RuleRef: "demo.broken", Reason: "evaluate conditions: boom"},
	}
	created, err := s.EventEnforce(ctx, ev.ID, matches)
	require.NoError(t, err)
	require.Len(t, created, 1, "only the match to process is returned")
	require.Equal(t, "demo.rule", created[0].RuleRef)
	require.JSONEq(t, `{"x":1}`, string(created[0].Config))
	require.JSONEq(t, `{"k":"v"}`, string(created[0].Payload))

	all, total, err := s.EnforcementList(ctx, store.EnforcementFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 2, total)
	for _, e := range all {
		if e.RuleRef == "demo.broken" {
			require.Equal(t, store.EnforcementProcessed, e.Status)
			require.Equal(t, "evaluate conditions: boom", *e.Reason)
		}
	}
	again, err := s.EventEnforce(ctx, ev.ID, matches)
	require.NoError(t, err)
	require.Empty(t, again, "a redelivered event records nothing")
	got, err := s.EventGet(ctx, ev.ID)
	require.NoError(t, err)
	require.NotNil(t, got.RulesEvaluatedAt)
}

// Waiting executions are scheduled oldest first, as far as workers have room, and the
// lookup of the oldest uses the partial index rather than walking the table.
func TestScheduleWaitingOldestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	var ids []int64
	for range 5 {
		e, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
		require.NoError(t, err)
		ids = append(ids, e.ID)
	}
	waiting, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
	require.NoError(t, err)

	first, err := s.ExecutionScheduleWaiting(ctx, 1)
	require.NoError(t, err)
	require.Len(t, first, 1)
	require.Equal(t, ids[0], first[0].ID, "oldest first")
	second, err := s.ExecutionScheduleWaiting(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, ids[1], second[0].ID)
	rest, err := s.ExecutionScheduleWaiting(ctx, 8)
	require.NoError(t, err)
	require.Len(t, rest, 3, "only admitted executions")
	got, err := s.ExecutionGet(ctx, waiting.ID)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionRequested, got.Status, "one not admitted waits")

	// The plan of the statement the scheduler runs, under the settings its function carries:
	// it must walk execution_waiting_idx in order, whether the statistics are missing (a fresh
	// installation under its first backlog, where the planner once chose to sort every
	// waiting execution) or were taken when nothing waited.
	explain := func() string {
		var body string
		var settings []string
		require.NoError(t, s.Pool().QueryRow(ctx, `SELECT prosrc, proconfig FROM pg_proc
			WHERE oid = 'attune.schedule_waiting'::regproc`).Scan(&body, &settings))
		tx, err := s.Pool().Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		for _, setting := range settings {
			name, value, _ := strings.Cut(setting, "=")
			_, err := tx.Exec(ctx, `SELECT set_config($1, $2, true)`, name, value)
			require.NoError(t, err)
		}
		// The statement as the function's cached generic plan runs it, parameters unknown.
		_, query, ok := strings.Cut(body, "RETURN QUERY")
		require.True(t, ok, body)
		query, _, _ = strings.Cut(query, ";")
		query = strings.NewReplacer("LIMIT batch", "LIMIT $1").Replace(query)
		_, err = tx.Exec(ctx, `PREPARE schedule_waiting(integer) AS `+query)
		require.NoError(t, err)
		defer func() { _, _ = tx.Exec(ctx, `DEALLOCATE schedule_waiting`) }()
		_, err = tx.Exec(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`)
		require.NoError(t, err)
		rows, err := tx.Query(ctx, `EXPLAIN EXECUTE schedule_waiting(2)`)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var line string
			require.NoError(t, rows.Scan(&line))
			plan = append(plan, line)
		}
		require.NoError(t, rows.Err())
		return strings.Join(plan, "\n")
	}
	plan := explain() // no statistics yet
	require.Contains(t, plan, "execution_waiting_idx", plan)
	require.NotContains(t, plan, "Sort Key: e.created", plan)
	_, err = s.Pool().Exec(ctx, `INSERT INTO attune.execution (action_ref, status, finished_at)
		SELECT 'demo.run', 'completed', now() FROM generate_series(1, 5000)`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `ANALYZE attune.execution`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `INSERT INTO attune.execution (action_ref, status, admitted)
		SELECT 'demo.run', 'requested', true FROM generate_series(1, 2000)`)
	require.NoError(t, err)
	plan = explain() // statistics that say next to nothing waits
	require.Contains(t, plan, "execution_waiting_idx", plan)
	require.NotContains(t, plan, "Sort Key: e.created", plan)
}

// An execution scheduled on a worker that died before claiming it moves to a live worker,
// still scheduled, and the dead worker can no longer claim it.
func TestClaimAndLeftovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"shell"}, Concurrency: 4})
	require.NoError(t, err)
	exec, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	_, ok, err := s.ExecutionClaim(ctx, exec.ID, w.ID)
	require.NoError(t, err)
	require.False(t, ok, "not scheduled yet: nothing to claim")
	_, err = s.ExecutionScheduleWaiting(ctx, 1)
	require.NoError(t, err)
	claimed, ok, err := s.ExecutionClaim(ctx, exec.ID, w.ID)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, store.ExecutionRunning, claimed.Status)

	// A restarted worker of the same name finds its leftovers and ends them.
	left, err := s.ExecutionAbandonLeftovers(ctx, w.ID)
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.Equal(t, store.ExecutionAbandoned, left[0].Status)
}

// What nobody will finish or can run ends with a reason: an execution running far past its
// timeout is abandoned, and one requested for long whose runner no live worker has fails.
func TestSweepEndings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"shell"}, Concurrency: 4})
	require.NoError(t, err)
	timeout := 1
	overdue, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", TimeoutSeconds: &timeout, Admitted: true})
	require.NoError(t, err)
	_, ok, err := s.ExecutionTransition(ctx, store.ExecutionTransition{ID: overdue.ID, From: []string{"requested"}, To: "running", Worker: &w.ID})
	require.NoError(t, err)
	require.True(t, ok)
	_, err = s.Pool().Exec(ctx, `UPDATE attune.execution SET started_at = now() - interval '1 hour' WHERE id = $1`, overdue.ID)
	require.NoError(t, err)

	ended, err := s.ExecutionAbandonOverdue(ctx, time.Minute)
	require.NoError(t, err)
	require.Len(t, ended, 1)
	require.Equal(t, overdue.ID, ended[0].ID)
	require.Equal(t, store.ExecutionAbandoned, ended[0].Status)
	require.Contains(t, *ended[0].Reason, "past its timeout")

	// A live shell worker exists, so a shell execution is never unrunnable; once it is gone
	// and the execution old enough, it is.
	waiting, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	none, err := s.ExecutionFailUnrunnable(ctx, store.UnrunnableParams{AliveWithin: time.Minute})
	require.NoError(t, err)
	require.Empty(t, none)
	require.NoError(t, s.WorkerSetInactive(ctx, "w"))
	young, err := s.ExecutionFailUnrunnable(ctx, store.UnrunnableParams{NoWorker: time.Hour, Selected: time.Hour, AliveWithin: time.Minute})
	require.NoError(t, err)
	require.Empty(t, young, "a young execution may still get its worker")
	failed, err := s.ExecutionFailUnrunnable(ctx, store.UnrunnableParams{AliveWithin: time.Minute})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, waiting.ID, failed[0].ID)
	require.Equal(t, `no live worker can run runner "shell"`, *failed[0].Reason)
}
