package store

import (
	"context"
	"fmt"
)

// Every change to attune.rule advances attune.component_version and notifies
// ChannelRulesChanged (migrations 00006): the rule matcher and the timers follow a rule
// written here at once, whoever writes it.

// RuleCreate adds rule r to the pack r.PackRef; a ref in use is ErrConflict, and a pack,
// trigger or action that does not exist ErrNotFound.
func (q *Queries) RuleCreate(ctx context.Context, r Rule) (Rule, error) {
	return audited(ctx, q, func(q *Queries) (Rule, error) { return q.ruleCreate(ctx, r) },
		func(x Rule) auditRecord {
			return auditRecord{"rule.create", "rule", x.Ref, ruleDetail(x)}
		})
}

// ruleCreate makes RuleCreate's change; RuleCreate records it.
func (q *Queries) ruleCreate(ctx context.Context, r Rule) (Rule, error) {
	out, err := scanRule(q.db.QueryRow(ctx, `
		INSERT INTO attune.rule (ref, pack, pack_ref, label, description, trigger, trigger_ref, trigger_params,
			conditions, action, action_ref, action_params, enabled)
		SELECT $1, p.id, p.ref, $3, $4, t.id, t.ref, $6, $7, a.id, a.ref, $9, $10
		FROM attune.pack p, attune.trigger t, attune.action a WHERE p.ref = $2 AND t.ref = $5 AND a.ref = $8
		RETURNING `+ruleColumns,
		r.Ref, r.PackRef, r.Label, r.Description, r.TriggerRef, jsonOr(r.TriggerParams, "{}"), jsonOr(r.Conditions, "[]"),
		r.ActionRef, jsonOr(r.ActionParams, "{}"), r.Enabled))
	if isNoRows(err) {
		return Rule{}, fmt.Errorf("create rule %s: pack %s, trigger %s or action %s does not exist: %w",
			r.Ref, r.PackRef, r.TriggerRef, r.ActionRef, ErrNotFound)
	}
	if err != nil {
		return Rule{}, fmt.Errorf("create rule %s: %w", r.Ref, translate(err))
	}
	return out, nil
}

// RuleUpdate replaces the settings of rule r.Ref with r's; its pack stays. A rule, trigger or
// action that does not exist is ErrNotFound.
func (q *Queries) RuleUpdate(ctx context.Context, r Rule) (Rule, error) {
	return audited(ctx, q, func(q *Queries) (Rule, error) { return q.ruleUpdate(ctx, r) },
		func(x Rule) auditRecord {
			return auditRecord{"rule.update", "rule", x.Ref, ruleDetail(x)}
		})
}

// ruleUpdate makes RuleUpdate's change; RuleUpdate records it.
func (q *Queries) ruleUpdate(ctx context.Context, r Rule) (Rule, error) {
	out, err := scanRule(q.db.QueryRow(ctx, `
		UPDATE attune.rule SET label = $2, description = $3, trigger = t.id, trigger_ref = t.ref, trigger_params = $5,
			conditions = $6, action = a.id, action_ref = a.ref, action_params = $8, enabled = $9
		FROM attune.trigger t, attune.action a
		WHERE rule.ref = $1 AND t.ref = $4 AND a.ref = $7
		RETURNING `+prefixed("rule.", ruleOwnColumns)+ruleActionColumn,
		r.Ref, r.Label, r.Description, r.TriggerRef, jsonOr(r.TriggerParams, "{}"), jsonOr(r.Conditions, "[]"),
		r.ActionRef, jsonOr(r.ActionParams, "{}"), r.Enabled))
	if isNoRows(err) {
		return Rule{}, fmt.Errorf("update rule %s: the rule, trigger %s or action %s does not exist: %w",
			r.Ref, r.TriggerRef, r.ActionRef, ErrNotFound)
	}
	if err != nil {
		return Rule{}, fmt.Errorf("update rule %s: %w", r.Ref, translate(err))
	}
	return out, nil
}

// RuleSetEnabled enables or disables rule ref and returns it. A rule already so is returned
// as it is, and nothing is recorded.
func (q *Queries) RuleSetEnabled(ctx context.Context, ref string, enabled bool) (Rule, error) {
	r, _, err := auditedIf(ctx, q, func(q *Queries) (Rule, bool, error) { return q.ruleSetEnabled(ctx, ref, enabled) },
		func(x Rule) auditRecord {
			return auditRecord{enableKind("rule", enabled), "rule", x.Ref, nil}
		})
	return r, err
}

// ruleSetEnabled makes RuleSetEnabled's change, and reports whether there was one;
// RuleSetEnabled records it.
func (q *Queries) ruleSetEnabled(ctx context.Context, ref string, enabled bool) (Rule, bool, error) {
	out, err := scanRule(q.db.QueryRow(ctx, `UPDATE attune.rule SET enabled = $2 WHERE ref = $1 AND enabled <> $2 RETURNING `+ruleColumns, ref, enabled))
	if isNoRows(err) {
		out, err = q.RuleGetByRef(ctx, ref)
		return out, false, err
	}
	if err != nil {
		return Rule{}, false, fmt.Errorf("set rule %s enabled %t: %w", ref, enabled, translate(err))
	}
	return out, true, nil
}

// RuleDelete removes rule ref. Its enforcements stay, without their link to it.
func (q *Queries) RuleDelete(ctx context.Context, ref string) error {
	_, err := audited(ctx, q, func(q *Queries) (struct{}, error) { return struct{}{}, q.ruleDelete(ctx, ref) },
		func(struct{}) auditRecord { return auditRecord{"rule.delete", "rule", ref, nil} })
	return err
}

// ruleDelete makes RuleDelete's change; RuleDelete records it.
func (q *Queries) ruleDelete(ctx context.Context, ref string) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM attune.rule WHERE ref = $1`, ref)
	if err != nil {
		return fmt.Errorf("delete rule %s: %w", ref, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete rule %s: %w", ref, ErrNotFound)
	}
	return nil
}

// RuleListByTrigger returns every rule of trigger triggerRef, enabled or not, in ref order.
func (q *Queries) RuleListByTrigger(ctx context.Context, triggerRef string) ([]Rule, error) {
	return queryAll(ctx, q.db, "list rules of "+triggerRef, scanRule,
		`SELECT `+ruleColumns+` FROM attune.rule WHERE trigger_ref = $1 ORDER BY ref`, triggerRef)
}

// RuleListByAction returns every rule that runs action actionRef, enabled or not, in ref order.
func (q *Queries) RuleListByAction(ctx context.Context, actionRef string) ([]Rule, error) {
	return queryAll(ctx, q.db, "list rules of "+actionRef, scanRule,
		`SELECT `+ruleColumns+` FROM attune.rule WHERE action_ref = $1 ORDER BY ref`, actionRef)
}
