package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Outcomes of ExecutionCreate.
const (
	// CreateAdmitted: created scheduled, for dispatch now; no policy applies, or its policy
	// had room and nobody waited.
	CreateAdmitted = "admitted"
	// CreateQueued: created requested, waiting in its queue; an ending admits it later.
	CreateQueued = "queued"
	// CreateCancelled: created cancelled; the policy's method is cancel and there was no room.
	CreateCancelled = "cancelled"
	// CreateFailed: created failed; the policy's queue was full.
	CreateFailed = "failed"
	// CreateRefused: created failed with the Refusal the caller gave.
	CreateRefused = "refused"
	// CreateExists: the enforcement had its execution already; it is returned untouched, so
	// that a redelivered message can finish what the first delivery started.
	CreateExists = "exists"
	// CreateSkipped: the enforcement was resolved without an execution; nothing is returned.
	CreateSkipped = "skipped"
)

// ExecutionCreateParams describe an execution to create.
type ExecutionCreateParams struct {
	ActionRef      string
	Parameters     json.RawMessage
	EnforcementID  *int64
	ParentID       *int64
	TimeoutSeconds *int
	// Refusal, when set, creates the execution failed with this reason: the request was
	// refused up front (parameters that do not fit the action, an action that is gone), and
	// the execution records why where operators look.
	Refusal string
	// Secrets names the parameters whose values are secret (see Execution.Secrets).
	Secrets []string
	// RequestedBy is the identity that requested it (see Execution.RequestedBy).
	RequestedBy *int64
	// TraceID is the trace it belongs to (see Execution.TraceID); empty takes its
	// enforcement's, else its parent's, else starts a new one.
	TraceID string
}

// ExecutionCreated is what ExecutionCreate did for one item.
type ExecutionCreated struct {
	// Outcome is one of the Create constants.
	Outcome string
	// Execution is the row created (or, for CreateExists, found); zero for CreateSkipped.
	Execution Execution
}

// Created reports whether this call made the execution.
func (c ExecutionCreated) Created() bool {
	return c.Outcome != CreateExists && c.Outcome != CreateSkipped && c.Outcome != ""
}

// executionCreateSQL runs attune.execution_create (migrations 00014, 00023, 00025), which decides each
// item's admission under its queue's lock before drawing its id, and returns the rows. The
// function's own rows are not visible to a join in the calling statement, so the row comes
// back from it whole and is spread into columns here.
const executionCreateSQL = `SELECT c.out_ord, c.out_outcome, ` + executionColumns + `
	FROM attune.execution_create($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) c
	CROSS JOIN LATERAL (SELECT (c.out_execution).*) execution
	WHERE (c.out_execution).id IS NOT NULL`

// ExecutionCreate creates an execution per item, each with its admission decided in the same
// transaction: under a policy, the queue's lock is taken before the execution's id is drawn,
// so that within a queue ids follow the order of the decisions and admission follows ids
// (docs/architecture.md, Policies). An enforcement has one execution: an item whose
// enforcement has it already gets CreateExists, one whose enforcement was resolved without
// one gets CreateSkipped. When the statement fails, nothing is created.
func (q *Queries) ExecutionCreate(ctx context.Context, ps []ExecutionCreateParams) ([]ExecutionCreated, error) {
	out, err := q.create(ctx, ps)
	if err != nil {
		return nil, fmt.Errorf("create %d executions: %w", len(ps), err)
	}
	return out, nil
}

// ExecutionCreateOne is ExecutionCreate for one item.
func (q *Queries) ExecutionCreateOne(ctx context.Context, p ExecutionCreateParams) (ExecutionCreated, error) {
	out, err := q.create(ctx, []ExecutionCreateParams{p})
	if err != nil {
		return ExecutionCreated{}, fmt.Errorf("create execution of %s: %w", p.ActionRef, err)
	}
	return out[0], nil
}

func (q *Queries) create(ctx context.Context, ps []ExecutionCreateParams) ([]ExecutionCreated, error) {
	n := len(ps)
	refs, params := make([]string, n), make([]string, n)
	statuses, reasons := make([]*string, n), make([]*string, n)
	enforcements, parents, requestedBy := make([]*int64, n), make([]*int64, n), make([]*int64, n)
	traces := make([]*string, n)
	timeouts, attempts, retryOf := make([]*int32, n), make([]*int32, n), make([]*int64, n)
	// Parameter names are letters, digits and _, so one comma-separated string carries each
	// item's names through a text[] (arrays of arrays must be rectangular).
	secrets := make([]string, n)
	for i, p := range ps {
		refs[i], params[i], secrets[i] = p.ActionRef, string(jsonOr(p.Parameters, "{}")), strings.Join(p.Secrets, ",")
		enforcements[i], parents[i], requestedBy[i] = p.EnforcementID, p.ParentID, p.RequestedBy
		if p.TraceID != "" {
			traces[i] = &ps[i].TraceID
		}
		if p.Refusal != "" {
			statuses[i], reasons[i] = ptrTo(ExecutionFailed), &ps[i].Refusal
		}
		if p.TimeoutSeconds != nil {
			t := int32(*p.TimeoutSeconds)
			timeouts[i] = &t
		}
	}
	out := make([]ExecutionCreated, n)
	for i := range out {
		out[i].Outcome = CreateSkipped
	}
	return out, translate(scanOrdered(ctx, q.db, out, func(c *ExecutionCreated) []any {
		return append([]any{&c.Outcome}, executionDest(&c.Execution)...)
	}, executionCreateSQL, refs, params, statuses, reasons, enforcements, parents, timeouts, attempts, retryOf, secrets, requestedBy, traces))
}

// ExecutionRetryDue creates the next attempt of up to limit executions whose retry is due,
// oldest due first, each exactly once however many executors ask at once: the due row is
// locked (others skip it), its retry_at cleared and the attempt created in one transaction.
// The attempts join their queues at the back, like every new execution.
// An attempt is requested by whoever requested the first: a workflow run again reads its
// requester's user keys.
func (q *Queries) ExecutionRetryDue(ctx context.Context, limit int) ([]ExecutionCreated, error) {
	return queryAll(ctx, q.db, "create due retries", func(r pgx.Row) (ExecutionCreated, error) {
		var c ExecutionCreated
		var ord int32
		err := r.Scan(append([]any{&ord, &c.Outcome}, executionDest(&c.Execution)...)...)
		return c, err
	}, `SELECT c.out_ord, c.out_outcome, `+executionColumns+`
		FROM attune.execution_retry_due($1) c
		CROSS JOIN LATERAL (SELECT (c.out_execution).*) execution
		WHERE (c.out_execution).id IS NOT NULL
		ORDER BY c.out_ord`, limit)
}

// ExecutionCancelRetry withdraws the next attempt planned for execution id, and reports
// whether one was planned. An attempt already created is an execution of its own, to cancel
// as such. It is recorded in attune.audit as execution.cancel, with the actor of ctx.
func (q *Queries) ExecutionCancelRetry(ctx context.Context, id int64) (Execution, bool, error) {
	e, ok, err := auditedIf(ctx, q, func(q *Queries) (Execution, bool, error) {
		e, err := scanExecution(q.db.QueryRow(ctx, `UPDATE attune.execution SET retry_at = NULL
			WHERE id = $1 AND retry_at IS NOT NULL RETURNING `+executionColumns, id))
		if isNoRows(err) {
			return Execution{}, false, nil
		}
		return e, err == nil, translate(err)
	}, func(e Execution) auditRecord {
		return auditRecord{"execution.cancel", "execution", strconv.FormatInt(id, 10),
			map[string]any{"status": e.Status, "retry_withdrawn": true}}
	})
	if err != nil {
		return Execution{}, false, fmt.Errorf("cancel the retry of execution %d: %w", id, err)
	}
	return e, ok, nil
}

// ExecutionAttempts returns every attempt of the request execution id belongs to, first
// attempt first.
func (q *Queries) ExecutionAttempts(ctx context.Context, id int64) ([]Execution, error) {
	return queryAll(ctx, q.db, fmt.Sprintf("attempts of execution %d", id), scanExecution, `
		WITH first AS (SELECT coalesce(retry_of, id) AS id FROM attune.execution WHERE id = $1)
		SELECT `+executionColumns+` FROM attune.execution, first
		WHERE execution.id = first.id OR execution.retry_of = first.id
		ORDER BY execution.attempt`, id)
}

func ptrTo[T any](v T) *T { return &v }
