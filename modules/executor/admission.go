package executor

import (
	"context"
	"fmt"
	"time"

	"github.com/attune-go/attune/store"
)

// admissionTick is how often waiters and retries are looked at apart from completions: rate
// windows open with time rather than with a completion, queue timeouts expire, and retries
// fall due. Releasing a slot and admitting the next waiter never waits for it: that happens in
// the transaction that ends an execution, whichever process writes it.
const admissionTick = 250 * time.Millisecond

// retryBatch bounds the attempts one pass creates.
const retryBatch = 64

// admitLate decides an execution that reached the scheduler requested and undecided (created
// by an older version of Attune that admitted afterwards), and reports whether it may be
// scheduled now.
func (m *Module) admitLate(ctx context.Context, exec store.Execution) (bool, error) {
	outcome, err := m.deps.Store.ExecutionAdmitLate(ctx, exec.ID)
	if err != nil {
		return false, err
	}
	return outcome == store.CreateAdmitted, nil
}

// admissionLoop expires waiters past their queue timeout, admits those whose rate window
// opened, and creates the retries that fell due, until ctx ends. (A policy's change brings
// its queues in line in its own transaction: attune.admission_apply_policies.)
// Every executor replica runs it; the group locks make the replicas' decisions one sequence,
// and a due retry is created by whichever replica locks it first.
func (m *Module) admissionLoop(ctx context.Context) error {
	return m.every(ctx, admissionTick, "admission pass", m.admissionPass)
}

func (m *Module) admissionPass(ctx context.Context) error {
	expired, err := m.deps.Store.AdmissionExpire(ctx)
	if err != nil {
		return err
	}
	m.notify(store.ExecutionRequested, expired...)
	for _, e := range expired {
		m.deps.Logger.InfoContext(ctx, "execution waited too long in its queue", "execution_id", e.ID, "action", e.ActionRef)
	}
	if err := m.retryDue(ctx); err != nil {
		return err
	}
	promoted, err := m.deps.Store.AdmissionPromoteDue(ctx)
	if err != nil || len(promoted) == 0 && len(expired) == 0 {
		return err
	}
	// An expiry gives its place to the next waiter in its own transaction; both it and the
	// promotions leave admitted executions for the scheduler.
	return m.scheduleWaiting(ctx)
}

// retryDue creates the attempts whose delay has passed and dispatches those admitted.
func (m *Module) retryDue(ctx context.Context) error {
	for {
		attempts, err := m.deps.Store.ExecutionRetryDue(ctx, retryBatch)
		if err != nil {
			return fmt.Errorf("create due retries: %w", err)
		}
		for _, c := range attempts {
			e := c.Execution
			m.deps.Logger.InfoContext(ctx, "retrying execution", "execution_id", e.ID, "retry_of", deref(e.RetryOf),
				"attempt", e.Attempt, "action", e.ActionRef, "status", e.Status)
			if err := m.created(ctx, c, nil); err != nil {
				return err
			}
		}
		if len(attempts) < retryBatch {
			return nil
		}
	}
}
