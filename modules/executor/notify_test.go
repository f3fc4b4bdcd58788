package executor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/executor"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// notes records what the executor tells the live stream.
type notes struct {
	mu  sync.Mutex
	got []broker.Notification
}

func (n *notes) Notify(ns ...broker.Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, ns...)
}

// of lists execution id's notified statuses in order, each with the previous status when
// the executor gave one: "requested>scheduled".
func (n *notes) of(id int64) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.got {
		if x.Kind == broker.NotifyExecution && x.ID == id {
			if x.PreviousStatus != "" {
				out = append(out, x.PreviousStatus+">"+x.Status)
			} else {
				out = append(out, x.Status)
			}
		}
	}
	return out
}

// wait waits until execution id's notifications are want: they follow their commits at once,
// but after them.
func (n *notes) wait(t *testing.T, id int64, want ...string) {
	t.Helper()
	require.Eventually(t, func() bool { return fmt.Sprint(n.of(id)) == fmt.Sprint(want) }, 10*time.Second, 5*time.Millisecond,
		"execution %d: notified %v, want %v", id, n.of(id), want)
}

// Every status the executor commits is notified once, after its commit: executions inserted
// for enforcements (scheduled at once, failed on bad parameters, requested under a policy),
// admission's refusals, scheduling, and queue timeouts.
func TestStatusChangesAreNotified(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := storetest.NewStore(t)
	action := func(ref, params string) store.Action {
		return store.Action{Ref: ref, RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true, Parameters: json.RawMessage(params)}
	}
	_, err := st.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "demo"},
		Triggers: []store.Trigger{{Ref: "demo.hook"}},
		Actions:  []store.Action{action("demo.free", `{}`), action("demo.typed", `{"n": {"type": "integer"}}`), action("demo.capped", `{}`)},
		Policies: []store.Policy{{Ref: "demo.one", ActionRef: ptr("demo.capped"), Enabled: true, ConcurrencyLimit: ptr(1),
			ConcurrencyMethod: "cancel"}},
	})
	require.NoError(t, err)
	_, err = st.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"noop"}, Concurrency: 1})
	require.NoError(t, err)

	br := membroker.New(broker.Options{})
	defer br.Close()
	heard := &notes{}
	done := startExecutor(ctx, t, executor.Config{}, executor.Deps{Logger: slog.New(slog.DiscardHandler), Store: st, Broker: br, Notifier: heard, Sealer: storetest.Keyring(t)})

	ev, err := st.EventInsert(ctx, store.EventInsertParams{TriggerRef: "demo.hook"})
	require.NoError(t, err)
	// enforce announces an enforcement of actionRef with params and returns its execution.
	rules := 0
	enforce := func(actionRef, params string) int64 {
		rules++
		enf, _, err := st.EnforcementInsert(ctx, store.EnforcementInsertParams{RuleRef: fmt.Sprintf("demo.rule%d", rules), TriggerRef: "demo.hook", EventID: ev.ID})
		require.NoError(t, err)
		require.NoError(t, broker.Send(ctx, br, broker.EnforcementCreated{EnforcementID: enf.ID, RuleRef: enf.RuleRef, EventID: ev.ID,
			ActionRef: actionRef, Config: json.RawMessage(params)}))
		var id int64
		require.Eventually(t, func() bool {
			execs, _, err := st.ExecutionList(ctx, store.ExecutionFilter{ActionRef: actionRef}, store.Page{Limit: 100})
			require.NoError(t, err)
			for _, e := range execs {
				if e.EnforcementID != nil && *e.EnforcementID == enf.ID {
					id = e.ID
					return true
				}
			}
			return false
		}, 10*time.Second, 5*time.Millisecond)
		return id
	}

	heard.wait(t, enforce("demo.free", `{}`), "scheduled")
	heard.wait(t, enforce("demo.typed", `{"n": "three"}`), "failed")
	// Admission is decided as the execution is created: admitted (scheduled at once), or
	// refused by the policy's method cancel.
	first := enforce("demo.capped", `{}`)
	heard.wait(t, first, "scheduled")
	heard.wait(t, enforce("demo.capped", `{}`), "cancelled")

	// An execution an older version created undecided, admitted late into the queue, where
	// it waits past its queue timeout.
	_, err = st.PolicyUpdate(ctx, "demo.one", store.Policy{Ref: "demo.one", ActionRef: ptr("demo.capped"), Enabled: true,
		ConcurrencyLimit: ptr(1), QueueTimeoutSeconds: ptr(1)})
	require.NoError(t, err)
	late, err := st.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.capped"})
	require.NoError(t, err)
	require.NoError(t, broker.Send(ctx, br, broker.ExecutionRequested{ExecutionID: late.ID, ActionRef: late.ActionRef}))
	heard.wait(t, late.ID, "requested>failed")
	cancel()
	require.NoError(t, <-done)
}
