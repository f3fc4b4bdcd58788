package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ExecutionTransition is a conditional status move.
type ExecutionTransition struct {
	ID   int64
	From []string
	To   string
	// Worker, Result and Reason are set when given.
	Worker *int64
	Result json.RawMessage
	Reason string
	// Audit, when set, is the kind the move is recorded as in attune.audit, with the actor of
	// the context, in the move's transaction (the API's cancel, pause and resume). Only
	// ExecutionTransition records it; batches refuse it.
	Audit string
}

// ExecutionTransition moves execution t.ID to t.To if its status is one of t.From, and
// reports whether it did. Running stamps started_at (once: a resumed workflow keeps it) and a
// terminal status finished_at. This conditional update is what keeps an execution from being
// claimed or finished twice.
func (q *Queries) ExecutionTransition(ctx context.Context, t ExecutionTransition) (Execution, bool, error) {
	if t.Audit == "" {
		return q.executionTransition(ctx, t)
	}
	return auditedIf(ctx, q, func(q *Queries) (Execution, bool, error) { return q.executionTransition(ctx, t) },
		func(e Execution) auditRecord {
			return auditRecord{t.Audit, "execution", strconv.FormatInt(e.ID, 10), map[string]any{"status": e.Status}}
		})
}

// executionTransition makes ExecutionTransition's move, and records nothing.
func (q *Queries) executionTransition(ctx context.Context, t ExecutionTransition) (Execution, bool, error) {
	var reason *string
	if t.Reason != "" {
		reason = &t.Reason
	}
	var result []byte
	if len(t.Result) > 0 {
		result = t.Result
	}
	var e Execution
	err := q.db.QueryRow(ctx, `
		WITH `+queuesFirst(`SELECT $1::bigint`)+`
		UPDATE attune.execution SET status = $2, worker = coalesce($4, worker), result = coalesce($5, result),
			reason = CASE WHEN status = 'abandoned' THEN coalesce($6, `+lateResultReason+`) ELSE coalesce($6, reason) END,
			started_at = CASE WHEN $2 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
			finished_at = CASE WHEN $2 IN ('completed', 'failed', 'cancelled', 'timeout', 'abandoned') THEN now() ELSE finished_at END
		WHERE `+queuesLocked+` AND id = $1 AND status = ANY($3)
		RETURNING `+heldSlotColumn+`, `+executionColumns,
		t.ID, t.To, t.From, t.Worker, result, reason).Scan(append([]any{&e.HeldSlot}, executionDest(&e)...)...)
	if err != nil {
		if isNoRows(err) {
			return Execution{}, false, nil
		}
		return Execution{}, false, fmt.Errorf("move execution %d to %s: %w", t.ID, t.To, translate(err))
	}
	return e, true, nil
}

// queuesFirst is a CTE named queues that locks, in id order, the admission queues of the
// executions whose ids the query targets selects; queuesLocked, in the statement's WHERE, makes
// it run before any execution is touched. Every writer that holds both a queue's row and an
// execution's takes the queue first, and several queues in id order: creating executions
// (attune.execution_create), ending them (whose trigger gives their place back), expiring
// and abandoning them. So two such writers never wait on each other in a circle.
func queuesFirst(targets string) string {
	return `queues AS MATERIALIZED (SELECT g.id FROM attune.admission_group g
		WHERE g.id IN (SELECT ae.admission_group FROM attune.admission_entry ae WHERE ae.execution IN (` + targets + `))
		ORDER BY g.id FOR UPDATE)`
}

// queuesLocked evaluates queuesFirst once, before the first row: see queuesFirst.
const queuesLocked = `(SELECT count(*) FROM queues) >= 0`

// lateResultReason replaces the reason of an abandonment that a late result overrides: the
// worker was out of touch with the database, not dead, and its action ran to this end.
const lateResultReason = `'recorded after the execution had been abandoned: its worker lost touch with the database but not its action'`

// heldSlotColumn says whether the execution holds a place under a policy. In RETURNING it
// reads the place as it was before the statement: the trigger that gives it back at an ending
// runs after.
const heldSlotColumn = `EXISTS (SELECT 1 FROM attune.admission_entry ae WHERE ae.execution = execution.id)`

// ExecutionTransitionBatch is ExecutionTransition for many transitions with one commit, with
// an outcome per item in the order given. Transitions of the same execution are applied in
// the order given, as if one after another (the second sees the status the first left), in
// one transaction. When a statement fails (a bad item, such as a move the status guard
// refuses), nothing is written.
func (q *Queries) ExecutionTransitionBatch(ctx context.Context, ts []ExecutionTransition) ([]ExecutionOutcome, error) {
	for _, t := range ts {
		if t.Audit != "" {
			return nil, fmt.Errorf("move %d executions: execution %d asks for an audit record, which only ExecutionTransition writes", len(ts), t.ID)
		}
	}
	out := make([]ExecutionOutcome, len(ts))
	rounds := occurrences(len(ts), func(i int) int64 { return ts[i].ID })
	apply := func(q *Queries) error {
		for _, round := range rounds {
			if err := q.executionTransitionRound(ctx, ts, round, out); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if len(rounds) == 1 {
		err = apply(q)
	} else {
		err = q.inTx(ctx, apply)
	}
	if err != nil {
		return nil, fmt.Errorf("move %d executions: %w", len(ts), err)
	}
	return out, nil
}

// executionTransitionRound applies ts[i] for each i of round, which name distinct
// executions, in one statement. Rows are fed in the order of their policy group, then of
// their id: an ending's trigger locks its group's row, and two batches that took the groups
// in different orders would deadlock. The planner is not bound to that order; a deadlock all
// the same fails the batch, which then runs item by item (package coalesce).
func (q *Queries) executionTransitionRound(ctx context.Context, ts []ExecutionTransition, round []int, out []ExecutionOutcome) error {
	n := len(round)
	ids, tos, froms, ords := make([]int64, n), make([]string, n), make([]string, n), make([]int32, n)
	workers, results, reasons := make([]*int64, n), make([]*string, n), make([]*string, n)
	for k, i := range round {
		t := ts[i]
		ids[k], tos[k], froms[k], workers[k], ords[k] = t.ID, t.To, strings.Join(t.From, ","), t.Worker, int32(i)
		if len(t.Result) > 0 {
			r := string(t.Result)
			results[k] = &r
		}
		if t.Reason != "" {
			reasons[k] = &ts[i].Reason
		}
	}
	rows := make([]ExecutionOutcome, len(ts))
	err := scanOrdered(ctx, q.db, rows, func(e *ExecutionOutcome) []any {
		e.OK = true
		return append([]any{&e.Execution.HeldSlot}, executionDest(&e.Execution)...)
	}, `
		WITH input AS (
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::integer[])
				AS i(id, to_status, from_statuses, worker, result, reason, ord)
			ORDER BY (SELECT ae.admission_group FROM attune.admission_entry ae WHERE ae.execution = i.id) NULLS FIRST, id),
		`+queuesFirst(`SELECT unnest($1::bigint[])`)+`
		UPDATE attune.execution SET status = input.to_status, worker = coalesce(input.worker, execution.worker),
			result = coalesce(input.result::jsonb, execution.result),
			reason = CASE WHEN execution.status = 'abandoned' THEN coalesce(input.reason, `+lateResultReason+`)
				ELSE coalesce(input.reason, execution.reason) END,
			started_at = CASE WHEN input.to_status = 'running' THEN coalesce(execution.started_at, now()) ELSE execution.started_at END,
			finished_at = CASE WHEN input.to_status IN ('completed', 'failed', 'cancelled', 'timeout', 'abandoned') THEN now()
				ELSE execution.finished_at END
		FROM input
		WHERE `+queuesLocked+` AND execution.id = input.id AND execution.status = ANY(string_to_array(input.from_statuses, ','))
		RETURNING input.ord + 1, `+heldSlotColumn+`, `+executionColumns,
		ids, tos, froms, workers, results, reasons, ords)
	if err != nil {
		return translate(err)
	}
	for _, i := range round {
		out[i] = rows[i]
	}
	return nil
}
