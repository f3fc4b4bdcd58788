package api

import (
	"encoding/json"

	"github.com/labstack/echo/v4"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// Secret parameters are shown as pack.Mask in every answer, to every role: an execution's by
// the names recorded on it when it was created, an enforcement's the same way, a rule's
// action_params and an action's defaults and enum values by the action's schema as it is, a
// workflow's variables and its tasks' results by its execution's secret values; and wherever
// it went, every string holding a seal token (a sealed secret, or a secret key a template
// placed in it) is masked whole.
// Every answer that carries one of these types goes through masked (one, listOf, answer), so
// that a new route cannot forget it.

// masked returns v with its secret values masked when it is a type that carries any.
func masked[T any](v T) T {
	var out any
	switch x := any(v).(type) {
	case store.Execution:
		out = maskExecution(x)
	case executionBody:
		x.Workflow = maskWorkflow(x.Workflow, x.Parameters, x.Secrets)
		x.Execution = maskExecution(x.Execution)
		out = x
	case store.Enforcement:
		x.Config = pack.MaskSealed(pack.MaskParameters(x.Config, x.Secrets))
		x.Reason = maskReason(x.Reason)
		out = x
	case store.Action:
		x.Parameters = pack.MaskSealed(pack.MaskSchema(x.Parameters))
		out = x
	case traceBody:
		out = maskTrace(x)
	case store.Rule:
		x.ActionParams = pack.MaskSealed(pack.MaskParameters(x.ActionParams, pack.SecretNames(x.ActionParameters)))
		out = x
	case store.Dashboard:
		// The failures are fresh copies, read for this answer alone: masking in place is safe.
		for i := range x.Failures {
			x.Failures[i].Reason = maskReason(x.Failures[i].Reason)
		}
		out = x
	default:
		return v
	}
	return out.(T)
}

// maskExecution masks an execution's secret parameters, and their values wherever its result
// repeats them: a worker scrubs an action's output, but a workflow's output is rendered by the
// executor from its input.
func maskExecution(e store.Execution) store.Execution {
	if len(e.Secrets) > 0 && len(e.Result) > 0 {
		e.Result = pack.MaskValues(e.Result, e.Parameters, e.Secrets)
	}
	e.Result = pack.MaskSealed(e.Result)
	e.Reason = maskReason(e.Reason)
	e.Parameters = pack.MaskSealed(pack.MaskParameters(e.Parameters, e.Secrets))
	return e
}

// answer writes v as the data of a status answer, masked.
func answer[T any](c echo.Context, status int, v T) error {
	return c.JSON(status, dataBody[T]{Data: masked(v)})
}

// maskGroups masks, in an action's queue figures, the values of secret parameters in the
// group keys: a key is the JSON array of the values of the policy's grouping parameters
// (modules/executor), so a policy that groups by a secret parameter would show it. A key
// whose length does not match the grouping in force (the policy changed since) is masked
// whole when the action has any secret parameter. A value holding a seal token (a secret key
// a template placed in a parameter not declared secret) is masked as well.
func maskGroups(st store.QueueStats, grouping []string, schema json.RawMessage) store.QueueStats {
	secrets := pack.SecretNames(schema)
	if len(secrets) == 0 {
		for i, g := range st.Groups {
			st.Groups[i].Key = string(pack.MaskSealed(json.RawMessage(g.Key)))
		}
		return st
	}
	secret := make([]bool, len(grouping))
	for i, name := range grouping {
		for _, s := range secrets {
			secret[i] = secret[i] || s == name
		}
	}
	for i, g := range st.Groups {
		if g.Key == "" {
			continue // the one group of a policy that groups by nothing
		}
		var values []json.RawMessage
		if json.Unmarshal([]byte(g.Key), &values) != nil || len(values) != len(grouping) {
			st.Groups[i].Key = pack.Mask
			continue
		}
		for j := range values {
			if secret[j] {
				values[j] = json.RawMessage(`"` + pack.Mask + `"`)
			}
		}
		b, err := json.Marshal(values)
		if err != nil {
			st.Groups[i].Key = pack.Mask
			continue
		}
		st.Groups[i].Key = string(pack.MaskSealed(b))
	}
	return st
}

// maskReason masks the seal tokens a reason quotes (a template's error about the value it
// computed with, recorded by a rule or a workflow).
func maskReason(reason *string) *string {
	if reason == nil {
		return nil
	}
	r := pack.MaskSealedText(*reason)
	return &r
}
