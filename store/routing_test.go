package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

func TestParseLabels(t *testing.T) {
	t.Parallel()
	l, err := store.ParseLabels(" zone=eu, gpu=true")
	require.NoError(t, err)
	require.Equal(t, store.Labels{"zone": "eu", "gpu": "true"}, l)
	require.Equal(t, "gpu=true,zone=eu", l.String(), "keys in order")
	require.True(t, l.Satisfy(store.Labels{"zone": "eu"}))
	require.True(t, l.Satisfy(nil))
	require.False(t, l.Satisfy(store.Labels{"zone": "us"}))
	require.False(t, l.Satisfy(store.Labels{"zone": "eu", "ssd": "yes"}))
	none, err := store.ParseLabels("")
	require.NoError(t, err)
	require.Nil(t, none)
	for in, want := range map[string]string{
		"zone":            `label "zone": want key=value`,
		"zone=eu,zone=us": `label "zone=us": key zone given twice`,
		"zone=":           `label "zone=": value "" must be 1 to 63`,
		"zone=e u":        `label "zone=e u": value "e u" must be`,
		"-x=1":            `label "-x=1": key "-x" must be`,
		"a=1,,b=2":        `label "": want key=value`,
	} {
		_, err := store.ParseLabels(in)
		require.ErrorContains(t, err, want, in)
	}
	require.ErrorContains(t, store.Labels{"ok": "1", "b@d": "x"}.Check(), `label "b@d=x": key "b@d"`)
}

// routingFixture is a pack whose action demo.eu selects zone=eu, whose demo.run selects
// nothing, and whose demo.policed is given zone=ap by its policy over its own zone=us.
func routingFixture(t *testing.T) (context.Context, *store.Store) {
	t.Helper()
	ctx := context.Background()
	s := storetest.NewStore(t)
	action := func(ref string, sel store.Labels) store.Action {
		return store.Action{Ref: ref, RunnerType: "shell", EntryPoint: "run.sh", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true, WorkerSelector: sel}
	}
	policed := "demo.policed"
	_, err := s.PackRegister(ctx, store.PackRegistration{
		Pack: store.Pack{Ref: "demo", Path: "/packs/demo"},
		Actions: []store.Action{action("demo.eu", store.Labels{"zone": "eu"}), action("demo.run", nil),
			action(policed, store.Labels{"zone": "us"})},
		Policies: []store.Policy{{Ref: "demo.route", ActionRef: &policed, Enabled: true, WorkerSelector: store.Labels{"zone": "ap"}}},
	})
	require.NoError(t, err)
	return ctx, s
}

// An execution records the selector in force as it is made, the policy's over the action's;
// the selectors in use are listed with their runner; a worker keeps its labels.
func TestWorkerSelectorRecorded(t *testing.T) {
	t.Parallel()
	ctx, s := routingFixture(t)
	for ref, want := range map[string]store.Labels{"demo.eu": {"zone": "eu"}, "demo.run": nil, "demo.policed": {"zone": "ap"}} {
		e, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: ref, Admitted: true})
		require.NoError(t, err)
		require.Equal(t, want, e.WorkerSelector, ref)
		got, err := s.ExecutionGet(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, want, got.WorkerSelector, ref)
	}
	a, err := s.ActionGetByRef(ctx, "demo.eu")
	require.NoError(t, err)
	require.Equal(t, store.Labels{"zone": "eu"}, a.WorkerSelector)

	inUse, err := s.SelectorsInUse(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []store.RunnerSelector{{Runner: "shell", Selector: store.Labels{"zone": "eu"}}, {Runner: "shell", Selector: store.Labels{"zone": "ap"}}}, inUse)

	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"shell"}, Labels: store.Labels{"zone": "eu"}, Concurrency: 1})
	require.NoError(t, err)
	require.Equal(t, store.Labels{"zone": "eu"}, w.Labels)
	plain, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "plain", Runners: []string{"shell"}, Concurrency: 1})
	require.NoError(t, err)
	require.Equal(t, store.Labels{}, plain.Labels)
	got, err := s.WorkerGet(ctx, "w", time.Minute)
	require.NoError(t, err)
	require.Equal(t, store.Labels{"zone": "eu"}, got.Labels)
}

// A selected execution waits while a live worker of its runner has its labels, and fails with
// the reason once it has waited past its wait without one; a worker of the runner without
// the labels does not count. The unselected wait stays the runner's own.
func TestWorkerSelectorWaitTimesOut(t *testing.T) {
	t.Parallel()
	ctx, s := routingFixture(t)
	_, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "us", Runners: []string{"shell"}, Labels: store.Labels{"zone": "us"}, Concurrency: 1})
	require.NoError(t, err)
	eu, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.eu", Admitted: true})
	require.NoError(t, err)
	plain, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `UPDATE attune.execution SET created = now() - interval '2 minutes'`)
	require.NoError(t, err)

	young, err := s.ExecutionFailUnrunnable(ctx, store.UnrunnableParams{NoWorker: 0, Selected: time.Hour, AliveWithin: time.Minute})
	require.NoError(t, err)
	require.Empty(t, young, "it may still get its worker")

	_, err = s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "eu", Runners: []string{"shell"}, Labels: store.Labels{"zone": "eu", "gpu": "true"}, Concurrency: 1})
	require.NoError(t, err)
	served, err := s.ExecutionFailUnrunnable(ctx, store.UnrunnableParams{Selected: time.Minute, AliveWithin: time.Minute})
	require.NoError(t, err)
	require.Empty(t, served, "a live worker has the labels, and more")

	require.NoError(t, s.WorkerSetInactive(ctx, "eu"))
	failed, err := s.ExecutionFailUnrunnable(ctx, store.UnrunnableParams{NoWorker: time.Hour, Selected: time.Minute, AliveWithin: time.Minute})
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, eu.ID, failed[0].ID)
	require.Equal(t, store.ExecutionFailed, failed[0].Status)
	require.Equal(t, `no live worker has labels zone=eu and runner "shell"; waited 1m0s`, *failed[0].Reason)
	left, err := s.ExecutionGet(ctx, plain.ID)
	require.NoError(t, err)
	require.Equal(t, store.ExecutionRequested, left.Status, "a worker of its runner is up")
}

// The sweeper failing a selected execution and a worker claiming it race: exactly one wins,
// and the worker runs nothing that failed.
func TestWorkerSelectorTimeoutRacesClaim(t *testing.T) {
	t.Parallel()
	ctx, s := routingFixture(t)
	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "late", Runners: []string{"shell"}, Labels: store.Labels{"zone": "eu"}, Concurrency: 1})
	require.NoError(t, err)
	require.NoError(t, s.WorkerSetInactive(ctx, "late")) // not yet live as the sweeper sees it
	const n = 40
	ids := make([]int64, n)
	for i := range ids {
		e, err := s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.eu", Admitted: true, Status: store.ExecutionScheduled})
		require.NoError(t, err)
		ids[i] = e.ID
	}
	_, err = s.Pool().Exec(ctx, `UPDATE attune.execution SET created = now() - interval '2 minutes'`)
	require.NoError(t, err)

	var wg sync.WaitGroup
	claimed := make(map[int64]bool)
	var failed []store.Execution
	var failErr, claimErr error
	started := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		<-started // the claims are under way
		failed, failErr = s.ExecutionFailUnrunnable(ctx, store.UnrunnableParams{NoWorker: time.Hour, Selected: time.Minute, AliveWithin: time.Minute})
	}()
	go func() {
		defer wg.Done()
		for i := n - 1; i >= 0 && claimErr == nil; i-- { // from the other end, so that the two meet
			claimed[ids[i]], _, claimErr = func() (bool, int, error) {
				_, ok, err := s.ExecutionClaim(ctx, ids[i], w.ID)
				return ok, 0, err
			}()
			if i == n-1 {
				close(started)
			}
		}
	}()
	wg.Wait()
	require.NoError(t, failErr)
	require.NoError(t, claimErr)
	t.Logf("failed %d of %d", len(failed), n)
	for _, f := range failed {
		require.False(t, claimed[f.ID], "execution %d failed and was claimed", f.ID)
	}
	for _, id := range ids {
		e, err := s.ExecutionGet(ctx, id)
		require.NoError(t, err)
		if claimed[id] {
			require.Equal(t, store.ExecutionRunning, e.Status)
		} else {
			require.Equal(t, store.ExecutionFailed, e.Status, "execution %d neither claimed nor failed", id)
		}
	}
}
