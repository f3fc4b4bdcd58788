package rules

import (
	"context"
	"encoding/json"
	"fmt"

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
	err           error
}

func compile(r store.Rule) compiledRule {
	c := compiledRule{rule: r}
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
		}
	}
	if len(r.TriggerParams) > 0 {
		if err := json.Unmarshal(r.TriggerParams, &c.triggerParams); err != nil {
			c.err = fmt.Errorf("decode trigger_params: %w", err)
		}
	}
	return c
}

// ruleSet is the enabled rules of one trigger as cached, with the component version they were read
// at.
type ruleSet struct {
	rules   []compiledRule
	version int64
}

// loadRules reads and compiles the enabled rules of one trigger. The version is read first,
// so that a change committing between the two reads leaves the set labelled older than it is,
// which costs a reload, never a missed rule.
func (m *Module) loadRules(ctx context.Context, trigger string) (ruleSet, error) {
	version, err := m.deps.Store.ComponentVersion(ctx)
	if err != nil {
		return ruleSet{}, err
	}
	rows, err := m.deps.Store.RuleListEnabledByTrigger(ctx, trigger)
	if err != nil {
		return ruleSet{}, err
	}
	rules := make([]compiledRule, len(rows))
	for i, r := range rows {
		rules[i] = compile(r)
	}
	return ruleSet{rules: rules, version: version}, nil
}

// rulesFor returns the enabled rules of trigger, reloading them when rules changed since they
// were cached and the NOTIFY that would have dropped them has not arrived yet.
func (m *Module) rulesFor(ctx context.Context, trigger string) ([]compiledRule, error) {
	set, err := m.rules.Get(ctx, trigger)
	if err != nil {
		return nil, err
	}
	current, err := m.deps.Store.ComponentVersion(ctx)
	if err != nil {
		return nil, err
	}
	if set.version < current {
		m.rules.Drop()
		if set, err = m.rules.Get(ctx, trigger); err != nil {
			return nil, err
		}
	}
	return set.rules, nil
}
