package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ChannelPoliciesChanged is signalled when attune.policy changes.
const ChannelPoliciesChanged = "attune_policies_changed"

const policyColumns = `id, ref, pack_ref, action_ref, enabled, concurrency_limit, concurrency_method, concurrency_parameters,
	rate_max_executions, rate_window_seconds, rate_method, max_queue_length, queue_timeout_seconds, retry, worker_selector,
	(SELECT p.ref FROM attune.pack p WHERE p.id = policy.pack), created, updated`

func scanPolicy(row pgx.Row) (Policy, error) {
	var p Policy
	err := row.Scan(&p.ID, &p.Ref, &p.PackRef, &p.ActionRef, &p.Enabled, &p.ConcurrencyLimit, &p.ConcurrencyMethod,
		&p.ConcurrencyParameters, &p.RateMaxExecutions, &p.RateWindowSeconds, &p.RateMethod, &p.MaxQueueLength,
		&p.QueueTimeoutSeconds, &p.Retry, &p.WorkerSelector, &p.FromPack, &p.Created, &p.Updated)
	return p, err
}

// PolicyFor returns the policy in force for actionRef: its own enabled policy, else its
// pack's. A zero Policy (ID 0) means none applies. A pack policy bounds each action of the
// pack on its own. The rule is attune.policy_for's, the one admission follows.
func (q *Queries) PolicyFor(ctx context.Context, actionRef string) (Policy, error) {
	p, err := scanPolicy(q.db.QueryRow(ctx, `SELECT `+policyColumns+` FROM attune.policy_for($1) AS policy`, actionRef))
	if isNoRows(err) {
		return Policy{}, nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("policy for %s: %w", actionRef, translate(err))
	}
	return p, nil
}

// PolicyGet returns the policy called ref.
func (q *Queries) PolicyGet(ctx context.Context, ref string) (Policy, error) {
	p, err := scanPolicy(q.db.QueryRow(ctx, `SELECT `+policyColumns+` FROM attune.policy WHERE ref = $1`, ref))
	if err != nil {
		return Policy{}, fmt.Errorf("get policy %s: %w", ref, translate(err))
	}
	return p, nil
}

// PolicyList returns a page of policies in ref order.
func (q *Queries) PolicyList(ctx context.Context, page Page) ([]Policy, int, error) {
	return list(ctx, q.db, "policies", `FROM attune.policy`, policyColumns, `policy.ref`, page, scanPolicy)
}

// PolicyCreate adds a policy that belongs to no pack; a ref in use is ErrConflict.
func (q *Queries) PolicyCreate(ctx context.Context, x Policy) (Policy, error) {
	return audited(ctx, q, func(q *Queries) (Policy, error) { return q.policyCreate(ctx, x) },
		func(x Policy) auditRecord {
			return auditRecord{"policy.create", "policy", x.Ref, policyDetail(x)}
		})
}

// policyCreate makes PolicyCreate's change; PolicyCreate records it.
func (q *Queries) policyCreate(ctx context.Context, x Policy) (Policy, error) {
	p, err := scanPolicy(q.db.QueryRow(ctx, `
		INSERT INTO attune.policy (ref, action_ref, pack_ref, enabled, concurrency_limit, concurrency_method,
			concurrency_parameters, rate_max_executions, rate_window_seconds, rate_method, max_queue_length, queue_timeout_seconds, retry,
			worker_selector)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		RETURNING `+policyColumns, policyArgs(x)...))
	if err != nil {
		return Policy{}, fmt.Errorf("create policy %s: %w", x.Ref, translate(err))
	}
	return p, nil
}

// PolicyUpdate replaces policy ref's settings with x's.
func (q *Queries) PolicyUpdate(ctx context.Context, ref string, x Policy) (Policy, error) {
	return audited(ctx, q, func(q *Queries) (Policy, error) { return q.policyUpdate(ctx, ref, x) },
		func(x Policy) auditRecord {
			return auditRecord{"policy.update", "policy", x.Ref, policyDetail(x)}
		})
}

// policyUpdate makes PolicyUpdate's change; PolicyUpdate records it.
func (q *Queries) policyUpdate(ctx context.Context, ref string, x Policy) (Policy, error) {
	x.Ref = ref
	p, err := scanPolicy(q.db.QueryRow(ctx, `
		UPDATE attune.policy SET action_ref = $2, pack_ref = $3, enabled = $4, concurrency_limit = $5,
			concurrency_method = $6, concurrency_parameters = $7, rate_max_executions = $8, rate_window_seconds = $9,
			rate_method = $10, max_queue_length = $11, queue_timeout_seconds = $12, retry = $13,
			worker_selector = $14
		WHERE ref = $1
		RETURNING `+policyColumns, policyArgs(x)...))
	if err != nil {
		return Policy{}, fmt.Errorf("update policy %s: %w", ref, translate(err))
	}
	return p, nil
}

// PolicyDelete removes policy ref. Executions waiting under it are admitted by the next
// promotion, since their groups then have no limit.
func (q *Queries) PolicyDelete(ctx context.Context, ref string) error {
	_, err := audited(ctx, q, func(q *Queries) (struct{}, error) { return struct{}{}, q.policyDelete(ctx, ref) },
		func(struct{}) auditRecord { return auditRecord{"policy.delete", "policy", ref, nil} })
	return err
}

// policyDelete makes PolicyDelete's change; PolicyDelete records it.
func (q *Queries) policyDelete(ctx context.Context, ref string) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM attune.policy WHERE ref = $1`, ref)
	if err != nil {
		return fmt.Errorf("delete policy %s: %w", ref, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete policy %s: %w", ref, ErrNotFound)
	}
	return nil
}

func policyArgs(x Policy) []any {
	params := x.ConcurrencyParameters
	if params == nil {
		params = []string{}
	}
	return []any{x.Ref, x.ActionRef, x.PackRef, x.Enabled, x.ConcurrencyLimit, methodOr(x.ConcurrencyMethod), params,
		x.RateMaxExecutions, x.RateWindowSeconds, methodOr(x.RateMethod), x.MaxQueueLength, x.QueueTimeoutSeconds, x.Retry,
		selectorArg(x.WorkerSelector)}
}
