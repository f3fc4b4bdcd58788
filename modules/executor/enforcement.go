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

// handleEnforcement creates the one execution of an enforcement. Creating it and marking the
// enforcement processed is one statement that does nothing when the execution exists or the
// enforcement was resolved, so a redelivered message, or two executors racing on one, create
// exactly one. The message normally carries the rule's action and the rendered parameters as
// they were at match time; that is what runs.
func (m *Module) handleEnforcement(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.EnforcementCreated](msg)
	if err != nil {
		return err
	}
	if err := m.watch.Check(ctx); err != nil {
		return err
	}
	actionRef, config := p.ActionRef, p.Config
	var secrets []string
	if actionRef == "" {
		// A message without the match's snapshot (the sweeper's, or one whose action has
		// secret parameters, which never travel in a message): read the enforcement and its
		// rule back.
		enf, err := m.deps.Store.EnforcementGetTarget(ctx, p.EnforcementID)
		if errors.Is(err, store.ErrNotFound) {
			return broker.Permanent(err)
		}
		if err != nil || enf.Status != store.EnforcementCreated {
			return err
		}
		switch {
		case enf.ActionRef == "":
			return m.deps.Store.EnforcementResolve(ctx, enf.ID, store.EnforcementDisabled, "rule "+enf.RuleRef+" was deleted before its execution was created")
		case !enf.RuleEnabled:
			return m.deps.Store.EnforcementResolve(ctx, enf.ID, store.EnforcementDisabled, "rule "+enf.RuleRef+" was disabled before its execution was created")
		}
		actionRef, config, secrets = enf.ActionRef, enf.Config, enf.Secrets
	}
	insert, err := m.executionFor(ctx, actionRef, config, secrets)
	if err != nil {
		return err
	}
	insert.EnforcementID = &p.EnforcementID
	var pol store.Policy
	if insert.Status == "" {
		if pol, err = m.policies.Get(ctx, actionRef); err != nil {
			return err
		}
	}
	if pol.ID == 0 && insert.Status == "" {
		// No policy: admitted and scheduled as it is created, in the same single statement,
		// then dispatched to its runner's workers.
		insert.Admitted, insert.Status = true, store.ExecutionScheduled
		exec, created, err := m.deps.Store.ExecutionInsertForEnforcement(ctx, insert)
		if err != nil || !created {
			return err
		}
		m.notify("", exec)
		if exec.Status != store.ExecutionScheduled {
			return nil
		}
		return m.dispatchAll(ctx, []store.Execution{exec})
	}
	if pol.ID == 0 {
		exec, created, err := m.deps.Store.ExecutionInsertForEnforcement(ctx, insert) // refused up front
		if created {
			m.notify("", exec)
		}
		return err
	}
	exec, created, outcome, err := m.insertAdmitted(ctx, insert, pol)
	if err != nil || !created {
		return err
	}
	m.notify("", exec)
	if exec.Status != store.ExecutionRequested {
		return nil
	}
	if outcome != store.AdmissionAdmitted {
		return m.admitted(ctx, exec, outcome)
	}
	return m.scheduleWaiting(ctx)
}

// executionFor describes the execution of actionRef with params checked against the
// action's schema and its defaults applied. Parameters that do not fit, or an action that
// does not exist, give an execution that is failed from the start with the reason, so the
// operator sees what went wrong where they look for the execution. The execution records
// as secret what the action declares secret and what the enforcement recorded (secrets).
func (m *Module) executionFor(ctx context.Context, actionRef string, params json.RawMessage, secrets []string) (store.ExecutionInsertParams, error) {
	insert := store.ExecutionInsertParams{ActionRef: actionRef, Parameters: params, Secrets: secrets}
	action, err := m.actions.Get(ctx, actionRef)
	if err == nil {
		insert.Secrets = append(pack.SecretNames(action.Parameters), secrets...)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		insert.Status, insert.Reason = store.ExecutionFailed, fmt.Sprintf("action %s does not exist", actionRef)
	case err != nil:
		return insert, err
	case !action.Enabled:
		insert.Status, insert.Reason = store.ExecutionFailed, fmt.Sprintf("action %s is disabled", actionRef)
	default:
		var values map[string]any
		if err := json.Unmarshal(params, &values); err != nil {
			insert.Status, insert.Reason = store.ExecutionFailed, fmt.Sprintf("rendered parameters are not a JSON object: %v", err)
			break
		}
		checked, names, err := pack.CheckExecutionParameters(action.Parameters, values, secrets)
		insert.Secrets = names
		if err != nil {
			insert.Status, insert.Reason = store.ExecutionFailed, err.Error()
			break
		}
		insert.Parameters = checked
		insert.TimeoutSeconds = &action.TimeoutSeconds
	}
	return insert, nil
}
