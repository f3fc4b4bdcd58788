package pack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/attune-go/attune/store"
)

// Registrar is the store's side of registering a pack.
type Registrar interface {
	PackRegister(ctx context.Context, reg store.PackRegistration) (store.RegisteredPack, error)
	ActionGetByRef(ctx context.Context, ref string) (store.Action, error)
	TriggerGetByRef(ctx context.Context, ref string) (store.Trigger, error)
	RuleListByAction(ctx context.Context, actionRef string) ([]store.Rule, error)
	RuleListByTrigger(ctx context.Context, triggerRef string) ([]store.Rule, error)
}

// Register checks what loading a pack cannot check alone (that its rules name actions and
// triggers that exist, here or already registered, that their trigger_params fit their
// trigger's parameter schema and, on a timer, make a schedule, that their conditions and
// templates compile, that their literal action_params fit their action's parameter schema,
// and that other packs' rules still fit the parameters of the actions and triggers they use
// from this one), then writes the pack whole. Problems with the pack come back as *Error
// naming the file and the field; nothing is written then. CheckRule applies the same checks
// to a rule on its own.
func Register(ctx context.Context, r Registrar, p *Pack) (store.RegisteredPack, error) {
	lookup := &storeLookup{ctx: ctx, r: r}
	if err := p.CheckReferences(lookup); err != nil {
		return store.RegisteredPack{}, err
	}
	if lookup.err != nil {
		return store.RegisteredPack{}, fmt.Errorf("check references of pack %s: %w", p.Ref, lookup.err)
	}
	ownTriggers := make(map[string]Schema, len(p.Triggers))
	for _, t := range p.Triggers {
		ownTriggers[t.Ref] = t.Parameters
	}
	ownActions := make(map[string]Schema, len(p.Actions))
	for _, a := range p.Actions {
		ownActions[a.Ref] = a.Parameters
	}
	for _, rule := range p.Rules {
		triggerParams, ok := ownTriggers[rule.TriggerRef]
		if !ok {
			// CheckReferences found it registered.
			t, err := r.TriggerGetByRef(ctx, rule.TriggerRef)
			if err != nil {
				return store.RegisteredPack{}, fmt.Errorf("check rules of pack %s: %w", p.Ref, err)
			}
			if triggerParams, err = StoredSchema(t.Parameters); err != nil {
				return store.RegisteredPack{}, fmt.Errorf("check rules of pack %s: trigger %s: %w", p.Ref, t.Ref, err)
			}
		}
		actionParams, ok := ownActions[rule.ActionRef]
		if !ok {
			a, err := r.ActionGetByRef(ctx, rule.ActionRef)
			if err != nil {
				return store.RegisteredPack{}, fmt.Errorf("check rules of pack %s: %w", p.Ref, err)
			}
			if actionParams, err = StoredSchema(a.Parameters); err != nil {
				return store.RegisteredPack{}, fmt.Errorf("check rules of pack %s: action %s: %w", p.Ref, a.Ref, err)
			}
		}
		if err := checkRuleBody(rule, &triggerParams, &actionParams); err != nil {
			return store.RegisteredPack{}, inFile(rule.File, err)
		}
	}
	// The core pack comes with the binary: refusing it would stop every process from starting
	// over one rule, whose executions say what is wrong with it.
	if p.Ref != CoreRef {
		if err := p.checkOtherRules(ctx, r); err != nil {
			return store.RegisteredPack{}, err
		}
	}
	if p.Content == nil && p.Dir != "" {
		c, err := Archive(p.Dir, DefaultLimits)
		if err != nil {
			return store.RegisteredPack{}, err
		}
		p.Content = &c
	}
	reg, err := p.registration()
	if err != nil {
		return store.RegisteredPack{}, err
	}
	return r.PackRegister(ctx, reg)
}

// Detach reads the pack's files as a version and forgets its directory: a pack uploaded into
// a temporary directory has no path a worker could read, only its stored content.
func (p *Pack) Detach(lim Limits) error {
	c, err := Archive(p.Dir, lim)
	if err != nil {
		return err
	}
	p.Content, p.Dir = &c, ""
	return nil
}

// checkOtherRules refuses new parameters of the pack's actions and triggers that a rule of
// another pack using them would no longer fit: registering the pack again would otherwise
// break that rule without a word. The pack's own rules are replaced by the ones just checked.
func (p *Pack) checkOtherRules(ctx context.Context, r Registrar) error {
	for _, a := range p.Actions {
		rules, err := r.RuleListByAction(ctx, a.Ref)
		if err != nil {
			return fmt.Errorf("check rules of other packs on %s: %w", a.Ref, err)
		}
		for _, rule := range rules {
			if rule.PackRef == p.Ref {
				continue
			}
			if err := CheckActionParams(a.Parameters, rule.ActionParams); err != nil {
				return &Error{File: a.File, Field: "parameters", Err: fmt.Errorf("rule %s runs action %s and would no longer fit them: %w", rule.Ref, a.Ref, err)}
			}
		}
	}
	for _, t := range p.Triggers {
		rules, err := r.RuleListByTrigger(ctx, t.Ref)
		if err != nil {
			return fmt.Errorf("check rules of other packs on %s: %w", t.Ref, err)
		}
		for _, rule := range rules {
			if rule.PackRef == p.Ref {
				continue
			}
			if err := CheckTriggerParams(t.Parameters, rule.TriggerParams); err != nil {
				return &Error{File: t.File, Field: "parameters", Err: fmt.Errorf("rule %s uses trigger %s and would no longer fit them: %w", rule.Ref, t.Ref, err)}
			}
		}
	}
	return nil
}

// storeLookup answers CheckReferences from the store; a store failure is kept aside so that
// it is not mistaken for a missing component.
type storeLookup struct {
	ctx context.Context
	r   Registrar
	err error
}

func (l *storeLookup) ActionExists(ref string) bool {
	_, err := l.r.ActionGetByRef(l.ctx, ref)
	return l.exists(err)
}

func (l *storeLookup) TriggerExists(ref string) bool {
	_, err := l.r.TriggerGetByRef(l.ctx, ref)
	return l.exists(err)
}

func (l *storeLookup) exists(err error) bool {
	if err != nil && !errors.Is(err, store.ErrNotFound) && l.err == nil {
		l.err = err
	}
	return err == nil
}

func (p *Pack) registration() (store.PackRegistration, error) {
	reg := store.PackRegistration{Pack: store.Pack{Ref: p.Ref, Label: p.Label, Description: p.Description, Version: p.Version, Path: p.Dir}}
	if p.Content != nil {
		reg.Content = &store.PackContent{Hash: p.Content.Hash, Archive: p.Content.Archive, Size: p.Content.Size, Files: p.Content.Files}
	}
	for _, a := range p.Actions {
		sa, err := StoreAction(a, p.Ref)
		if err != nil {
			return reg, inFile(a.File, err)
		}
		reg.Actions = append(reg.Actions, sa)
	}
	for _, t := range p.Triggers {
		st, err := StoreTrigger(t, p.Ref)
		if err != nil {
			return reg, inFile(t.File, err)
		}
		reg.Triggers = append(reg.Triggers, st)
	}
	for _, s := range p.Sensors {
		params, err := encode("parameters", s.Parameters)
		if err != nil {
			return reg, inFile(s.File, err)
		}
		config, err := encode("config", s.Config)
		if err != nil {
			return reg, inFile(s.File, err)
		}
		reg.Sensors = append(reg.Sensors, store.Sensor{Ref: s.Ref, PackRef: p.Ref, Label: s.Label, Description: s.Description,
			EntryPoint: s.EntryPoint, TriggerRefs: s.TriggerRefs, Parameters: params, Config: config, Enabled: s.Enabled})
	}
	for _, r := range p.Rules {
		sr, err := StoreRule(r, p.Ref)
		if err != nil {
			return reg, inFile(r.File, err)
		}
		reg.Rules = append(reg.Rules, sr)
	}
	for _, x := range p.Policies {
		reg.Policies = append(reg.Policies, StorePolicy(x))
	}
	return reg, nil
}

// StoreAction is a, of pack packRef, as the store keeps it.
func StoreAction(a Action, packRef string) (store.Action, error) {
	params, err := encode("parameters", a.Parameters)
	if err != nil {
		return store.Action{}, err
	}
	sa := store.Action{Ref: a.Ref, PackRef: packRef, Label: a.Label, Description: a.Description, RunnerType: a.RunnerType,
		EntryPoint: a.EntryPoint, Parameters: params, OutputFormat: a.OutputFormat, TimeoutSeconds: a.TimeoutSeconds, Enabled: a.Enabled,
		Retry: storeRetry(a.Retry), WorkerSelector: a.WorkerSelector}
	if a.Workflow != nil {
		if sa.Workflow, err = encode("workflow", a.Workflow); err != nil {
			return store.Action{}, err
		}
	}
	return sa, nil
}

// StoreTrigger is t, of pack packRef, as the store keeps it.
func StoreTrigger(t Trigger, packRef string) (store.Trigger, error) {
	params, err := encode("parameters", t.Parameters)
	if err != nil {
		return store.Trigger{}, err
	}
	output, err := encode("output", t.Output)
	if err != nil {
		return store.Trigger{}, err
	}
	return store.Trigger{Ref: t.Ref, PackRef: packRef, Label: t.Label, Description: t.Description, Parameters: params, Output: output}, nil
}

// StoreRule is r, of pack packRef, as the store keeps it.
func StoreRule(r Rule, packRef string) (store.Rule, error) {
	tp, err := encode("trigger_params", r.TriggerParams)
	if err != nil {
		return store.Rule{}, err
	}
	cond, err := encode("conditions", r.Conditions)
	if err != nil {
		return store.Rule{}, err
	}
	ap, err := encode("action_params", r.ActionParams)
	if err != nil {
		return store.Rule{}, err
	}
	return store.Rule{Ref: r.Ref, PackRef: packRef, Label: r.Label, Description: r.Description, TriggerRef: r.TriggerRef,
		TriggerParams: tp, Conditions: cond, ActionRef: r.ActionRef, ActionParams: ap, Enabled: r.Enabled}, nil
}

func encode(field string, v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fieldError(field, err)
	}
	return b, nil
}
