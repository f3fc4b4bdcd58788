package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/modules/ruleeval"
	"github.com/attune-go/attune/store"
)

// compiledRule is a rule with its conditions parsed and parameters decoded once, not per
// event. err holds why the rule cannot be used, for its enforcements to report.
type compiledRule struct {
	rule          store.Rule
	cond          ruleeval.Condition
	params        map[string]any
	triggerParams map[string]any
	// secrets names the secret parameters of the rule's action: they are recorded on each
	// enforcement, and keep its rendered parameters out of the message that announces it.
	secrets []string
	// keys are the datastore keys its templates and conditions read (conditionKeys those of
	// its conditions), looked up for each event it matches; none for most rules.
	keys          []ruleeval.KeyRef
	conditionKeys []ruleeval.KeyRef
	err           error
}

func compile(r store.Rule) compiledRule {
	c := compiledRule{rule: r, secrets: pack.SecretNames(r.ActionParameters)}
	// First: which events a rule listens to (a webhook's url) must be known even when the
	// rest of it is unusable, or its events would pass it by without a word instead of
	// recording why it could not be evaluated.
	if len(r.TriggerParams) > 0 {
		if err := json.Unmarshal(r.TriggerParams, &c.triggerParams); err != nil {
			c.err = fmt.Errorf("decode trigger_params: %w", err)
			return c
		}
	}
	var raw any
	if len(r.Conditions) > 0 {
		if err := json.Unmarshal(r.Conditions, &raw); err != nil {
			c.err = fmt.Errorf("decode conditions: %w", err)
			return c
		}
	}
	cond, err := ruleeval.ParseConditions(raw)
	if err != nil {
		c.err = fmt.Errorf("parse conditions: %w", err)
		return c
	}
	c.cond = cond
	if len(r.ActionParams) > 0 {
		if err := json.Unmarshal(r.ActionParams, &c.params); err != nil {
			c.err = fmt.Errorf("decode action_params: %w", err)
			return c
		}
	}
	if c.keys, err = ruleeval.ParamKeyRefs(c.params); err != nil {
		c.err = err
		return c
	}
	c.conditionKeys = cond.KeyRefs()
	for _, k := range c.conditionKeys {
		if !slices.Contains(c.keys, k) {
			c.keys = append(c.keys, k)
		}
	}
	return c
}

// loadRules reads and compiles the enabled rules of one trigger; the cache keeps the result
// until rules change.
func (m *Module) loadRules(ctx context.Context, trigger string) ([]compiledRule, error) {
	rows, err := m.deps.Store.RuleListEnabledByTrigger(ctx, trigger)
	if err != nil {
		return nil, err
	}
	rules := make([]compiledRule, len(rows))
	for i, r := range rows {
		rules[i] = compile(r)
	}
	return rules, nil
}
