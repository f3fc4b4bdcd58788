package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

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

// ruleCache holds the enabled rules by trigger. It is trusted only while a listener is
// watching for rule changes; each change or loss of the listener drops it.
type ruleCache struct {
	load func(ctx context.Context) ([]store.Rule, error)

	mu         sync.Mutex
	byTrigger  map[string][]compiledRule
	generation uint64 // bumped by every invalidation, so a load that raced one is not kept
	listening  bool
}

func newRuleCache(load func(ctx context.Context) ([]store.Rule, error)) *ruleCache {
	return &ruleCache{load: load}
}

func (c *ruleCache) invalidate(listening bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byTrigger = nil
	c.generation++
	c.listening = listening
}

func (c *ruleCache) forTrigger(ctx context.Context, trigger string) ([]compiledRule, error) {
	c.mu.Lock()
	if c.byTrigger != nil {
		rules := c.byTrigger[trigger]
		c.mu.Unlock()
		return rules, nil
	}
	gen := c.generation
	c.mu.Unlock()

	rows, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	byTrigger := make(map[string][]compiledRule)
	for _, r := range rows {
		byTrigger[r.TriggerRef] = append(byTrigger[r.TriggerRef], compile(r))
	}
	c.mu.Lock()
	if c.listening && c.generation == gen {
		c.byTrigger = byTrigger
	}
	c.mu.Unlock()
	return byTrigger[trigger], nil
}
