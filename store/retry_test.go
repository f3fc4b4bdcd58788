package store_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// retryFixture is a store with one action, demo.flaky, whose retry spec a test sets, and a
// worker to run its attempts.
type retryFixture struct {
	t      *testing.T
	ctx    context.Context
	s      *store.Store
	worker int64
}

func newRetry(t *testing.T, action, policy *store.Retry) retryFixture {
	t.Helper()
	ctx := context.Background()
	s := storetest.NewStore(t)
	reg := store.PackRegistration{
		Pack: store.Pack{Ref: "demo"},
		Actions: []store.Action{{Ref: "demo.flaky", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true,
			Retry: action, Parameters: json.RawMessage(`{}`)}},
	}
	if policy != nil {
		reg.Policies = []store.Policy{{Ref: "demo.flaky_policy", ActionRef: ptr("demo.flaky"), Enabled: true,
			ConcurrencyLimit: ptr(1), Retry: policy}}
	}
	_, err := s.PackRegister(ctx, reg)
	require.NoError(t, err)
	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"noop"}, Concurrency: 4})
	require.NoError(t, err)
	return retryFixture{t: t, ctx: ctx, s: s, worker: w.ID}
}

func (f retryFixture) create(params string, secrets ...string) store.Execution {
	f.t.Helper()
	c, err := f.s.ExecutionCreateOne(f.ctx, store.ExecutionCreateParams{ActionRef: "demo.flaky", Parameters: json.RawMessage(params),
		Secrets: secrets})
	require.NoError(f.t, err)
	return c.Execution
}

// run claims execution id as the worker does and ends it in status.
func (f retryFixture) run(id int64, status string) store.Execution {
	f.t.Helper()
	_, ok, err := f.s.ExecutionClaim(f.ctx, id, f.worker)
	require.NoError(f.t, err)
	require.True(f.t, ok, "claim execution %d", id)
	e, ok, err := f.s.ExecutionTransition(f.ctx, store.ExecutionTransition{ID: id, From: []string{store.ExecutionRunning}, To: status})
	require.NoError(f.t, err)
	require.True(f.t, ok)
	return e
}

// due makes every planned retry due now rather than after its delay.
func (f retryFixture) due() {
	f.t.Helper()
	_, err := f.s.Pool().Exec(f.ctx, `UPDATE attune.execution SET retry_at = now() WHERE retry_at IS NOT NULL`)
	require.NoError(f.t, err)
}

func (f retryFixture) retryDue() []store.ExecutionCreated {
	f.t.Helper()
	out, err := f.s.ExecutionRetryDue(f.ctx, 10)
	require.NoError(f.t, err)
	return out
}

// delayOf is how far after the ending of e its next attempt is planned.
func delayOf(t *testing.T, e store.Execution) time.Duration {
	t.Helper()
	require.NotNil(t, e.RetryAt, "execution %d has no retry planned", e.ID)
	return e.RetryAt.Sub(*e.FinishedAt).Round(time.Second)
}

// An attempt that ends in one of the spec's statuses plans the next, in the statement that
// ends it; the next is created once it is due, with the same parameters, numbered and linked
// to the first; and the last attempt plans none.
func TestRetryPlansAndCreatesAttempts(t *testing.T) {
	t.Parallel()
	f := newRetry(t, &store.Retry{MaxAttempts: 3, On: []string{"failed", "timeout"}, DelaySeconds: 10, Backoff: "exponential",
		MaxDelaySeconds: ptr(15)}, nil)
	first := f.create(`{"n": 7, "token": "s3cret"}`, "token")
	require.Equal(t, 1, first.Attempt)
	require.Nil(t, first.RetryOf)

	ended := f.run(first.ID, store.ExecutionFailed)
	require.Equal(t, 10*time.Second, delayOf(t, ended), "the first wait is delay_seconds")
	require.Empty(t, f.retryDue(), "not due for ten seconds")

	f.due()
	created := f.retryDue()
	require.Len(t, created, 1)
	second := created[0].Execution
	require.Equal(t, store.CreateAdmitted, created[0].Outcome)
	require.Equal(t, 2, second.Attempt)
	require.Equal(t, first.ID, *second.RetryOf)
	require.JSONEq(t, `{"n": 7, "token": "s3cret"}`, string(second.Parameters))
	require.Equal(t, []string{"token"}, second.Secrets, "an attempt keeps its secrets secret")
	require.Greater(t, second.ID, first.ID, "an attempt is a new execution, at the back of the line")
	gone, err := f.s.ExecutionGet(f.ctx, first.ID)
	require.NoError(t, err)
	require.Nil(t, gone.RetryAt, "created once: the plan is cleared with it")
	require.Empty(t, f.retryDue())

	ended = f.run(second.ID, store.ExecutionTimeout)
	require.Equal(t, 15*time.Second, delayOf(t, ended), "doubled to 20s, capped at max_delay_seconds")
	f.due()
	third := f.retryDue()[0].Execution
	require.Equal(t, 3, third.Attempt)
	require.Equal(t, first.ID, *third.RetryOf, "every attempt names the first")

	last := f.run(third.ID, store.ExecutionFailed)
	require.Nil(t, last.RetryAt, "max_attempts counts the first: three and no more")

	attempts, err := f.s.ExecutionAttempts(f.ctx, second.ID)
	require.NoError(t, err)
	require.Len(t, attempts, 3)
	for i, a := range attempts {
		require.Equal(t, i+1, a.Attempt)
	}
}

// Only the spec's statuses lead to another attempt, only attempts that ran are repeated, and a
// policy's retry wins over its action's.
func TestRetryFollowsItsSpec(t *testing.T) {
	t.Parallel()
	f := newRetry(t, &store.Retry{MaxAttempts: 5, On: []string{"timeout"}, Backoff: "constant"}, nil)
	require.Nil(t, f.run(f.create(`{}`).ID, store.ExecutionFailed).RetryAt, "failed is not in on")
	require.Nil(t, f.run(f.create(`{}`).ID, store.ExecutionCompleted).RetryAt)
	require.NotNil(t, f.run(f.create(`{}`).ID, store.ExecutionTimeout).RetryAt)
	refused, err := f.s.ExecutionCreateOne(f.ctx, store.ExecutionCreateParams{ActionRef: "demo.flaky", Refusal: "bad parameters"})
	require.NoError(t, err)
	require.Nil(t, refused.Execution.RetryAt, "refused before it ran: nothing to repeat")
	never := f.create(`{}`)
	cancelled, _, err := f.s.ExecutionTransition(f.ctx, store.ExecutionTransition{ID: never.ID, From: []string{store.ExecutionScheduled},
		To: store.ExecutionTimeout})
	require.NoError(t, err)
	require.Nil(t, cancelled.RetryAt, "it never started")

	g := newRetry(t, &store.Retry{MaxAttempts: 5, On: []string{"timeout"}, Backoff: "constant"},
		&store.Retry{MaxAttempts: 2, On: []string{"failed"}, DelaySeconds: 3, Backoff: "constant"})
	e := g.run(g.create(`{}`).ID, store.ExecutionFailed)
	require.Equal(t, 3*time.Second, delayOf(t, e), "the policy's retry wins")
}

// However many executors ask at once, each due retry is created exactly once.
func TestRetryCreatedOnceAcrossExecutors(t *testing.T) {
	t.Parallel()
	f := newRetry(t, &store.Retry{MaxAttempts: 2, On: []string{"failed"}, Backoff: "constant"}, nil)
	const n = 20
	for range n {
		f.run(f.create(`{}`).ID, store.ExecutionFailed)
	}
	var mu sync.Mutex
	var created []int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				out, err := f.s.ExecutionRetryDue(f.ctx, 3)
				require.NoError(t, err)
				if len(out) == 0 {
					return
				}
				mu.Lock()
				for _, c := range out {
					created = append(created, *c.Execution.RetryOf)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, created, n)
	seen := map[int64]bool{}
	for _, first := range created {
		require.False(t, seen[first], "execution %d retried twice", first)
		seen[first] = true
	}
}

// A worker judged dead while it was only out of touch records its result late: it replaces
// the abandonment, and the retry planned for the abandonment is withdrawn.
func TestLateResultReplacesAbandoned(t *testing.T) {
	t.Parallel()
	f := newRetry(t, &store.Retry{MaxAttempts: 3, On: []string{"abandoned"}, DelaySeconds: 60, Backoff: "constant"}, nil)
	e := f.create(`{}`)
	_, ok, err := f.s.ExecutionClaim(f.ctx, e.ID, f.worker)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = f.s.Pool().Exec(f.ctx, `UPDATE attune.worker SET last_heartbeat = now() - interval '1 hour'`)
	require.NoError(t, err)
	abandoned, err := f.s.ExecutionAbandonOrphans(f.ctx, time.Minute, true)
	require.NoError(t, err)
	require.Len(t, abandoned, 1)
	require.NotNil(t, abandoned[0].RetryAt)

	done, ok, err := f.s.ExecutionTransition(f.ctx, store.ExecutionTransition{ID: e.ID,
		From: []string{store.ExecutionRunning, store.ExecutionAbandoned}, To: store.ExecutionCompleted, Result: json.RawMessage(`{"ok": true}`)})
	require.NoError(t, err)
	require.True(t, ok, "the late result is recorded")
	require.Equal(t, store.ExecutionCompleted, done.Status)
	require.JSONEq(t, `{"ok": true}`, string(done.Result))
	require.Contains(t, *done.Reason, "recorded after the execution had been abandoned")
	require.Nil(t, done.RetryAt, "the retry planned for the abandonment is withdrawn")

	_, ok, err = f.s.ExecutionTransition(f.ctx, store.ExecutionTransition{ID: e.ID, From: []string{store.ExecutionCompleted},
		To: store.ExecutionFailed})
	require.ErrorIs(t, err, store.ErrConflict, "every other terminal status stays final")
	require.False(t, ok)
}

// Silence is no evidence until it is trusted: after a database outage every worker is
// silent, and the sweeper passes trustSilence false until it has watched long enough.
func TestSilenceIsEvidenceOnlyWhenTrusted(t *testing.T) {
	t.Parallel()
	f := newRetry(t, nil, nil)
	e := f.create(`{}`)
	_, ok, err := f.s.ExecutionClaim(f.ctx, e.ID, f.worker)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = f.s.Pool().Exec(f.ctx, `UPDATE attune.worker SET last_heartbeat = now() - interval '1 hour'`)
	require.NoError(t, err)
	abandoned, err := f.s.ExecutionAbandonOrphans(f.ctx, time.Minute, false)
	require.NoError(t, err)
	require.Empty(t, abandoned)
	require.NoError(t, f.s.WorkerSetInactive(f.ctx, "w"))
	abandoned, err = f.s.ExecutionAbandonOrphans(f.ctx, time.Minute, false)
	require.NoError(t, err)
	require.Len(t, abandoned, 1, "a worker that said it stopped needs no trust")
}

// An enforcement keeps the action its rule named when it matched: read back (as the executor
// does for a message without the match's snapshot), it says that action whatever the rule
// became since.
func TestEnforcementKeepsTheMatchedAction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
	require.NoError(t, err)
	enfs, err := s.EventEnforce(ctx, ev.ID, []store.EnforcementMatch{{RuleRef: "demo.rule"}})
	require.NoError(t, err)
	_, err = s.RuleSetEnabled(ctx, "demo.rule", false)
	require.NoError(t, err)
	got, err := s.EnforcementGetTarget(ctx, enfs[0].ID)
	require.NoError(t, err)
	require.True(t, got.Matched)
	require.Equal(t, "demo.run", got.ActionRef)
	require.False(t, got.RuleEnabled, "the rule is disabled now; what it matched still runs")
}

// A late result that replaces abandoned replaces the abandonment's plan: a late failure that
// the spec retries keeps a retry planned; a late success cancels the attempt already made for
// the abandonment, while it has not started.
func TestLateResultReplansTheRetry(t *testing.T) {
	t.Parallel()
	f := newRetry(t, &store.Retry{MaxAttempts: 3, On: []string{"abandoned", "failed"}, DelaySeconds: 60, Backoff: "constant"}, nil)
	abandon := func() store.Execution {
		t.Helper()
		e := f.create(`{}`)
		_, ok, err := f.s.ExecutionClaim(f.ctx, e.ID, f.worker)
		require.NoError(t, err)
		require.True(t, ok)
		out, ok, err := f.s.ExecutionTransition(f.ctx, store.ExecutionTransition{ID: e.ID, From: []string{store.ExecutionRunning},
			To: store.ExecutionAbandoned})
		require.NoError(t, err)
		require.True(t, ok)
		require.NotNil(t, out.RetryAt)
		return out
	}
	late := func(id int64, status string) store.Execution {
		t.Helper()
		out, ok, err := f.s.ExecutionTransition(f.ctx, store.ExecutionTransition{ID: id, From: []string{store.ExecutionAbandoned}, To: status})
		require.NoError(t, err)
		require.True(t, ok)
		return out
	}

	first := abandon()
	require.NotNil(t, late(first.ID, store.ExecutionFailed).RetryAt, "failed is retried too: a plan stands")

	second := abandon()
	f.due()
	made := f.retryDue()
	require.Len(t, made, 2, "both abandoned attempts got their retry")
	var retryOfSecond store.Execution
	for _, c := range made {
		if *c.Execution.RetryOf == second.ID {
			retryOfSecond = c.Execution
		}
	}
	require.Equal(t, store.ExecutionScheduled, retryOfSecond.Status)
	late(second.ID, store.ExecutionCompleted)
	got, err := f.s.ExecutionGet(f.ctx, retryOfSecond.ID)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionCancelled, got.Status, "it completed after all: its retry does not run")
	require.Contains(t, *got.Reason, "ended completed after all")
}

// An attempt is requested by whoever requested the first: a workflow run again by its policy
// reads its requester's user keys, as the first attempt did.
func TestRetryKeepsRequester(t *testing.T) {
	t.Parallel()
	f := newRetry(t, &store.Retry{MaxAttempts: 2, On: []string{"failed"}}, nil)
	ada, err := f.s.IdentityInsert(f.ctx, "ada", "x", "operator")
	require.NoError(t, err)
	c, err := f.s.ExecutionCreateOne(f.ctx, store.ExecutionCreateParams{ActionRef: "demo.flaky", Parameters: json.RawMessage(`{}`),
		RequestedBy: &ada.ID})
	require.NoError(t, err)
	require.Equal(t, &ada.ID, c.Execution.RequestedBy)
	other := f.create(`{}`)
	f.run(c.Execution.ID, store.ExecutionFailed)
	f.run(other.ID, store.ExecutionFailed)
	f.due()
	created := f.retryDue()
	require.Len(t, created, 2)
	for _, a := range created {
		row, err := f.s.ExecutionGet(f.ctx, a.Execution.ID)
		require.NoError(t, err)
		switch *a.Execution.RetryOf {
		case c.Execution.ID:
			require.Equal(t, &ada.ID, a.Execution.RequestedBy, "the answer")
			require.Equal(t, &ada.ID, row.RequestedBy, "the row")
		default:
			require.Nil(t, row.RequestedBy, "a rule's execution has no requester, nor its attempts")
		}
	}
}

// attune.execution_create records who requested each execution itself, in the statement that
// creates it, with or without a policy: no UPDATE of the rows just created, no transaction of
// its own for every execution a person requests.
func TestExecutionCreateTakesRequester(t *testing.T) {
	t.Parallel()
	for name, policy := range map[string]*store.Retry{"no policy": nil, "under a policy": {MaxAttempts: 1}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newRetry(t, nil, policy)
			ada, err := f.s.IdentityInsert(f.ctx, "ada", "x", "operator")
			require.NoError(t, err)
			var id int64
			var by *int64
			require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT (c.out_execution).id, (c.out_execution).requested_by
				FROM attune.execution_create(ARRAY['demo.flaky'], ARRAY['{}'], ARRAY[NULL], ARRAY[NULL], ARRAY[NULL::bigint],
					ARRAY[NULL::bigint], ARRAY[NULL::integer], ARRAY[NULL::integer], ARRAY[NULL::bigint], ARRAY[''],
					ARRAY[$1::bigint], ARRAY[NULL::uuid]) c`, ada.ID).Scan(&id, &by))
			require.Equal(t, &ada.ID, by, "the answer")
			row, err := f.s.ExecutionGet(f.ctx, id)
			require.NoError(t, err)
			require.Equal(t, &ada.ID, row.RequestedBy, "the row")
		})
	}
}
