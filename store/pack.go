package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// PackRegistration is a whole pack as it should be after registration: its components are
// upserted by ref and those of the pack that are not listed are removed.
type PackRegistration struct {
	Pack     Pack
	Actions  []Action
	Triggers []Trigger
	Sensors  []Sensor
	Rules    []Rule
	Policies []Policy
	// Content, when set, is stored as a version and becomes the pack's current one: what
	// workers run its actions from.
	Content *PackContent
}

// PackRegister writes reg in one transaction, so that a pack is replaced whole or not at all,
// and says what it changed. Removing an action or trigger that a rule of another pack still
// uses is ErrConflict.
func (s *Store) PackRegister(ctx context.Context, reg PackRegistration) (RegisteredPack, error) {
	out := RegisteredPack{Changes: newPackChanges()}
	err := s.InTx(ctx, func(q *Queries) error {
		ch := &out.Changes
		p, err := q.packUpsert(ctx, reg.Pack, ch)
		if err != nil {
			return err
		}
		out.Pack = p
		if reg.Content != nil {
			changed, err := q.packVersionSet(ctx, p.ID, *reg.Content)
			if err != nil {
				return err
			}
			if changed && ch.Pack == PackUnchanged {
				ch.Pack = PackUpdated
			}
			out.Pack.CurrentVersion = reg.Content.Hash
		}
		// Read once the upsert holds the pack's row, which serialises its registrations.
		before, err := q.packComponents(ctx, p.ID)
		if err != nil {
			return err
		}
		// Rules go first: they hold the references that would block removing an action.
		if ch.Rules.Removed, err = q.packPrune(ctx, "rule", p.ID, refsOf(reg.Rules, func(r Rule) string { return r.Ref })); err != nil {
			return err
		}
		if ch.Policies.Removed, err = q.packPrune(ctx, "policy", p.ID, refsOf(reg.Policies, func(x Policy) string { return x.Ref })); err != nil {
			return err
		}
		for _, t := range reg.Triggers {
			written, err := q.triggerUpsert(ctx, p, t)
			if err != nil {
				return err
			}
			ch.Triggers.note(before["trigger"], t.Ref, written)
		}
		for _, a := range reg.Actions {
			written, err := q.actionUpsert(ctx, p, a)
			if err != nil {
				return err
			}
			ch.Actions.note(before["action"], a.Ref, written)
		}
		for _, sn := range reg.Sensors {
			written, err := q.sensorUpsert(ctx, p, sn)
			if err != nil {
				return err
			}
			ch.Sensors.note(before["sensor"], sn.Ref, written)
		}
		for _, r := range reg.Rules {
			written, err := q.ruleUpsert(ctx, p, r)
			if err != nil {
				return err
			}
			ch.Rules.note(before["rule"], r.Ref, written)
			if enabled, existed := before["rule"][r.Ref]; existed && enabled != r.Enabled {
				if r.Enabled {
					ch.RulesReenabled = append(ch.RulesReenabled, r.Ref)
				} else {
					ch.RulesDisabled = append(ch.RulesDisabled, r.Ref)
				}
			}
		}
		for _, pol := range reg.Policies {
			written, err := q.policyUpsert(ctx, p, pol)
			if err != nil {
				return err
			}
			ch.Policies.note(before["policy"], pol.Ref, written)
		}
		for _, k := range []struct {
			table   string
			refs    []string
			removed *[]string
		}{
			{"sensor", refsOf(reg.Sensors, func(x Sensor) string { return x.Ref }), &ch.Sensors.Removed},
			{"action", refsOf(reg.Actions, func(x Action) string { return x.Ref }), &ch.Actions.Removed},
			{"trigger", refsOf(reg.Triggers, func(x Trigger) string { return x.Ref }), &ch.Triggers.Removed},
		} {
			if *k.removed, err = q.packPrune(ctx, k.table, p.ID, k.refs); err != nil {
				return err
			}
		}
		ch.sort()
		if !ch.Changed() {
			// Registering again unchanged writes nothing, and has nothing to record.
			return nil
		}
		detail := map[string]any{"changes": ch}
		if reg.Content != nil {
			detail["version"] = reg.Content.Hash
		}
		return q.audit(ctx, auditRecord{"pack.register", "pack", p.Ref, detail})
	})
	if err != nil {
		return RegisteredPack{}, fmt.Errorf("register pack %s: %w", reg.Pack.Ref, err)
	}
	return out, nil
}

// packUpsert writes the pack's own row, when new or changed, and returns it as it is now;
// ch.Pack says which.
func (q *Queries) packUpsert(ctx context.Context, pack Pack, ch *PackChanges) (Pack, error) {
	_, err := q.PackGetByRef(ctx, pack.Ref)
	existed := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Pack{}, err
	}
	p, err := scanPack(q.db.QueryRow(ctx, `
		INSERT INTO attune.pack AS cur (ref, label, description, version, path) VALUES ($1, $2, $3, $4, $5)
		`+onRefConflict("label", "description", "version", "path")+`
		RETURNING `+packColumns,
		pack.Ref, pack.Label, pack.Description, pack.Version, pack.Path))
	switch {
	case isNoRows(err):
		// Unchanged; the row is locked all the same, as an update would have.
		ch.Pack = PackUnchanged
		return q.PackGetByRef(ctx, pack.Ref)
	case err != nil:
		return Pack{}, fmt.Errorf("upsert pack: %w", translate(err))
	case existed:
		ch.Pack = PackUpdated
	default:
		ch.Pack = PackAdded
	}
	return p, nil
}

func refsOf[T any](items []T, ref func(T) string) []string {
	refs := make([]string, len(items))
	for i, it := range items {
		refs[i] = ref(it)
	}
	return refs
}

// packPrune deletes the pack's rows of table whose ref is not in keep and returns their refs.
// table is one of a fixed set, never user input.
func (q *Queries) packPrune(ctx context.Context, table string, pack int64, keep []string) ([]string, error) {
	removed, err := queryAll(ctx, q.db, "remove "+table+"s gone from the pack", scanRef,
		`DELETE FROM attune.`+table+` WHERE pack = $1 AND NOT (ref = ANY($2)) RETURNING ref`, pack, keep)
	if err != nil {
		return nil, err
	}
	if removed == nil {
		removed = []string{}
	}
	return removed, nil
}

// The upserts below answer whether they wrote the row: not when it was as the pack has it.

var (
	triggerUpsertSQL = `
		INSERT INTO attune.trigger AS cur (ref, pack, pack_ref, label, description, parameters, output, enabled)
		VALUES ($1, $2, $3, $4, $5, $6, $7, true)
		` + onRefConflict("pack", "pack_ref", "label", "description", "parameters", "output")
	actionUpsertSQL = `
		INSERT INTO attune.action AS cur (ref, pack, pack_ref, label, description, runner_type, entry_point, parameters,
			output_format, timeout_seconds, enabled, retry, workflow, worker_selector)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		` + onRefConflict("pack", "pack_ref", "label", "description", "runner_type", "entry_point", "parameters",
		"output_format", "timeout_seconds", "enabled", "retry", "workflow", "worker_selector")
	sensorUpsertSQL = `
		INSERT INTO attune.sensor AS cur (ref, pack, pack_ref, label, description, entry_point, trigger_refs, parameters, enabled, config)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		` + onRefConflict("pack", "pack_ref", "label", "description", "entry_point", "trigger_refs", "parameters", "enabled", "config")
	ruleUpsertSQL = `
		INSERT INTO attune.rule AS cur (ref, pack, pack_ref, label, description, trigger, trigger_ref, trigger_params,
			conditions, action, action_ref, action_params, enabled)
		SELECT $1, $2, $3, $4, $5, t.id, t.ref, $7, $8, a.id, a.ref, $10, $11
		FROM attune.trigger t, attune.action a WHERE t.ref = $6 AND a.ref = $9
		` + onRefConflict("pack", "pack_ref", "label", "description", "trigger", "trigger_ref", "trigger_params",
		"conditions", "action", "action_ref", "action_params", "enabled")
	policyUpsertSQL = `
		INSERT INTO attune.policy AS cur (ref, pack, action_ref, pack_ref, enabled, concurrency_limit, concurrency_method,
			concurrency_parameters, rate_max_executions, rate_window_seconds, rate_method, max_queue_length, queue_timeout_seconds, retry,
			worker_selector)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		` + onRefConflict("pack", "action_ref", "pack_ref", "enabled", "concurrency_limit", "concurrency_method",
		"concurrency_parameters", "rate_max_executions", "rate_window_seconds", "rate_method", "max_queue_length",
		"queue_timeout_seconds", "retry", "worker_selector")
)

func (q *Queries) triggerUpsert(ctx context.Context, p Pack, t Trigger) (bool, error) {
	tag, err := q.db.Exec(ctx, triggerUpsertSQL,
		t.Ref, p.ID, p.Ref, t.Label, t.Description, jsonOr(t.Parameters, "{}"), jsonOr(t.Output, "{}"))
	if err != nil {
		return false, fmt.Errorf("upsert trigger %s: %w", t.Ref, translate(err))
	}
	return tag.RowsAffected() > 0, nil
}

func (q *Queries) actionUpsert(ctx context.Context, p Pack, a Action) (bool, error) {
	tag, err := q.db.Exec(ctx, actionUpsertSQL,
		a.Ref, p.ID, p.Ref, a.Label, a.Description, a.RunnerType, a.EntryPoint, jsonOr(a.Parameters, "{}"),
		a.OutputFormat, a.TimeoutSeconds, a.Enabled, a.Retry, jsonOrNil(a.Workflow), selectorArg(a.WorkerSelector))
	if err != nil {
		return false, fmt.Errorf("upsert action %s: %w", a.Ref, translate(err))
	}
	return tag.RowsAffected() > 0, nil
}

func (q *Queries) sensorUpsert(ctx context.Context, p Pack, s Sensor) (bool, error) {
	triggers := s.TriggerRefs
	if triggers == nil {
		triggers = []string{}
	}
	tag, err := q.db.Exec(ctx, sensorUpsertSQL,
		s.Ref, p.ID, p.Ref, s.Label, s.Description, s.EntryPoint, triggers, jsonOr(s.Parameters, "{}"), s.Enabled, jsonOr(s.Config, "{}"))
	if err != nil {
		return false, fmt.Errorf("upsert sensor %s: %w", s.Ref, translate(err))
	}
	return tag.RowsAffected() > 0, nil
}

func (q *Queries) ruleUpsert(ctx context.Context, p Pack, r Rule) (bool, error) {
	tag, err := q.db.Exec(ctx, ruleUpsertSQL,
		r.Ref, p.ID, p.Ref, r.Label, r.Description, r.TriggerRef, jsonOr(r.TriggerParams, "{}"), jsonOr(r.Conditions, "[]"),
		r.ActionRef, jsonOr(r.ActionParams, "{}"), r.Enabled)
	if err != nil {
		return false, fmt.Errorf("upsert rule %s: %w", r.Ref, translate(err))
	}
	if tag.RowsAffected() > 0 {
		return true, nil
	}
	// No row: the rule was as the pack has it, or its trigger or action is missing, which
	// left the SELECT nothing to insert.
	var named bool
	if err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM attune.trigger WHERE ref = $1)
		AND EXISTS (SELECT 1 FROM attune.action WHERE ref = $2)`, r.TriggerRef, r.ActionRef).Scan(&named); err != nil {
		return false, fmt.Errorf("upsert rule %s: %w", r.Ref, translate(err))
	}
	if !named {
		return false, fmt.Errorf("upsert rule %s: trigger %s or action %s does not exist: %w", r.Ref, r.TriggerRef, r.ActionRef, ErrConflict)
	}
	return false, nil
}

func (q *Queries) policyUpsert(ctx context.Context, p Pack, x Policy) (bool, error) {
	params := x.ConcurrencyParameters
	if params == nil {
		params = []string{}
	}
	tag, err := q.db.Exec(ctx, policyUpsertSQL,
		x.Ref, p.ID, x.ActionRef, x.PackRef, x.Enabled, x.ConcurrencyLimit, cmp.Or(x.ConcurrencyMethod, "enqueue"),
		params, x.RateMaxExecutions, x.RateWindowSeconds, cmp.Or(x.RateMethod, "enqueue"), x.MaxQueueLength, x.QueueTimeoutSeconds, x.Retry,
		selectorArg(x.WorkerSelector))
	if err != nil {
		return false, fmt.Errorf("upsert policy %s: %w", x.Ref, translate(err))
	}
	return tag.RowsAffected() > 0, nil
}

func jsonOr(raw []byte, fallback string) []byte {
	if len(raw) == 0 {
		return []byte(fallback)
	}
	return raw
}

// PackDelete removes pack ref and everything in it (actions, triggers, sensors, rules and the
// policies from its policies/ directory) in one transaction, with the policies that name its
// actions or the pack itself, and returns the refs of the policies removed. A rule or sensor
// of another pack that names one of its actions or triggers keeps it: *InUseError naming
// them. Events, enforcements and executions stay, without their links to what is gone.
func (s *Store) PackDelete(ctx context.Context, ref string) ([]string, error) {
	var policies []string
	err := s.InTx(ctx, func(q *Queries) error {
		// Rows of other packs that name this pack's components lock what they name (foreign
		// keys) or are checked below; the pack's row lock serialises with its registration.
		var id int64
		if err := q.db.QueryRow(ctx, `SELECT id FROM attune.pack WHERE ref = $1 FOR UPDATE`, ref).Scan(&id); err != nil {
			return translate(err)
		}
		users, err := q.rulesUsing(ctx, `pack <> $1 AND (action IN (SELECT id FROM attune.action WHERE pack = $1)
			OR trigger IN (SELECT id FROM attune.trigger WHERE pack = $1))`, id)
		if err != nil {
			return err
		}
		sensors, err := queryAll(ctx, q.db, "find the sensors firing its triggers", scanRef, `
			SELECT 'sensor ' || ref FROM attune.sensor
			WHERE pack <> $1 AND trigger_refs && ARRAY(SELECT ref FROM attune.trigger WHERE pack = $1) ORDER BY ref`, id)
		if err != nil {
			return err
		}
		if users = append(users, sensors...); len(users) > 0 {
			return &InUseError{What: "pack " + ref, By: users}
		}
		// The pack's rules go first: they hold its actions and triggers (ON DELETE RESTRICT),
		// and a cascade does not promise to reach them before it reaches those.
		if _, err := q.db.Exec(ctx, `DELETE FROM attune.rule WHERE pack = $1`, id); err != nil {
			return fmt.Errorf("delete its rules: %w", translate(err))
		}
		if policies, err = queryAll(ctx, q.db, "delete its policies", scanRef, `
			DELETE FROM attune.policy WHERE pack = $1 OR pack_ref = $2
				OR action_ref IN (SELECT ref FROM attune.action WHERE pack = $1)
			RETURNING ref`, id, ref); err != nil {
			return err
		}
		if _, err := q.db.Exec(ctx, `DELETE FROM attune.pack WHERE id = $1`, id); err != nil {
			return translate(err)
		}
		return q.audit(ctx, auditRecord{"pack.delete", "pack", ref, map[string]any{"policies_deleted": policies}})
	})
	if err != nil {
		return nil, fmt.Errorf("delete pack %s: %w", ref, err)
	}
	slices.Sort(policies)
	return policies, nil
}

// jsonOrNil is raw for a nullable json column: NULL when empty.
func jsonOrNil(raw []byte) any {
	if len(raw) == 0 {
		return nil
	}
	return raw
}
