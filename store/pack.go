package store

import (
	"cmp"
	"context"
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
}

// PackRegister writes reg in one transaction, so that a pack is replaced whole or not at all.
// Removing an action or trigger that a rule of another pack still uses is ErrConflict.
func (s *Store) PackRegister(ctx context.Context, reg PackRegistration) (Pack, error) {
	var out Pack
	err := s.InTx(ctx, func(q *Queries) error {
		p, err := scanPack(q.db.QueryRow(ctx, `
			INSERT INTO attune.pack (ref, label, description, version, path) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (ref) DO UPDATE SET label = EXCLUDED.label, description = EXCLUDED.description,
				version = EXCLUDED.version, path = EXCLUDED.path
			RETURNING `+packColumns,
			reg.Pack.Ref, reg.Pack.Label, reg.Pack.Description, reg.Pack.Version, reg.Pack.Path))
		if err != nil {
			return fmt.Errorf("upsert pack: %w", translate(err))
		}
		out = p
		// Rules go first: they hold the references that would block removing an action.
		if err := q.packPrune(ctx, "rule", p.ID, refsOf(reg.Rules, func(r Rule) string { return r.Ref })); err != nil {
			return err
		}
		if err := q.packPrune(ctx, "policy", p.ID, refsOf(reg.Policies, func(x Policy) string { return x.Ref })); err != nil {
			return err
		}
		for _, t := range reg.Triggers {
			if err := q.triggerUpsert(ctx, p, t); err != nil {
				return err
			}
		}
		for _, a := range reg.Actions {
			if err := q.actionUpsert(ctx, p, a); err != nil {
				return err
			}
		}
		for _, sn := range reg.Sensors {
			if err := q.sensorUpsert(ctx, p, sn); err != nil {
				return err
			}
		}
		for _, r := range reg.Rules {
			if err := q.ruleUpsert(ctx, p, r); err != nil {
				return err
			}
		}
		for _, pol := range reg.Policies {
			if err := q.policyUpsert(ctx, p, pol); err != nil {
				return err
			}
		}
		for table, refs := range map[string][]string{
			"sensor":  refsOf(reg.Sensors, func(x Sensor) string { return x.Ref }),
			"action":  refsOf(reg.Actions, func(x Action) string { return x.Ref }),
			"trigger": refsOf(reg.Triggers, func(x Trigger) string { return x.Ref }),
		} {
			if err := q.packPrune(ctx, table, p.ID, refs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Pack{}, fmt.Errorf("register pack %s: %w", reg.Pack.Ref, err)
	}
	return out, nil
}

func refsOf[T any](items []T, ref func(T) string) []string {
	refs := make([]string, len(items))
	for i, it := range items {
		refs[i] = ref(it)
	}
	return refs
}

// packPrune deletes the pack's rows of table whose ref is not in keep. table is one of a
// fixed set, never user input.
func (q *Queries) packPrune(ctx context.Context, table string, pack int64, keep []string) error {
	if _, err := q.db.Exec(ctx, `DELETE FROM attune.`+table+` WHERE pack = $1 AND NOT (ref = ANY($2))`, pack, keep); err != nil {
		return fmt.Errorf("remove %ss gone from the pack: %w", table, translate(err))
	}
	return nil
}

func (q *Queries) triggerUpsert(ctx context.Context, p Pack, t Trigger) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO attune.trigger (ref, pack, pack_ref, label, description, parameters, output, enabled)
		VALUES ($1, $2, $3, $4, $5, $6, $7, true)
		ON CONFLICT (ref) DO UPDATE SET pack = EXCLUDED.pack, pack_ref = EXCLUDED.pack_ref, label = EXCLUDED.label,
			description = EXCLUDED.description, parameters = EXCLUDED.parameters, output = EXCLUDED.output`,
		t.Ref, p.ID, p.Ref, t.Label, t.Description, jsonOr(t.Parameters, "{}"), jsonOr(t.Output, "{}"))
	if err != nil {
		return fmt.Errorf("upsert trigger %s: %w", t.Ref, translate(err))
	}
	return nil
}

func (q *Queries) actionUpsert(ctx context.Context, p Pack, a Action) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO attune.action (ref, pack, pack_ref, label, description, runner_type, entry_point, parameters,
			output_format, timeout_seconds, enabled, retry, workflow)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (ref) DO UPDATE SET pack = EXCLUDED.pack, pack_ref = EXCLUDED.pack_ref, label = EXCLUDED.label,
			description = EXCLUDED.description, runner_type = EXCLUDED.runner_type, entry_point = EXCLUDED.entry_point,
			parameters = EXCLUDED.parameters, output_format = EXCLUDED.output_format,
			timeout_seconds = EXCLUDED.timeout_seconds, enabled = EXCLUDED.enabled, retry = EXCLUDED.retry,
			workflow = EXCLUDED.workflow`,
		a.Ref, p.ID, p.Ref, a.Label, a.Description, a.RunnerType, a.EntryPoint, jsonOr(a.Parameters, "{}"),
		a.OutputFormat, a.TimeoutSeconds, a.Enabled, a.Retry, jsonOrNil(a.Workflow))
	if err != nil {
		return fmt.Errorf("upsert action %s: %w", a.Ref, translate(err))
	}
	return nil
}

func (q *Queries) sensorUpsert(ctx context.Context, p Pack, s Sensor) error {
	triggers := s.TriggerRefs
	if triggers == nil {
		triggers = []string{}
	}
	_, err := q.db.Exec(ctx, `
		INSERT INTO attune.sensor (ref, pack, pack_ref, label, description, entry_point, trigger_refs, parameters, enabled)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (ref) DO UPDATE SET pack = EXCLUDED.pack, pack_ref = EXCLUDED.pack_ref, label = EXCLUDED.label,
			description = EXCLUDED.description, entry_point = EXCLUDED.entry_point, trigger_refs = EXCLUDED.trigger_refs,
			parameters = EXCLUDED.parameters, enabled = EXCLUDED.enabled`,
		s.Ref, p.ID, p.Ref, s.Label, s.Description, s.EntryPoint, triggers, jsonOr(s.Parameters, "{}"), s.Enabled)
	if err != nil {
		return fmt.Errorf("upsert sensor %s: %w", s.Ref, translate(err))
	}
	return nil
}

func (q *Queries) ruleUpsert(ctx context.Context, p Pack, r Rule) error {
	tag, err := q.db.Exec(ctx, `
		INSERT INTO attune.rule (ref, pack, pack_ref, label, description, trigger, trigger_ref, trigger_params,
			conditions, action, action_ref, action_params, enabled)
		SELECT $1, $2, $3, $4, $5, t.id, t.ref, $7, $8, a.id, a.ref, $10, $11
		FROM attune.trigger t, attune.action a WHERE t.ref = $6 AND a.ref = $9
		ON CONFLICT (ref) DO UPDATE SET pack = EXCLUDED.pack, pack_ref = EXCLUDED.pack_ref, label = EXCLUDED.label,
			description = EXCLUDED.description, trigger = EXCLUDED.trigger, trigger_ref = EXCLUDED.trigger_ref,
			trigger_params = EXCLUDED.trigger_params, conditions = EXCLUDED.conditions, action = EXCLUDED.action,
			action_ref = EXCLUDED.action_ref, action_params = EXCLUDED.action_params, enabled = EXCLUDED.enabled`,
		r.Ref, p.ID, p.Ref, r.Label, r.Description, r.TriggerRef, jsonOr(r.TriggerParams, "{}"), jsonOr(r.Conditions, "[]"),
		r.ActionRef, jsonOr(r.ActionParams, "{}"), r.Enabled)
	if err != nil {
		return fmt.Errorf("upsert rule %s: %w", r.Ref, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("upsert rule %s: trigger %s or action %s does not exist: %w", r.Ref, r.TriggerRef, r.ActionRef, ErrConflict)
	}
	return nil
}

func (q *Queries) policyUpsert(ctx context.Context, p Pack, x Policy) error {
	params := x.ConcurrencyParameters
	if params == nil {
		params = []string{}
	}
	_, err := q.db.Exec(ctx, `
		INSERT INTO attune.policy (ref, pack, action_ref, pack_ref, enabled, concurrency_limit, concurrency_method,
			concurrency_parameters, rate_max_executions, rate_window_seconds, rate_method, max_queue_length, queue_timeout_seconds, retry)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (ref) DO UPDATE SET pack = EXCLUDED.pack, action_ref = EXCLUDED.action_ref, pack_ref = EXCLUDED.pack_ref,
			enabled = EXCLUDED.enabled, concurrency_limit = EXCLUDED.concurrency_limit,
			concurrency_method = EXCLUDED.concurrency_method, concurrency_parameters = EXCLUDED.concurrency_parameters,
			rate_max_executions = EXCLUDED.rate_max_executions, rate_window_seconds = EXCLUDED.rate_window_seconds,
			rate_method = EXCLUDED.rate_method, max_queue_length = EXCLUDED.max_queue_length,
			queue_timeout_seconds = EXCLUDED.queue_timeout_seconds, retry = EXCLUDED.retry`,
		x.Ref, p.ID, x.ActionRef, x.PackRef, x.Enabled, x.ConcurrencyLimit, cmp.Or(x.ConcurrencyMethod, "enqueue"),
		params, x.RateMaxExecutions, x.RateWindowSeconds, cmp.Or(x.RateMethod, "enqueue"), x.MaxQueueLength, x.QueueTimeoutSeconds, x.Retry)
	if err != nil {
		return fmt.Errorf("upsert policy %s: %w", x.Ref, translate(err))
	}
	return nil
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
		return nil
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
