package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/store"
)

// admissionTick is how often waiters are looked at apart from completions: rate windows open
// with time rather than with a completion, and queue timeouts expire. Releasing a slot and
// admitting the next waiter never waits for it: that happens in the transaction that ends an
// execution, whichever process writes it.
const admissionTick = 250 * time.Millisecond

// insertAdmitted records the execution of an enforcement and decides its admission in one
// transaction, so that no execution under a policy can reach the scheduler unadmitted, however
// a process dies. It reports the execution, whether this call created it, and the outcome.
func (m *Module) insertAdmitted(ctx context.Context, insert store.ExecutionInsertParams, pol store.Policy) (store.Execution, bool, string, error) {
	var exec store.Execution
	var created bool
	var outcome string
	err := m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		var err error
		exec, created, err = q.ExecutionInsertForEnforcement(ctx, insert)
		if err != nil || !created || exec.Status != store.ExecutionRequested {
			return err
		}
		outcome, err = q.AdmissionAdmit(ctx, admitParams(exec, pol))
		return err
	})
	return exec, created, outcome, err
}

// admit decides an execution that reached the scheduler without a decision (made through
// the API, or its decision lost with a process), and reports whether it may be scheduled.
func (m *Module) admit(ctx context.Context, exec store.Execution) (bool, error) {
	pol, err := m.policies.Get(ctx, exec.ActionRef)
	if err != nil {
		return false, err
	}
	if pol.ID == 0 {
		_, err := m.deps.Store.ExecutionAdmitFree(ctx, exec.ID)
		return err == nil, err
	}
	outcome, err := m.deps.Store.AdmissionAdmit(ctx, admitParams(exec, pol))
	if err != nil {
		return false, err
	}
	return outcome == store.AdmissionAdmitted, m.admitted(ctx, exec, outcome)
}

// admitted acts on an admission's outcome: an execution refused for good passes the
// completion listener like every other ending.
func (m *Module) admitted(ctx context.Context, exec store.Execution, outcome string) error {
	switch outcome {
	case store.AdmissionCancelled, store.AdmissionFailed:
		m.deps.Logger.InfoContext(ctx, "execution refused by its policy", "execution_id", exec.ID, "action", exec.ActionRef, "status", outcome)
		// The outcome names the status admission gave it, in the statement that decided.
		ended := exec
		ended.Status, ended.Updated = outcome, time.Now().UTC()
		m.notify(store.ExecutionRequested, ended)
		return broker.Send(ctx, m.deps.Broker, broker.ExecutionCompleted{
			ExecutionID: exec.ID, ActionRef: exec.ActionRef, Status: outcome, FinishedAt: ended.Updated,
		})
	case store.AdmissionQueued:
		m.deps.Logger.DebugContext(ctx, "execution queued by its policy", "execution_id", exec.ID, "action", exec.ActionRef)
	}
	return nil
}

func admitParams(exec store.Execution, pol store.Policy) store.AdmitParams {
	return store.AdmitParams{
		ExecutionID: exec.ID, ActionRef: exec.ActionRef, Policy: pol,
		GroupKey: groupKey(exec.Parameters, pol.ConcurrencyParameters),
	}
}

// groupKey names an execution's queue within its action: the JSON array of the values of the
// grouping parameters, a missing one as null. Parameters are checked and defaulted before,
// so equal values give equal keys.
func groupKey(params json.RawMessage, names []string) string {
	if len(names) == 0 {
		return ""
	}
	var values map[string]json.RawMessage
	_ = json.Unmarshal(params, &values)
	key := make([]any, len(names))
	for i, name := range names {
		var v any
		if raw, ok := values[name]; ok {
			_ = json.Unmarshal(raw, &v)
		}
		key[i] = v
	}
	b, _ := json.Marshal(key) // values decoded from JSON always encode
	return string(b)
}

// admissionLoop expires waiters past their queue timeout and admits those whose rate window
// opened or whose policy changed, until ctx ends. Every executor replica runs it; the group
// locks make the replicas' decisions one sequence.
func (m *Module) admissionLoop(ctx context.Context) error {
	return m.every(ctx, admissionTick, "admission pass", m.admissionPass)
}

func (m *Module) admissionPass(ctx context.Context) error {
	if m.policiesChanged.Swap(false) {
		if err := m.deps.Store.AdmissionApplyPolicies(ctx); err != nil {
			m.policiesChanged.Store(true)
			return err
		}
	}
	expired, err := m.deps.Store.AdmissionExpire(ctx)
	if err != nil {
		return err
	}
	m.notify(store.ExecutionRequested, expired...)
	var msgs []broker.Payload
	for _, e := range expired {
		m.deps.Logger.InfoContext(ctx, "execution waited too long in its queue", "execution_id", e.ID, "action", e.ActionRef)
		msgs = append(msgs, broker.ExecutionCompleted{ExecutionID: e.ID, ActionRef: e.ActionRef, Status: e.Status, FinishedAt: time.Now().UTC()})
	}
	if err := broker.Send(ctx, m.deps.Broker, msgs...); err != nil {
		return fmt.Errorf("announce expired waiters: %w", err)
	}
	promoted, err := m.deps.Store.AdmissionPromoteDue(ctx)
	if err != nil || len(promoted) == 0 {
		return err
	}
	return m.scheduleWaiting(ctx)
}

// onPoliciesChanged drops the cached policies and has the next pass bring the queues' limits
// in line.
func (m *Module) onPoliciesChanged(listening bool) {
	m.policies.Invalidate(listening)
	m.policiesChanged.Store(true)
}
