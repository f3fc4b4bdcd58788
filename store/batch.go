package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/attune-go/attune/store/coalesce"
)

// The hot statements of the pipeline (an event's insert, as the API makes it, and every
// statement an execution passes through after it), called on the Store rather than in a
// transaction, go through coalescing groups: concurrent callers of one statement share one round trip and
// one commit (package coalesce). Each caller still gets its own outcome, committed before it
// returns; alone, a caller runs the single-row statement at once.
type batches struct {
	events      *coalesce.Group[EventInsertParams, *Event]
	claims      *coalesce.Group[ExecutionClaimParams, ExecutionOutcome]
	transitions *coalesce.Group[ExecutionTransition, ExecutionOutcome]
	creates     *coalesce.Group[ExecutionCreateParams, ExecutionCreated]
	enforces    *coalesce.Group[EventEnforcement, []Enforcement]
	versions    *coalesce.Group[struct{}, int64]
}

// BatchSizes returns the observer of the sizes of one coalesced statement's batches, named
// by statement; nil observes nothing.
type BatchSizes func(statement string) coalesce.Observer

func newBatches(q *Queries, sizes BatchSizes) batches {
	if sizes == nil {
		sizes = func(string) coalesce.Observer { return nil }
	}
	return batches{
		events: coalesce.New(coalesce.Config[EventInsertParams, *Event]{
			Sizes: sizes("event_insert"),
			Many:  q.EventInsertBatch,
			One: func(ctx context.Context, p EventInsertParams) (*Event, error) {
				e, err := q.EventInsert(ctx, p)
				if err != nil {
					return nil, err
				}
				return &e, nil
			},
		}),
		claims: coalesce.New(coalesce.Config[ExecutionClaimParams, ExecutionOutcome]{
			Sizes: sizes("execution_claim"),
			Many:  q.ExecutionClaimBatch,
			One: func(ctx context.Context, c ExecutionClaimParams) (ExecutionOutcome, error) {
				e, ok, err := q.ExecutionClaim(ctx, c.ID, c.Worker)
				return ExecutionOutcome{Execution: e, OK: ok}, err
			},
		}),
		transitions: coalesce.New(coalesce.Config[ExecutionTransition, ExecutionOutcome]{
			Sizes: sizes("execution_transition"),
			Many:  q.ExecutionTransitionBatch,
			One: func(ctx context.Context, t ExecutionTransition) (ExecutionOutcome, error) {
				e, ok, err := q.ExecutionTransition(ctx, t)
				return ExecutionOutcome{Execution: e, OK: ok}, err
			},
		}),
		creates: coalesce.New(coalesce.Config[ExecutionCreateParams, ExecutionCreated]{
			Sizes: sizes("execution_create"),
			Many:  q.ExecutionCreate,
			One:   q.ExecutionCreateOne,
		}),
		enforces: coalesce.New(coalesce.Config[EventEnforcement, []Enforcement]{
			Sizes: sizes("event_enforce"),
			Many:  q.EventEnforceBatch,
			One: func(ctx context.Context, e EventEnforcement) ([]Enforcement, error) {
				return q.EventEnforce(ctx, e.EventID, e.Matches)
			},
		}),
		// One read answers every caller waiting when it starts: it began after each of them
		// asked, so it counts every change committed before any of them asked. A caller that
		// asks while a read is in flight waits for the next one.
		versions: coalesce.New(coalesce.Config[struct{}, int64]{
			Sizes: sizes("component_version"),
			Many: func(ctx context.Context, items []struct{}) ([]int64, error) {
				v, err := q.ComponentVersion(ctx)
				if err != nil {
					return nil, err
				}
				out := make([]int64, len(items))
				for i := range out {
					out[i] = v
				}
				return out, nil
			},
			One: func(ctx context.Context, _ struct{}) (int64, error) { return q.ComponentVersion(ctx) },
		}),
	}
}

// EventInsert is Queries.EventInsert, sharing its statement with concurrent inserts.
func (s *Store) EventInsert(ctx context.Context, p EventInsertParams) (Event, error) {
	e, err := s.batches.events.Do(ctx, p)
	if err != nil {
		return Event{}, err
	}
	if e == nil {
		return Event{}, fmt.Errorf("insert event of trigger %s: %w", p.TriggerRef, translate(pgx.ErrNoRows))
	}
	return *e, nil
}

// ExecutionClaim is Queries.ExecutionClaim, sharing its statement with concurrent claims.
func (s *Store) ExecutionClaim(ctx context.Context, id, worker int64) (Execution, bool, error) {
	o, err := s.batches.claims.Do(ctx, ExecutionClaimParams{ID: id, Worker: worker})
	return o.Execution, o.OK, err
}

// ExecutionTransition is Queries.ExecutionTransition, sharing its commit with concurrent
// transitions; one that is recorded (t.Audit) has a transaction of its own.
func (s *Store) ExecutionTransition(ctx context.Context, t ExecutionTransition) (Execution, bool, error) {
	if t.Audit != "" {
		return s.Queries.ExecutionTransition(ctx, t)
	}
	o, err := s.batches.transitions.Do(ctx, t)
	return o.Execution, o.OK, err
}

// ExecutionCreateDirect is Queries.ExecutionCreateOne in a statement of its own, for a caller
// that must answer within a bound (the API): a shared statement would keep it waiting for the
// other callers it carries, past its deadline, while its own statement ends with its
// context, and rolls back.
func (s *Store) ExecutionCreateDirect(ctx context.Context, p ExecutionCreateParams) (ExecutionCreated, error) {
	return s.Queries.ExecutionCreateOne(ctx, p)
}

// ExecutionRequest is ExecutionCreateDirect for an execution someone asked for (the API's
// execute and rerun), recorded in attune.audit in the same transaction with the actor of ctx:
// execution.request, or execution.rerun when it reruns its parent. The record keeps the name
// of the API token the request came with, which the execution's requested_by shows. Rules,
// workflows and retries create executions without one: who caused those is derived from
// their enforcement, parent and first attempt.
func (s *Store) ExecutionRequest(ctx context.Context, p ExecutionCreateParams) (ExecutionCreated, error) {
	return audited(ctx, s.Queries, func(q *Queries) (ExecutionCreated, error) { return q.ExecutionCreateOne(ctx, p) },
		func(c ExecutionCreated) auditRecord { return requestRecord(c, nil) })
}

// ExecutionCreateOne is Queries.ExecutionCreateOne, sharing its statement and commit with
// concurrent creations.
func (s *Store) ExecutionCreateOne(ctx context.Context, p ExecutionCreateParams) (ExecutionCreated, error) {
	return s.batches.creates.Do(ctx, p)
}

// EventEnforce is Queries.EventEnforce, sharing its statement with concurrent events.
func (s *Store) EventEnforce(ctx context.Context, id int64, matches []EnforcementMatch) ([]Enforcement, error) {
	return s.batches.enforces.Do(ctx, EventEnforcement{EventID: id, Matches: matches})
}

// ComponentVersion is Queries.ComponentVersion, read once for every caller waiting when the
// read starts. The count it returns includes every change committed before the call.
func (s *Store) ComponentVersion(ctx context.Context) (int64, error) {
	return s.batches.versions.Do(ctx, struct{}{})
}

// scanOrdered runs a batch statement whose rows start with the 1-based position of the item
// they answer, and scans each row into out at that position through dest.
func scanOrdered[T any](ctx context.Context, db DBTX, out []T, dest func(*T) []any, sql string, args ...any) error {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ord int64
		var item T
		if err := rows.Scan(append([]any{&ord}, dest(&item)...)...); err != nil {
			return err
		}
		if ord < 1 || int(ord) > len(out) {
			return fmt.Errorf("batch statement answered for item %d of %d", ord, len(out))
		}
		out[ord-1] = item
	}
	return rows.Err()
}

// occurrences splits the items 0..n-1 into rounds: the first item of each key in the first
// round, the second of each in the second, and so on, each round in the order given.
func occurrences(n int, key func(int) int64) [][]int {
	seen := make(map[int64]int, n)
	var rounds [][]int
	for i := range n {
		k := seen[key(i)]
		seen[key(i)] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], i)
	}
	return rounds
}
