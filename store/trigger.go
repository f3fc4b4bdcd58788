package store

import (
	"context"
	"fmt"
)

// TriggerCreate adds trigger t to the pack t.PackRef; a ref in use is ErrConflict, a pack
// that does not exist ErrNotFound.
func (q *Queries) TriggerCreate(ctx context.Context, t Trigger) (Trigger, error) {
	return audited(ctx, q, func(q *Queries) (Trigger, error) { return q.triggerCreate(ctx, t) },
		func(x Trigger) auditRecord {
			return auditRecord{"trigger.create", "trigger", x.Ref, nil}
		})
}

// triggerCreate makes TriggerCreate's change; TriggerCreate records it.
func (q *Queries) triggerCreate(ctx context.Context, t Trigger) (Trigger, error) {
	out, err := scanTrigger(q.db.QueryRow(ctx, `
		INSERT INTO attune.trigger (ref, pack, pack_ref, label, description, parameters, output, enabled)
		SELECT $1, p.id, p.ref, $3, $4, $5, $6, true FROM attune.pack p WHERE p.ref = $2
		RETURNING `+triggerColumns,
		t.Ref, t.PackRef, t.Label, t.Description, jsonOr(t.Parameters, "{}"), jsonOr(t.Output, "{}")))
	if isNoRows(err) {
		return Trigger{}, fmt.Errorf("create trigger %s: no pack %s: %w", t.Ref, t.PackRef, ErrNotFound)
	}
	if err != nil {
		return Trigger{}, fmt.Errorf("create trigger %s: %w", t.Ref, translate(err))
	}
	return out, nil
}

// TriggerUpdate replaces the settings of trigger t.Ref with t's; its pack stays.
func (q *Queries) TriggerUpdate(ctx context.Context, t Trigger) (Trigger, error) {
	return audited(ctx, q, func(q *Queries) (Trigger, error) { return q.triggerUpdate(ctx, t) },
		func(x Trigger) auditRecord {
			return auditRecord{"trigger.update", "trigger", x.Ref, nil}
		})
}

// triggerUpdate makes TriggerUpdate's change; TriggerUpdate records it.
func (q *Queries) triggerUpdate(ctx context.Context, t Trigger) (Trigger, error) {
	out, err := scanTrigger(q.db.QueryRow(ctx, `
		UPDATE attune.trigger SET label = $2, description = $3, parameters = $4, output = $5
		WHERE ref = $1
		RETURNING `+triggerColumns,
		t.Ref, t.Label, t.Description, jsonOr(t.Parameters, "{}"), jsonOr(t.Output, "{}")))
	if err != nil {
		return Trigger{}, fmt.Errorf("update trigger %s: %w", t.Ref, translate(err))
	}
	return out, nil
}

// TriggerDelete removes trigger ref. A rule on it, enabled or not, or a sensor that fires it
// keeps it: *InUseError naming them. Its events stay, without their link to it.
func (s *Store) TriggerDelete(ctx context.Context, ref string) error {
	err := s.InTx(ctx, func(q *Queries) error {
		// Locked, as in ActionDelete, so that a rule created meanwhile cannot slip in.
		var id int64
		if err := q.db.QueryRow(ctx, `SELECT id FROM attune.trigger WHERE ref = $1 FOR UPDATE`, ref).Scan(&id); err != nil {
			return translate(err)
		}
		users, err := q.rulesUsing(ctx, `trigger = $1`, id)
		if err != nil {
			return err
		}
		sensors, err := queryAll(ctx, q.db, "find the sensors firing it", scanRef,
			`SELECT 'sensor ' || ref FROM attune.sensor WHERE $1 = ANY(trigger_refs) ORDER BY ref`, ref)
		if err != nil {
			return err
		}
		if users = append(users, sensors...); len(users) > 0 {
			return &InUseError{What: "trigger " + ref, By: users}
		}
		if _, err := q.db.Exec(ctx, `DELETE FROM attune.trigger WHERE id = $1`, id); err != nil {
			return translate(err)
		}
		return q.audit(ctx, auditRecord{"trigger.delete", "trigger", ref, nil})
	})
	if err != nil {
		return fmt.Errorf("delete trigger %s: %w", ref, err)
	}
	return nil
}
