package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/ruleeval"
	"github.com/attune-go/attune/store"
)

// handleEnforcement creates the one execution of an enforcement, its admission decided in the
// same transaction (store.ExecutionCreate), and dispatches it when admitted. A redelivered
// message, or two executors racing on one, create exactly one: the second finds the first's
// execution and finishes what the first may not have (its dispatch). The message normally
// carries the rule's action and the rendered parameters as they were at match time; that is
// what runs.
func (m *Module) handleEnforcement(ctx context.Context, msg broker.Message) error {
	p, err := broker.Decode[broker.EnforcementCreated](msg)
	if err != nil {
		return err
	}
	if err := m.watch.Check(ctx); err != nil {
		return err
	}
	actionRef, config, failure := p.ActionRef, p.Config, p.Failure
	// The enforcement's trace, which its execution joins; without it (a message from before
	// traces) execution_create takes it from the enforcement's row.
	trace := msg.Headers.TraceID
	var secrets []string
	if actionRef == "" {
		// A message without the match's snapshot (the sweeper's, or one whose action has
		// secret parameters, which never travel in a message): read the enforcement and its
		// rule back.
		enf, err := m.deps.Store.EnforcementGetTarget(ctx, p.EnforcementID)
		if errors.Is(err, store.ErrNotFound) {
			return broker.Permanent(err)
		}
		if err != nil {
			return err
		}
		// What the rule matched with runs, as it does from a message's snapshot; only an
		// enforcement recorded before Attune kept its action is checked against its rule now.
		if enf.Status == store.EnforcementCreated && !enf.Matched {
			switch {
			case enf.ActionRef == "":
				return m.deps.Store.EnforcementResolve(ctx, enf.ID, store.EnforcementDisabled, "rule "+enf.RuleRef+" was deleted before its execution was created")
			case !enf.RuleEnabled:
				return m.deps.Store.EnforcementResolve(ctx, enf.ID, store.EnforcementDisabled, "rule "+enf.RuleRef+" was disabled before its execution was created")
			}
		}
		actionRef, config, secrets, trace = enf.ActionRef, enf.Config, enf.Secrets, enf.Trace()
		if enf.Reason != nil {
			failure = *enf.Reason
		}
	}
	create, action, err := m.executionFor(ctx, m.actions.Get, m.deps.Store.KeyLookup, nil, actionRef, config, secrets)
	if err != nil {
		return err
	}
	if failure != "" {
		// The rule matched but its parameters could not be rendered: the execution it meant
		// to start fails with the reason, like one whose parameters do not fit the action.
		create.Refusal = failure
	}
	create.EnforcementID, create.TraceID = &p.EnforcementID, trace
	c, err := m.deps.Store.ExecutionCreateOne(ctx, create)
	if err != nil {
		return err
	}
	if m.deps.Metrics != nil && !p.Created.IsZero() && c.Outcome != store.CreateExists && c.Outcome != store.CreateSkipped {
		m.deps.Metrics.Stage("created", c.Execution.Created.Sub(p.Created))
	}
	return m.created(ctx, c, action)
}

// created acts on what ExecutionCreate did: an admitted execution is dispatched, and one that
// a previous delivery created is dispatched again if it may never have been (a duplicate
// dispatch is harmless: the claim is conditional).
func (m *Module) created(ctx context.Context, c store.ExecutionCreated, action *store.Action) error {
	exec := c.Execution
	switch c.Outcome {
	case store.CreateSkipped:
		return nil
	case store.CreateExists:
		if exec.Status != store.ExecutionScheduled || exec.WorkerID != nil {
			return nil
		}
		return m.dispatchAll(ctx, []store.Execution{exec})
	case store.CreateCancelled, store.CreateFailed:
		m.deps.Logger.InfoContext(ctx, "execution refused by its policy", "execution_id", exec.ID, "action", exec.ActionRef, "status", exec.Status,
			"trace_id", exec.Trace())
	case store.CreateQueued:
		m.deps.Logger.DebugContext(ctx, "execution queued by its policy", "execution_id", exec.ID, "action", exec.ActionRef, "trace_id", exec.Trace())
	}
	m.notify("", exec)
	if c.Outcome != store.CreateAdmitted {
		return nil
	}
	if action == nil {
		return m.dispatchAll(ctx, []store.Execution{exec})
	}
	return m.dispatch(ctx, exec, *action)
}

// actionGetter reads an action by ref.
type actionGetter func(ctx context.Context, ref string) (store.Action, error)

// executionFor describes the execution of actionRef with params checked against the
// action's schema and its defaults applied, and returns the action when it can run. Parameters
// that do not fit, or an action that does not exist, give an execution that is failed from the
// start with the reason, so the operator sees what went wrong where they look for the
// execution. The execution records as secret what the action declares secret, what the
// enforcement recorded (secrets) and every parameter whose value holds a seal token; the
// values of those it names are sealed before the row is written, refused or not (package
// store/seal), so that only the worker sees them in clear.
func (m *Module) executionFor(ctx context.Context, actions actionGetter, keys keyLookup, user *int64, actionRef string, params json.RawMessage,
	secrets []string) (store.ExecutionCreateParams, *store.Action, error) {
	create, action, err := m.describeExecution(ctx, actions, keys, user, actionRef, params, secrets)
	if err != nil {
		return create, nil, err
	}
	create.Secrets = pack.WithSealed(create.Secrets, create.Parameters)
	if create.Parameters, err = m.deps.Sealer.SealParams(create.Parameters, create.Secrets); err != nil {
		return create, nil, fmt.Errorf("execution of %s: %w", actionRef, err)
	}
	return create, action, nil
}

// describeExecution is executionFor before the sealing.
func (m *Module) describeExecution(ctx context.Context, actions actionGetter, keys keyLookup, user *int64, actionRef string, params json.RawMessage,
	secrets []string) (store.ExecutionCreateParams, *store.Action, error) {
	create := store.ExecutionCreateParams{ActionRef: actionRef, Parameters: params, Secrets: secrets}
	action, err := actions(ctx, actionRef)
	switch {
	case errors.Is(err, store.ErrNotFound):
		create.Refusal = fmt.Sprintf("action %s does not exist", actionRef)
		return create, nil, nil
	case err != nil:
		return create, nil, err
	}
	// Decoded once for every use below: this runs for every execution a rule or a workflow makes.
	schema, err := pack.StoredSchema(action.Parameters)
	if err != nil {
		create.Refusal = err.Error()
		return create, nil, nil
	}
	create.Secrets = append(schema.Secrets(), secrets...)
	if !action.Enabled {
		create.Refusal = fmt.Sprintf("action %s is disabled", actionRef)
		return create, nil, nil
	}
	var values map[string]any
	if err := json.Unmarshal(params, &values); err != nil {
		create.Refusal = fmt.Sprintf("rendered parameters are not a JSON object: %v", err)
		return create, nil, nil
	}
	values, err = schema.RenderDefaults(ctx, values, func(ctx context.Context, refs []ruleeval.KeyRef) (map[string]any, error) {
		kv, _, err := readKeys(ctx, keys, packOf(actionRef), user, refs)
		return kv, err
	})
	var bad *ruleeval.PathError
	if errors.As(err, &bad) {
		// A default that does not render fails the execution, as a parameter that does not fit.
		create.Refusal = err.Error()
		return create, nil, nil
	}
	if err != nil {
		return create, nil, err
	}
	checked, names, err := schema.CheckExecution(values, secrets)
	create.Secrets = names
	if err != nil {
		create.Refusal = err.Error()
		return create, nil, nil
	}
	create.Parameters = checked
	create.TimeoutSeconds = &action.TimeoutSeconds
	return create, &action, nil
}
