package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// scheduled creates n executions of demo.run waiting for a worker.
func scheduled(t *testing.T, s *store.Store, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		e, err := s.ExecutionInsert(context.Background(), store.ExecutionInsertParams{ActionRef: "demo.run", Status: store.ExecutionScheduled, Admitted: true})
		require.NoError(t, err)
		ids[i] = e.ID
	}
	return ids
}

func status(t *testing.T, s *store.Store, id int64) store.Execution {
	t.Helper()
	e, err := s.ExecutionGet(context.Background(), id)
	require.NoError(t, err)
	return e
}

func TestExecutionClaimBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	w1, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w1", Runners: []string{"shell"}, Concurrency: 4})
	require.NoError(t, err)
	w2, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w2", Runners: []string{"shell"}, Concurrency: 4})
	require.NoError(t, err)
	ids := scheduled(t, s, 3)
	a, b, c := ids[0], ids[1], ids[2]
	_, _, err = s.ExecutionTransition(ctx, store.ExecutionTransition{ID: c, From: []string{"scheduled"}, To: "cancelled"})
	require.NoError(t, err)

	// Out of id order, a claimed twice (by two workers), c no longer scheduled, one missing.
	out, err := s.ExecutionClaimBatch(ctx, []store.ExecutionClaimParams{
		{ID: b, Worker: w1.ID}, {ID: a, Worker: w2.ID}, {ID: c, Worker: w1.ID}, {ID: a, Worker: w1.ID}, {ID: 1 << 40, Worker: w1.ID},
	})
	require.NoError(t, err)
	require.Len(t, out, 5)
	require.True(t, out[0].OK)
	require.Equal(t, b, out[0].Execution.ID)
	require.Equal(t, "w1", *out[0].Execution.Worker)
	require.NotNil(t, out[0].Execution.StartedAt)
	require.True(t, out[1].OK)
	require.Equal(t, a, out[1].Execution.ID)
	require.Equal(t, "w2", *out[1].Execution.Worker, "the first claim of a wins")
	require.False(t, out[2].OK, "a cancelled execution is not claimed")
	require.False(t, out[3].OK, "an execution claimed twice in one batch is claimed once")
	require.Zero(t, out[3].Execution.ID)
	require.False(t, out[4].OK, "a missing execution is not claimed")
	require.Equal(t, store.ExecutionRunning, status(t, s, a).Status)
	require.Equal(t, "w2", *status(t, s, a).Worker)
	require.Equal(t, store.ExecutionCancelled, status(t, s, c).Status)

	// A bad item (a worker that does not exist) fails the statement, which writes nothing.
	more := scheduled(t, s, 2)
	_, err = s.ExecutionClaimBatch(ctx, []store.ExecutionClaimParams{{ID: more[0], Worker: w1.ID}, {ID: more[1], Worker: 1 << 40}})
	require.ErrorIs(t, err, store.ErrConflict)
	require.Equal(t, store.ExecutionScheduled, status(t, s, more[0]).Status, "nothing of a failed batch is written")
}

func TestExecutionTransitionBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"shell"}, Concurrency: 4})
	require.NoError(t, err)
	ids := scheduled(t, s, 4)
	for _, id := range ids {
		_, ok, err := s.ExecutionClaim(ctx, id, w.ID)
		require.NoError(t, err)
		require.True(t, ok)
	}
	a, b, c, d := ids[0], ids[1], ids[2], ids[3]
	running := []string{store.ExecutionRunning, store.ExecutionCanceling}

	out, err := s.ExecutionTransitionBatch(ctx, []store.ExecutionTransition{
		{ID: b, From: running, To: store.ExecutionCompleted, Result: json.RawMessage(`{"succeeded":true}`)},
		// a is asked to stop and then ends: in order, as if one after the other.
		{ID: a, From: []string{store.ExecutionRunning}, To: store.ExecutionCanceling},
		{ID: a, From: running, To: store.ExecutionCancelled, Reason: "stopped"},
		// c is not scheduled any more: a status that does not match moves nothing.
		{ID: c, From: []string{store.ExecutionScheduled}, To: store.ExecutionFailed},
		// b once more: it ended in this batch already.
		{ID: b, From: running, To: store.ExecutionFailed},
	})
	require.NoError(t, err)
	require.True(t, out[0].OK)
	require.Equal(t, store.ExecutionCompleted, out[0].Execution.Status)
	require.JSONEq(t, `{"succeeded":true}`, string(out[0].Execution.Result))
	require.NotNil(t, out[0].Execution.FinishedAt)
	require.False(t, out[0].Execution.HeldSlot, "no policy: no slot held")
	require.True(t, out[1].OK)
	require.Equal(t, store.ExecutionCanceling, out[1].Execution.Status)
	require.True(t, out[2].OK, "the second transition of a sees the status the first left")
	require.Equal(t, store.ExecutionCancelled, out[2].Execution.Status)
	require.Equal(t, "stopped", *out[2].Execution.Reason)
	require.False(t, out[3].OK)
	require.False(t, out[4].OK, "an ending is not moved again")
	require.Equal(t, store.ExecutionCompleted, status(t, s, b).Status)
	require.Equal(t, store.ExecutionRunning, status(t, s, c).Status)

	// A move the status guard refuses (a terminal status back to running) fails the batch,
	// which writes nothing; the same items without it go through.
	bad := []store.ExecutionTransition{
		{ID: c, From: running, To: store.ExecutionCompleted},
		{ID: b, From: []string{store.ExecutionCompleted}, To: store.ExecutionRunning},
	}
	_, err = s.ExecutionTransitionBatch(ctx, bad)
	require.ErrorIs(t, err, store.ErrConflict)
	require.Equal(t, store.ExecutionRunning, status(t, s, c).Status, "nothing of a failed batch is written")
	require.Equal(t, store.ExecutionCompleted, status(t, s, b).Status, "statuses never move backwards")
	out, err = s.ExecutionTransitionBatch(ctx, []store.ExecutionTransition{bad[0], {ID: d, From: running, To: store.ExecutionTimeout}})
	require.NoError(t, err)
	require.True(t, out[0].OK)
	require.True(t, out[1].OK)
}

// Endings in one batch each give their policy slot back and admit the next waiter: the
// admission trigger runs for every row.
func TestExecutionTransitionBatchReleasesEverySlot(t *testing.T) {
	t.Parallel()
	f := newAdmission(t)
	f.policy(store.Policy{Ref: "demo.two", ConcurrencyLimit: ptr(2)})
	var ids []int64
	for range 4 {
		id, _ := f.admit(`{}`)
		ids = append(ids, id)
	}
	require.True(t, f.admitted(ids[0]))
	require.True(t, f.admitted(ids[1]))
	require.False(t, f.admitted(ids[2]), "waits for a slot")
	require.False(t, f.admitted(ids[3]))
	free, err := f.s.ExecutionInsert(f.ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)

	from := []string{store.ExecutionRequested, store.ExecutionScheduled}
	out, err := f.s.ExecutionTransitionBatch(f.ctx, []store.ExecutionTransition{
		{ID: ids[0], From: from, To: store.ExecutionCompleted},
		{ID: free.ID, From: from, To: store.ExecutionCompleted},
		{ID: ids[1], From: from, To: store.ExecutionFailed},
	})
	require.NoError(t, err)
	require.True(t, out[0].Execution.HeldSlot, "it held a slot until this ending")
	require.False(t, out[1].Execution.HeldSlot, "no policy covered it")
	require.True(t, out[2].Execution.HeldSlot)
	require.True(t, f.admitted(ids[2]), "each ending admitted a waiter")
	require.True(t, f.admitted(ids[3]))
	st := f.stats()
	require.Equal(t, 2, st.Active, "the two waiters hold the slots now")
	require.Equal(t, 0, st.Queued)
}

// One statement creates the executions of many enforcements: each enforcement gets one, even
// named twice in a batch or again by a redelivery (which gets the first's back), a resolved
// enforcement none, a refused item its failed execution; and a bad item fails the whole batch.
func TestExecutionCreateBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	enforcements := func(n int) []int64 {
		var ids []int64
		for range n {
			ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
			require.NoError(t, err)
			e, _, err := s.EnforcementInsert(ctx, store.EnforcementInsertParams{RuleRef: "demo.rule", TriggerRef: "demo.hook", EventID: ev.ID})
			require.NoError(t, err)
			ids = append(ids, e.ID)
		}
		return ids
	}
	enfs := enforcements(4)
	require.NoError(t, s.EnforcementResolve(ctx, enfs[2], store.EnforcementDisabled, "rule gone"))
	timeout := 7
	item := func(enf int64, params string) store.ExecutionCreateParams {
		return store.ExecutionCreateParams{ActionRef: "demo.run", EnforcementID: &enf, Parameters: json.RawMessage(params), TimeoutSeconds: &timeout}
	}
	refused := item(enfs[3], `{}`)
	refused.Refusal = "parameter x is missing"

	out, err := s.ExecutionCreate(ctx, []store.ExecutionCreateParams{
		item(enfs[1], `{"n":1}`), item(enfs[0], `{"n":0}`), item(enfs[1], `{"n":2}`), item(enfs[2], `{}`), refused,
	})
	require.NoError(t, err)
	require.Equal(t, store.CreateAdmitted, out[0].Outcome)
	require.Equal(t, enfs[1], *out[0].Execution.EnforcementID)
	require.JSONEq(t, `{"n":1}`, string(out[0].Execution.Parameters), "the first item of an enforcement wins")
	require.Equal(t, store.ExecutionScheduled, out[0].Execution.Status, "no policy: scheduled as it is created")
	require.NotNil(t, out[0].Execution.AdmittedAt)
	require.Equal(t, 7, *out[0].Execution.TimeoutSeconds)
	require.Equal(t, store.CreateAdmitted, out[1].Outcome)
	require.Equal(t, enfs[0], *out[1].Execution.EnforcementID)
	require.Equal(t, store.CreateExists, out[2].Outcome, "one execution per enforcement, even twice in one batch")
	require.Equal(t, out[0].Execution.ID, out[2].Execution.ID, "the existing one comes back")
	require.Equal(t, store.CreateSkipped, out[3].Outcome, "a resolved enforcement gets no execution")
	require.Equal(t, store.CreateRefused, out[4].Outcome)
	require.Equal(t, store.ExecutionFailed, out[4].Execution.Status)
	require.Equal(t, "parameter x is missing", *out[4].Execution.Reason)
	require.NotNil(t, out[4].Execution.FinishedAt)
	for _, id := range []int64{enfs[0], enfs[1], enfs[3]} {
		e, err := s.EnforcementGet(ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.EnforcementProcessed, e.Status)
	}
	_, total, err := s.ExecutionList(ctx, store.ExecutionFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 3, total)

	// Again, as a redelivery would: nothing more, and what the first made comes back.
	out, err = s.ExecutionCreate(ctx, []store.ExecutionCreateParams{item(enfs[0], `{}`), item(enfs[1], `{}`)})
	require.NoError(t, err)
	require.Equal(t, store.CreateExists, out[0].Outcome)
	require.Equal(t, enfs[0], *out[0].Execution.EnforcementID)
	require.Equal(t, store.CreateExists, out[1].Outcome)

	// A bad item (parameters that are not JSON) fails the statement, which writes nothing.
	fresh := enforcements(2)
	_, err = s.ExecutionCreate(ctx, []store.ExecutionCreateParams{item(fresh[0], `{}`), item(fresh[1], `{not json`)})
	require.Error(t, err)
	for _, id := range fresh {
		got, err := s.EnforcementGet(ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.EnforcementCreated, got.Status, "nothing of a failed batch is written")
	}
}

func TestEventEnforceBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	var evs []int64
	for i := range 4 {
		ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook", Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		require.NoError(t, err)
		evs = append(evs, ev.ID)
	}
	_, err := s.EventMarkEvaluated(ctx, evs[3])
	require.NoError(t, err)
	match := func(config string) []store.EnforcementMatch {
		return []store.EnforcementMatch{{RuleRef: "demo.rule", Config: json.RawMessage(config)}}
	}

	out, err := s.EventEnforceBatch(ctx, []store.EventEnforcement{
		{EventID: evs[1], Matches: append(match(`{"x":1}`), store.EnforcementMatch{RuleRef: "demo.broken", Reason: "boom"})},
		{EventID: evs[0], Matches: match(`{"x":0}`)},
		{EventID: evs[1], Matches: match(`{"x":2}`)}, // the same event again
		{EventID: evs[2]},                       // no rule matched
		{EventID: evs[3], Matches: match(`{}`)}, // evaluated already
	})
	require.NoError(t, err)
	require.Len(t, out, 5)
	require.Len(t, out[0], 1, "only the match to process is returned")
	require.Equal(t, evs[1], out[0][0].EventID)
	require.JSONEq(t, `{"x":1}`, string(out[0][0].Config))
	require.JSONEq(t, `{"i":1}`, string(out[0][0].Payload))
	require.Len(t, out[1], 1)
	require.Equal(t, evs[0], out[1][0].EventID)
	require.Empty(t, out[2], "an event twice in one batch is enforced once")
	require.Empty(t, out[3])
	require.Empty(t, out[4], "a redelivered event records nothing")
	for _, id := range evs[:3] {
		ev, err := s.EventGet(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, ev.RulesEvaluatedAt, "every event of the batch is marked, matched or not")
	}
	all, total, err := s.EnforcementList(ctx, store.EnforcementFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 3, total, "two for the first event (one resolved with its reason), one for the second")
	for _, e := range all {
		if e.RuleRef == "demo.broken" {
			require.Equal(t, store.EnforcementProcessed, e.Status)
			require.Equal(t, "boom", *e.Reason)
		}
	}

	// A bad item (a config that is not JSON) fails the statement, which writes nothing.
	good, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
	require.NoError(t, err)
	bad, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
	require.NoError(t, err)
	_, err = s.EventEnforceBatch(ctx, []store.EventEnforcement{
		{EventID: good.ID, Matches: match(`{}`)},
		{EventID: bad.ID, Matches: []store.EnforcementMatch{{RuleRef: "demo.rule", Config: json.RawMessage(`{not json`)}}},
	})
	require.Error(t, err)
	got, err := s.EventGet(ctx, good.ID)
	require.NoError(t, err)
	require.Nil(t, got.RulesEvaluatedAt, "nothing of a failed batch is written")
}

// Through the Store, concurrent callers share statements; every one still gets its own
// outcome, and a bad item fails only its caller.
func TestStoreCoalescesConcurrentCallers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"shell"}, Concurrency: 4})
	require.NoError(t, err)
	ids := scheduled(t, s, 40)

	// Every execution claimed by two callers at once, plus callers with a missing worker.
	var mu sync.Mutex
	claims := make(map[int64]int)
	var conflicts int
	var wg sync.WaitGroup
	for _, id := range ids {
		for range 2 {
			wg.Go(func() {
				e, ok, err := s.ExecutionClaim(ctx, id, w.ID)
				mu.Lock()
				defer mu.Unlock()
				assert.NoError(t, err)
				if ok {
					claims[e.ID]++
				}
			})
		}
	}
	extra := scheduled(t, s, 5)
	for _, id := range extra {
		wg.Go(func() {
			_, _, err := s.ExecutionClaim(ctx, id, 1<<40)
			mu.Lock()
			defer mu.Unlock()
			if assert.ErrorIs(t, err, store.ErrConflict) {
				conflicts++
			}
		})
	}
	wg.Wait()
	require.Len(t, claims, len(ids))
	for id, n := range claims {
		require.Equal(t, 1, n, "execution %d claimed once", id)
	}
	require.Equal(t, len(extra), conflicts, "each bad claim fails its own caller")
	for _, id := range extra {
		require.Equal(t, store.ExecutionScheduled, status(t, s, id).Status)
	}

	// Events, some of a trigger that does not exist.
	var inserted, missing int
	for i := range 30 {
		wg.Go(func() {
			ref := "demo.hook"
			if i%6 == 0 {
				ref = "demo.missing"
			}
			ev, err := s.EventInsert(ctx, store.EventInsertParams{TriggerRef: ref, Payload: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
			mu.Lock()
			defer mu.Unlock()
			if ref == "demo.missing" {
				if assert.ErrorIs(t, err, store.ErrNotFound) {
					missing++
				}
				return
			}
			if assert.NoError(t, err) && assert.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i), string(ev.Payload)) {
				inserted++
			}
		})
	}
	wg.Wait()
	require.Equal(t, 25, inserted)
	require.Equal(t, 5, missing)

	// Endings, with the component version read alongside.
	before, err := s.ComponentVersion(ctx)
	require.NoError(t, err)
	for _, id := range ids {
		wg.Go(func() {
			e, ok, err := s.ExecutionTransition(ctx, store.ExecutionTransition{ID: id, From: []string{store.ExecutionRunning}, To: store.ExecutionCompleted})
			assert.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, store.ExecutionCompleted, e.Status)
			v, err := s.ComponentVersion(ctx)
			assert.NoError(t, err)
			assert.Equal(t, before, v)
		})
	}
	wg.Wait()
}

func TestEventInsertBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	seedPack(t, s)
	out, err := s.EventInsertBatch(ctx, []store.EventInsertParams{
		{TriggerRef: "demo.hook", Payload: json.RawMessage(`{"n":1}`), Source: "api"},
		{TriggerRef: "demo.missing"},
		{TriggerRef: "demo.hook", Source: "timer", RuleRef: "demo.rule"},
	})
	require.NoError(t, err)
	require.Len(t, out, 3)
	require.NotNil(t, out[0])
	require.JSONEq(t, `{"n":1}`, string(out[0].Payload))
	require.Equal(t, "api", out[0].Source)
	require.Nil(t, out[0].RuleRef)
	require.Nil(t, out[1], "an event needs its trigger")
	require.NotNil(t, out[2])
	require.JSONEq(t, `{}`, string(out[2].Payload))
	require.Equal(t, "demo.rule", *out[2].RuleRef)
	require.Less(t, out[0].ID, out[2].ID, "ids in the order of the items")
	got, err := s.EventGet(ctx, out[2].ID)
	require.NoError(t, err)
	require.Equal(t, "timer", got.Source)

	// A bad item (a payload that is not JSON) fails the statement, which writes nothing.
	_, err = s.EventInsertBatch(ctx, []store.EventInsertParams{{TriggerRef: "demo.hook"}, {TriggerRef: "demo.hook", Payload: json.RawMessage(`{not json`)}})
	require.Error(t, err)
	_, total, err := s.EventList(ctx, store.EventFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 2, total)

	// Through the Store, a missing trigger is the caller's ErrNotFound, as before.
	_, err = s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.missing"})
	require.ErrorIs(t, err, store.ErrNotFound)
}
