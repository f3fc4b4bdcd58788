package pack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/attune-go/attune/modules/ruleeval"
	"github.com/attune-go/attune/modules/schedule"
	"github.com/attune-go/attune/store"
)

// CoreRef is the ref of the built-in core pack, which every process registers at start.
const CoreRef = "core"

// The checks below are for components that come one at a time without their pack's
// directory, such as those sent to the API. They apply the loader's rules, packRef being the
// pack the component belongs to (its form is checked here, its existence is the caller's to
// check), and fill in what the loader fills in: the full ref and the short name, normalised
// JSON values and schemas. The caller sets the defaults the loader starts a file from
// (output_format, timeout_seconds, enabled).

// ValidateAction checks an action as the loader checks actions/*.yaml. Whether its entry
// point exists is CheckScript's question, since only the pack's directory can answer it.
func ValidateAction(a *Action, packRef string) error {
	if err := checkPackRef(packRef); err != nil {
		return fieldError("pack_ref", err)
	}
	return lone(a.validate(packRef))
}

// ValidateTrigger checks a trigger as the loader checks triggers/*.yaml.
func ValidateTrigger(t *Trigger, packRef string) error {
	if err := checkPackRef(packRef); err != nil {
		return fieldError("pack_ref", err)
	}
	return lone(t.validate(packRef))
}

// ValidateRule checks a rule as the loader checks rules/*.yaml. What it names is CheckRule's
// question.
func ValidateRule(r *Rule, packRef string) error {
	if err := checkPackRef(packRef); err != nil {
		return fieldError("pack_ref", err)
	}
	return lone(r.validate(packRef))
}

// CheckPackRef checks the form of a pack's ref, such as the pack part of a component's ref.
func CheckPackRef(ref string) error { return checkPackRef(ref) }

// lone names the field of the one error validate leaves without: a ref outside the pack,
// which for a lone component is a ref outside its pack_ref.
func lone(err error) error {
	var e *Error
	if errors.As(err, &e) && e.Field == "" {
		c := *e
		c.Field = "pack_ref"
		return &c
	}
	return err
}

// CheckScript checks that entryPoint, already validated, names a script under the actions/
// directory of the pack in packDir, as loading the pack does: a regular file, executable, not
// a link out of the pack.
func CheckScript(packDir, entryPoint string) error {
	if packDir == "" {
		return fieldError("entry_point", errors.New("the pack has no directory on this server to hold scripts"))
	}
	l := &loader{fsys: os.DirFS(packDir), dir: ".", root: packDir}
	if err := l.script("actions", entryPoint, true); err != nil {
		return fieldError("entry_point", err)
	}
	return nil
}

// CheckRule checks a validated rule against what is registered, as Register checks each rule
// of a pack: its trigger and action exist, its trigger_params fit the trigger's parameter
// schema (and, on a timer, make a schedule), its conditions and templates compile, and its
// literal action_params fit the action's parameter schema. Problems come back as *Error naming
// the field; a store failure comes back as it is.
func CheckRule(ctx context.Context, r Registrar, rule Rule) error {
	trigger, err := r.TriggerGetByRef(ctx, rule.TriggerRef)
	if errors.Is(err, store.ErrNotFound) {
		return fieldError("trigger_ref", fmt.Errorf("no trigger %q", rule.TriggerRef))
	}
	if err != nil {
		return err
	}
	action, err := r.ActionGetByRef(ctx, rule.ActionRef)
	if errors.Is(err, store.ErrNotFound) {
		return fieldError("action_ref", fmt.Errorf("no action %q", rule.ActionRef))
	}
	if err != nil {
		return err
	}
	params, err := StoredSchema(trigger.Parameters)
	if err != nil {
		return fmt.Errorf("parameters of trigger %s: %w", trigger.Ref, err)
	}
	actionParams, err := StoredSchema(action.Parameters)
	if err != nil {
		return fmt.Errorf("parameters of action %s: %w", action.Ref, err)
	}
	return checkRuleBody(rule, &params, &actionParams)
}

// CheckTriggerParams checks a rule's stored trigger_params against a trigger's parameter
// schema, for a caller about to change the schema under rules that use it.
func CheckTriggerParams(params Schema, triggerParams json.RawMessage) error {
	values := map[string]any{}
	if len(triggerParams) > 0 {
		if err := json.Unmarshal(triggerParams, &values); err != nil {
			return fieldError("trigger_params", err)
		}
	}
	_, err := params.Apply(values)
	return paramField("trigger_params", err)
}

// CheckActionParams checks a rule's stored action_params against an action's parameter
// schema, as CheckRule does, for a caller about to change the schema under rules that run it.
func CheckActionParams(params Schema, actionParams json.RawMessage) error {
	values := map[string]any{}
	if len(actionParams) > 0 {
		if err := json.Unmarshal(actionParams, &values); err != nil {
			return fieldError("action_params", err)
		}
	}
	_, err := params.apply(values, rendered)
	return paramField("action_params", err)
}

// StoredSchema decodes a parameter schema as the store keeps it.
func StoredSchema(raw json.RawMessage) (Schema, error) {
	var s Schema
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("decode parameter schema: %w", err)
		}
	}
	return s, nil
}

// checkRuleBody checks what a rule says beyond its references, given the parameter schemas of
// its trigger and its action: the rule matcher would otherwise find out at the first event, a
// timer or webhook rule whose trigger_params do not fit would never fire at all, and one whose
// action_params do not fit would fail every execution it made. A nil schema is one not known
// here, whose check is left out.
func checkRuleBody(rule Rule, triggerParams, actionParams *Schema) error {
	if triggerParams != nil {
		if _, err := triggerParams.Apply(rule.TriggerParams); err != nil {
			return paramField("trigger_params", err)
		}
		if schedule.IsTimer(rule.TriggerRef) {
			if err := checkSchedule(rule); err != nil {
				return err
			}
		}
	}
	if _, err := ruleeval.ParseConditions(rule.Conditions); err != nil {
		return pathField("conditions", err)
	}
	if err := ruleeval.ValidateTemplates(rule.ActionParams); err != nil {
		return pathField("action_params", err)
	}
	if actionParams == nil {
		return nil
	}
	_, err := actionParams.apply(rule.ActionParams, rendered)
	return paramField("action_params", err)
}

// CheckRuleWithin checks rule as CheckRule does, as far as the components of known answer,
// for a caller without a server such as "attune rule test" with the core pack: trigger_params
// (and a timer's schedule) when known has the rule's trigger, literal action_params when it
// has the rule's action, conditions and templates always. Problems come back as *Error
// naming the field.
func CheckRuleWithin(known *Pack, rule Rule) error {
	var triggerParams, actionParams *Schema
	for i, t := range known.Triggers {
		if t.Ref == rule.TriggerRef {
			triggerParams = &known.Triggers[i].Parameters
		}
	}
	for i, a := range known.Actions {
		if a.Ref == rule.ActionRef {
			actionParams = &known.Actions[i].Parameters
		}
	}
	return checkRuleBody(rule, triggerParams, actionParams)
}

// checkSchedule reads a timer rule's schedule from its trigger_params as they will be stored,
// with the parser the timers use.
func checkSchedule(rule Rule) error {
	raw, err := json.Marshal(rule.TriggerParams)
	if err != nil {
		return fieldError("trigger_params", err)
	}
	_, err = schedule.Parse(rule.TriggerRef, raw)
	var serr *schedule.Error
	if errors.As(err, &serr) {
		return fieldError(joinField("trigger_params", serr.Param), serr.Err)
	}
	return err
}

// rendered defers to run time a rule's value that a {{ }} template makes, whose syntax
// ValidateTemplates has checked: one template alone takes its type from the event. Text with
// templates in it renders to a string, which only a string (or any) parameter takes.
func rendered(p Param, v any) (bool, error) {
	s, ok := v.(string)
	if !ok {
		return false, nil
	}
	templated, keepsType := ruleeval.Templated(s)
	switch {
	case !templated:
		return false, nil
	case keepsType || p.Type == TypeString || p.Type == TypeAny:
		return true, nil
	}
	return false, fmt.Errorf("want %s, got text with {{ }} templates, which renders to a string; a value that is one {{ }} template alone keeps the type of its result", p.Type)
}

// pathField names the field of a problem ruleeval locates (conditions[1].any[0],
// action_params.message) once, as its field; other errors name base.
func pathField(base string, err error) error {
	var pe *ruleeval.PathError
	if errors.As(err, &pe) && pe.Path != "" {
		return fieldError(pe.Path, pe.Err)
	}
	return fieldError(base, err)
}

// paramField names the field of a parameter problem found by Apply under base, such as
// action_params.count; other errors name base.
func paramField(base string, err error) error {
	if err == nil {
		return nil
	}
	var pe *paramError
	if errors.As(err, &pe) {
		return fieldError(joinField(base, pe.name), shortError(pe.err))
	}
	return fieldError(base, err)
}
