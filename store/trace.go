package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// A trace is what one event caused, or one execution requested by hand: every event starts
// one (attune.event.trace_id defaults to a new uuid), its enforcements copy it from the event,
// and its executions, their workflow tasks and their retries carry it on (migration 00025).

// Trace returns the trace e starts, "" for an event older than traces.
func (e Event) Trace() string { return orEmpty(e.TraceID) }

// Trace returns the trace e belongs to, "" for an enforcement older than traces.
func (e Enforcement) Trace() string { return orEmpty(e.TraceID) }

// Trace returns the trace e belongs to, "" for an execution older than traces.
func (e Execution) Trace() string { return orEmpty(e.TraceID) }

func orEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TraceEvent is an event as a trace shows it: what fired, and when the rules saw it.
type TraceEvent struct {
	ID               int64      `json:"id"`
	TriggerRef       string     `json:"trigger_ref"`
	Source           string     `json:"source"`
	RuleRef          *string    `json:"rule_ref,omitempty"`
	Created          time.Time  `json:"created"`
	RulesEvaluatedAt *time.Time `json:"rules_evaluated_at"`
}

// TraceEnforcement is an enforcement as a trace shows it: a rule's match of an event, and
// why it was refused when it was.
type TraceEnforcement struct {
	ID         int64      `json:"id"`
	EventID    int64      `json:"event_id"`
	RuleRef    string     `json:"rule_ref"`
	ActionRef  *string    `json:"action_ref"`
	Status     string     `json:"status"`
	Reason     *string    `json:"reason"`
	Created    time.Time  `json:"created"`
	ResolvedAt *time.Time `json:"resolved_at"`
}

// TraceExecution is an execution as a trace shows it: where it hangs (its enforcement, its
// workflow or the request it retries), its status and its times.
type TraceExecution struct {
	ID            int64      `json:"id"`
	ActionRef     string     `json:"action_ref"`
	Status        string     `json:"status"`
	Reason        *string    `json:"reason"`
	EnforcementID *int64     `json:"enforcement_id,omitempty"`
	ParentID      *int64     `json:"parent_id,omitempty"`
	TaskName      *string    `json:"task_name,omitempty"`
	TaskItem      *int       `json:"task_item,omitempty"`
	Attempt       int        `json:"attempt"`
	RetryOf       *int64     `json:"retry_of,omitempty"`
	Worker        *string    `json:"worker,omitempty"`
	Created       time.Time  `json:"created"`
	StartedAt     *time.Time `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
}

// Trace is every row of one trace, each list in id order. Truncated says that a list was cut
// at TraceLimit rows.
type Trace struct {
	ID           string
	Events       []TraceEvent
	Enforcements []TraceEnforcement
	Executions   []TraceExecution
	Truncated    bool
}

// TraceLimit bounds each list of a Trace: a workflow over many items may have tens of
// thousands of tasks, more than anyone reads as a tree.
const TraceLimit = 5000

// TraceGet returns trace id; ErrNotFound when no row carries it. The columns read are the
// few a trace shows: no payloads, parameters or results. Rows are read from the last made to
// the first (executions, enforcements, events), so that what each row hangs from was made
// before the read that finds it.
func (q *Queries) TraceGet(ctx context.Context, id string) (Trace, error) {
	t := Trace{ID: id}
	var err error
	t.Executions, err = queryAll(ctx, q.db, "read the executions of trace "+id, func(r pgx.Row) (TraceExecution, error) {
		var e TraceExecution
		return e, r.Scan(&e.ID, &e.ActionRef, &e.Status, &e.Reason, &e.EnforcementID, &e.ParentID, &e.TaskName, &e.TaskItem,
			&e.Attempt, &e.RetryOf, &e.Worker, &e.Created, &e.StartedAt, &e.FinishedAt)
	}, `SELECT id, action_ref, status, reason, enforcement, parent, task_name, task_item, attempt, retry_of, worker_name,
			created, started_at, finished_at
		FROM attune.execution WHERE trace_id = $1 ORDER BY id LIMIT $2`, id, TraceLimit+1)
	if err != nil {
		return Trace{}, err
	}
	t.Enforcements, err = queryAll(ctx, q.db, "read the enforcements of trace "+id, func(r pgx.Row) (TraceEnforcement, error) {
		var e TraceEnforcement
		return e, r.Scan(&e.ID, &e.EventID, &e.RuleRef, &e.ActionRef, &e.Status, &e.Reason, &e.Created, &e.ResolvedAt)
	}, `SELECT id, event, rule_ref, action_ref, status, reason, created, resolved_at FROM attune.enforcement
		WHERE event IN (SELECT id FROM attune.event WHERE trace_id = $1) AND trace_id = $1
		ORDER BY id LIMIT $2`, id, TraceLimit+1)
	if err != nil {
		return Trace{}, err
	}
	t.Events, err = queryAll(ctx, q.db, "read the events of trace "+id, func(r pgx.Row) (TraceEvent, error) {
		var e TraceEvent
		return e, r.Scan(&e.ID, &e.TriggerRef, &e.Source, &e.RuleRef, &e.Created, &e.RulesEvaluatedAt)
	}, `SELECT id, trigger_ref, source, rule_ref, created, rules_evaluated_at FROM attune.event
		WHERE trace_id = $1 ORDER BY id LIMIT $2`, id, TraceLimit+1)
	if err != nil {
		return Trace{}, err
	}
	if len(t.Events)+len(t.Enforcements)+len(t.Executions) == 0 {
		return Trace{}, fmt.Errorf("no trace %s: %w", id, ErrNotFound)
	}
	t.Events, t.Truncated = cut(t.Events, t.Truncated)
	t.Enforcements, t.Truncated = cut(t.Enforcements, t.Truncated)
	t.Executions, t.Truncated = cut(t.Executions, t.Truncated)
	return t, nil
}

// cut keeps the first TraceLimit rows of rows, and reports whether any was dropped (or
// truncated already was).
func cut[T any](rows []T, truncated bool) ([]T, bool) {
	if len(rows) > TraceLimit {
		return rows[:TraceLimit], true
	}
	return rows, truncated
}
