package executor_test

import (
	"context"
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

func ptr[T any](v T) *T { return &v }

// policyHarness runs an executor on its own database with action demo.run under pol and a
// registered worker (nothing runs the work: the tests end executions as a worker would).
type policyHarness struct {
	t   *testing.T
	ctx context.Context
	st  *store.Store
	br  broker.Broker
}

func startPolicyHarness(t *testing.T, pol store.Policy) policyHarness {
	t.Helper()
	h := startHarness(t, func(st *store.Store) executor.Store { return st })
	pol.ActionRef, pol.Enabled = ptr("demo.run"), true
	_, err := h.st.PolicyCreate(h.ctx, pol)
	require.NoError(t, err)
	return h
}

// startHarness runs the executor on the store as wrap presents it, without a policy yet.
func startHarness(t *testing.T, wrap func(*store.Store) executor.Store) policyHarness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := storetest.NewStore(t)
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:    store.Pack{Ref: "demo"},
		Actions: []store.Action{{Ref: "demo.run", RunnerType: "shell", EntryPoint: "run.sh", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
	})
	require.NoError(t, err)
	_, err = st.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"shell"}, Concurrency: 8})
	require.NoError(t, err)

	br := membroker.New(broker.Options{})
	done := startExecutor(ctx, t, executor.Config{}, executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: wrap(st), Broker: br, Sealer: storetest.Keyring(t)})
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_ = br.Close()
	})
	return policyHarness{t: t, ctx: ctx, st: st, br: br}
}

// request makes an execution as the API does (admission left to the executor) and waits
// until the executor has decided it.
func (h policyHarness) request() int64 {
	h.t.Helper()
	e, err := h.st.ExecutionInsert(h.ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
	require.NoError(h.t, err)
	require.NoError(h.t, broker.Send(h.ctx, h.br, broker.ExecutionRequested{ExecutionID: e.ID, ActionRef: e.ActionRef}))
	require.Eventually(h.t, func() bool {
		got := h.get(e.ID)
		pos, err := h.st.ExecutionQueuePosition(h.ctx, e.ID)
		require.NoError(h.t, err)
		return got.Status != store.ExecutionRequested || pos != nil
	}, 10*time.Second, 5*time.Millisecond)
	return e.ID
}

func (h policyHarness) get(id int64) store.Execution {
	h.t.Helper()
	e, err := h.st.ExecutionGet(h.ctx, id)
	require.NoError(h.t, err)
	return e
}

func (h policyHarness) waitStatus(id int64, status string) store.Execution {
	h.t.Helper()
	var e store.Execution
	require.Eventually(h.t, func() bool {
		e = h.get(id)
		return e.Status == status
	}, 10*time.Second, 5*time.Millisecond, "execution %d never became %s", id, status)
	return e
}

// finish ends a scheduled execution as its worker would (saying whether it held a slot), and
// announces it twice, as a redelivery would.
func (h policyHarness) finish(id int64) {
	h.t.Helper()
	e, ok, err := h.st.ExecutionTransition(h.ctx, store.ExecutionTransition{
		ID: id, From: []string{store.ExecutionScheduled}, To: store.ExecutionCompleted,
	})
	require.NoError(h.t, err)
	require.True(h.t, ok)
	require.True(h.t, e.HeldSlot, "under a policy, the execution held a slot")
	done := broker.ExecutionCompleted{ExecutionID: id, ActionRef: "demo.run", Status: store.ExecutionCompleted, FinishedAt: time.Now(), HeldSlot: &e.HeldSlot}
	require.NoError(h.t, broker.Send(h.ctx, h.br, done, done))
}

// Under limit 1 the completion of the running execution schedules the next in line; the
// same completion delivered twice schedules nobody else.
func TestCompletionAdmitsNextOnce(t *testing.T) {
	t.Parallel()
	h := startPolicyHarness(t, store.Policy{Ref: "demo.one", ConcurrencyLimit: ptr(1)})
	first, second, third := h.request(), h.request(), h.request()
	h.waitStatus(first, store.ExecutionScheduled)
	require.Equal(t, store.ExecutionRequested, h.get(second).Status)

	h.finish(first)
	h.waitStatus(second, store.ExecutionScheduled)
	pos, err := h.st.ExecutionQueuePosition(h.ctx, third)
	require.NoError(t, err)
	require.Equal(t, 1, *pos, "the third still waits, first in line")
	stats, err := h.st.QueueStatsGet(h.ctx, "demo.run", nil)
	require.NoError(t, err)
	require.Equal(t, 1, stats.Active)
	require.Equal(t, 1, stats.Queued)
}

// A rate limit's waiters are admitted when the window moves on, without a completion.
func TestRateWindowOpens(t *testing.T) {
	t.Parallel()
	h := startPolicyHarness(t, store.Policy{Ref: "demo.rate", RateMaxExecutions: ptr(2), RateWindowSeconds: ptr(1)})
	ids := []int64{h.request(), h.request(), h.request()}
	h.waitStatus(ids[0], store.ExecutionScheduled)
	h.waitStatus(ids[1], store.ExecutionScheduled)
	pos, err := h.st.ExecutionQueuePosition(h.ctx, ids[2])
	require.NoError(t, err)
	require.NotNil(t, pos, "the third waits for the window")
	h.waitStatus(ids[2], store.ExecutionScheduled)
}

// A waiter past queue_timeout_seconds fails with the reason.
func TestQueueTimeoutFails(t *testing.T) {
	t.Parallel()
	h := startPolicyHarness(t, store.Policy{Ref: "demo.patient", ConcurrencyLimit: ptr(1), QueueTimeoutSeconds: ptr(1)})
	first, late := h.request(), h.request()
	h.waitStatus(first, store.ExecutionScheduled)
	failed := h.waitStatus(late, store.ExecutionFailed)
	require.Contains(t, *failed.Reason, "queue_timeout_seconds")
	require.Equal(t, store.ExecutionScheduled, h.get(first).Status)
}

// A policy created after the executor cached that its action has none holds the very next
// execution, even before the change notification arrives.
func TestPolicyCreatedHoldsNextExecution(t *testing.T) {
	t.Parallel()
	h := startHarness(t, func(st *store.Store) executor.Store { return storetest.Deaf{Store: st} })
	ctx, st := h.ctx, h.st

	free := h.request()
	h.waitStatus(free, store.ExecutionScheduled) // the executor now caches "no policy"
	_, err := st.PolicyCreate(ctx, store.Policy{Ref: "demo.one", ActionRef: ptr("demo.run"), Enabled: true, ConcurrencyLimit: ptr(1)})
	require.NoError(t, err)
	first, second := h.request(), h.request()
	h.waitStatus(first, store.ExecutionScheduled)
	pos, err := st.ExecutionQueuePosition(ctx, second)
	require.NoError(t, err)
	require.NotNil(t, pos, "the second waits behind the new limit")
	require.Equal(t, 1, *pos)
}
