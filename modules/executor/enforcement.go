package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// handleEnforcement creates the one execution of an enforcement. The enforcement row is
// locked and must still be created, so a redelivered message creates nothing; the unique
// constraint on execution.enforcement backs that up.
func (m *Module) handleEnforcement(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.EnforcementCreated](msg)
	if err != nil {
		return err
	}
	var requested []broker.Payload
	err = m.deps.Store.InTx(ctx, func(q *store.Queries) error {
		requested = requested[:0]
		enf, err := q.EnforcementLock(ctx, p.EnforcementID)
		if errors.Is(err, store.ErrNotFound) {
			return broker.Permanent(err)
		}
		if err != nil || enf.Status != store.EnforcementCreated {
			return err
		}
		rule, err := q.RuleGetByRef(ctx, enf.RuleRef)
		if errors.Is(err, store.ErrNotFound) {
			return q.EnforcementResolve(ctx, enf.ID, store.EnforcementDisabled, "rule "+enf.RuleRef+" was deleted before its execution was created")
		}
		if err != nil {
			return err
		}
		if !rule.Enabled {
			return q.EnforcementResolve(ctx, enf.ID, store.EnforcementDisabled, "rule "+rule.Ref+" was disabled before its execution was created")
		}
		exec, err := createExecution(ctx, q, rule.ActionRef, enf.Config, &enf.ID)
		if err != nil {
			return err
		}
		if exec.Status == store.ExecutionRequested {
			requested = append(requested, broker.ExecutionRequested{ExecutionID: exec.ID, ActionRef: exec.ActionRef})
		}
		return q.EnforcementResolve(ctx, enf.ID, store.EnforcementProcessed, "")
	})
	if err != nil {
		return fmt.Errorf("process enforcement %d: %w", p.EnforcementID, err)
	}
	return broker.Send(ctx, m.deps.Broker, requested...)
}

// createExecution records an execution of actionRef with params checked against the
// action's schema and its defaults applied. Parameters that do not fit, or an action that
// does not exist, give an execution that is failed from the start with the reason, so the
// operator sees what went wrong where they look for the execution.
func createExecution(ctx context.Context, q *store.Queries, actionRef string, params json.RawMessage, enforcement *int64) (store.Execution, error) {
	insert := store.ExecutionInsertParams{ActionRef: actionRef, Parameters: params, EnforcementID: enforcement}
	action, err := q.ActionGetByRef(ctx, actionRef)
	switch {
	case errors.Is(err, store.ErrNotFound):
		insert.Status, insert.Reason = store.ExecutionFailed, fmt.Sprintf("action %s does not exist", actionRef)
	case err != nil:
		return store.Execution{}, err
	case !action.Enabled:
		insert.Status, insert.Reason = store.ExecutionFailed, fmt.Sprintf("action %s is disabled", actionRef)
	default:
		var values map[string]any
		if err := json.Unmarshal(params, &values); err != nil {
			insert.Status, insert.Reason = store.ExecutionFailed, fmt.Sprintf("rendered parameters are not a JSON object: %v", err)
			break
		}
		checked, err := pack.CheckParameters(action.Parameters, values)
		if err != nil {
			insert.Status, insert.Reason = store.ExecutionFailed, err.Error()
			break
		}
		insert.Parameters = checked
		insert.TimeoutSeconds = &action.TimeoutSeconds
	}
	return q.ExecutionInsert(ctx, insert)
}
