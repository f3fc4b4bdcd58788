package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ActionCreate adds action a to the pack a.PackRef; a ref in use is ErrConflict, a pack that
// does not exist ErrNotFound.
func (q *Queries) ActionCreate(ctx context.Context, a Action) (Action, error) {
	return audited(ctx, q, func(q *Queries) (Action, error) { return q.actionCreate(ctx, a) },
		func(x Action) auditRecord {
			return auditRecord{"action.create", "action", x.Ref, actionDetail(x)}
		})
}

// actionCreate makes ActionCreate's change; ActionCreate records it.
func (q *Queries) actionCreate(ctx context.Context, a Action) (Action, error) {
	out, err := scanAction(q.db.QueryRow(ctx, `
		INSERT INTO attune.action (ref, pack, pack_ref, label, description, runner_type, entry_point, parameters,
			output_format, timeout_seconds, enabled, retry, workflow, worker_selector)
		SELECT $1, p.id, p.ref, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM attune.pack p WHERE p.ref = $2
		RETURNING `+actionColumns,
		a.Ref, a.PackRef, a.Label, a.Description, a.RunnerType, a.EntryPoint, jsonOr(a.Parameters, "{}"),
		a.OutputFormat, a.TimeoutSeconds, a.Enabled, a.Retry, jsonOrNil(a.Workflow), selectorArg(a.WorkerSelector)))
	if isNoRows(err) {
		return Action{}, fmt.Errorf("create action %s: no pack %s: %w", a.Ref, a.PackRef, ErrNotFound)
	}
	if err != nil {
		return Action{}, fmt.Errorf("create action %s: %w", a.Ref, translate(err))
	}
	return out, nil
}

// ActionUpdate replaces the settings of action a.Ref with a's; its pack stays.
func (q *Queries) ActionUpdate(ctx context.Context, a Action) (Action, error) {
	return audited(ctx, q, func(q *Queries) (Action, error) { return q.actionUpdate(ctx, a) },
		func(x Action) auditRecord {
			return auditRecord{"action.update", "action", x.Ref, actionDetail(x)}
		})
}

// actionUpdate makes ActionUpdate's change; ActionUpdate records it.
func (q *Queries) actionUpdate(ctx context.Context, a Action) (Action, error) {
	out, err := scanAction(q.db.QueryRow(ctx, `
		UPDATE attune.action SET label = $2, description = $3, runner_type = $4, entry_point = $5, parameters = $6,
			output_format = $7, timeout_seconds = $8, enabled = $9, retry = $10, workflow = $11,
			worker_selector = $12
		WHERE ref = $1
		RETURNING `+actionColumns,
		a.Ref, a.Label, a.Description, a.RunnerType, a.EntryPoint, jsonOr(a.Parameters, "{}"), a.OutputFormat,
		a.TimeoutSeconds, a.Enabled, a.Retry, jsonOrNil(a.Workflow), selectorArg(a.WorkerSelector)))
	if err != nil {
		return Action{}, fmt.Errorf("update action %s: %w", a.Ref, translate(err))
	}
	return out, nil
}

// ActionDelete removes action ref, with the policies that name it, in one transaction, and
// returns the refs of those policies. A rule that runs the action, enabled or not, keeps it:
// *InUseError naming the rules. Executions of the action stay, without their link to it.
//
// Policies go with their action rather than holding it back: a policy limits nothing once its
// action is gone, and left behind it would silently limit a new action given the same ref.
func (s *Store) ActionDelete(ctx context.Context, ref string) ([]string, error) {
	var policies []string
	err := s.InTx(ctx, func(q *Queries) error {
		// The row lock makes a rule created meanwhile wait for this transaction, and then
		// find the action gone, rather than slip in between the check and the delete.
		var id int64
		if err := q.db.QueryRow(ctx, `SELECT id FROM attune.action WHERE ref = $1 FOR UPDATE`, ref).Scan(&id); err != nil {
			return translate(err)
		}
		users, err := q.rulesUsing(ctx, `action = $1`, id)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return &InUseError{What: "action " + ref, By: users}
		}
		if policies, err = queryAll(ctx, q.db, "delete policies of the action", scanRef,
			`DELETE FROM attune.policy WHERE action_ref = $1 RETURNING ref`, ref); err != nil {
			return err
		}
		if _, err := q.db.Exec(ctx, `DELETE FROM attune.action WHERE id = $1`, id); err != nil {
			return translate(err)
		}
		return q.audit(ctx, auditRecord{"action.delete", "action", ref, map[string]any{"policies_deleted": policies}})
	})
	if err != nil {
		return nil, fmt.Errorf("delete action %s: %w", ref, err)
	}
	return policies, nil
}

// rulesUsing names the rules matching where (over attune.rule, with args), disabled ones
// marked, in ref order.
func (q *Queries) rulesUsing(ctx context.Context, where string, args ...any) ([]string, error) {
	return queryAll(ctx, q.db, "find the rules using it", func(row pgx.Row) (string, error) {
		var ref string
		var enabled bool
		err := row.Scan(&ref, &enabled)
		if !enabled {
			ref += " (disabled)"
		}
		return "rule " + ref, err
	}, `SELECT ref, enabled FROM attune.rule WHERE `+where+` ORDER BY ref`, args...)
}

func scanRef(row pgx.Row) (string, error) {
	var ref string
	err := row.Scan(&ref)
	return ref, err
}
