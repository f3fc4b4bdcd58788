package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event is a row of attune.event: one firing of a trigger.
type Event struct {
	ID         int64           `json:"id"`
	TriggerRef string          `json:"trigger_ref"`
	Payload    json.RawMessage `json:"payload"`
	Source     string          `json:"source"`
	// RuleRef is set for events meant for one rule only (a timer of that rule).
	RuleRef          *string    `json:"rule_ref"`
	RulesEvaluatedAt *time.Time `json:"rules_evaluated_at"`
	Created          time.Time  `json:"created"`
}

const eventColumns = `id, trigger_ref, payload, source, rule_ref, rules_evaluated_at, created`

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.TriggerRef, &e.Payload, &e.Source, &e.RuleRef, &e.RulesEvaluatedAt, &e.Created)
	return e, err
}

// EventInsertParams describe a new event.
type EventInsertParams struct {
	TriggerRef string
	Payload    json.RawMessage
	Source     string
	RuleRef    string // empty: every rule of the trigger
}

// EventInsert records an event. The trigger must exist.
func (q *Queries) EventInsert(ctx context.Context, p EventInsertParams) (Event, error) {
	var ruleRef *string
	if p.RuleRef != "" {
		ruleRef = &p.RuleRef
	}
	e, err := scanEvent(q.db.QueryRow(ctx, `
		INSERT INTO attune.event (trigger, trigger_ref, payload, source, rule_ref)
		SELECT t.id, t.ref, $2, $3, $4 FROM attune.trigger t WHERE t.ref = $1
		RETURNING `+eventColumns,
		p.TriggerRef, jsonOr(p.Payload, "{}"), p.Source, ruleRef))
	if err != nil {
		return Event{}, fmt.Errorf("insert event of trigger %s: %w", p.TriggerRef, translate(err))
	}
	return e, nil
}

// EventGet returns event id.
func (q *Queries) EventGet(ctx context.Context, id int64) (Event, error) {
	e, err := scanEvent(q.db.QueryRow(ctx, `SELECT `+eventColumns+` FROM attune.event WHERE id = $1`, id))
	if err != nil {
		return Event{}, fmt.Errorf("get event %d: %w", id, translate(err))
	}
	return e, nil
}

// EventList returns a page of events, newest first, optionally of one trigger.
func (q *Queries) EventList(ctx context.Context, triggerRef string, page Page) ([]Event, int, error) {
	return list(ctx, q.db, "events", `FROM attune.event WHERE ($1 = '' OR trigger_ref = $1)`, eventColumns, `id DESC`, page, scanEvent, triggerRef)
}

// EventMarkEvaluated records that the rules have seen event id. It reports false when that
// had already happened (a redelivered event.created).
func (q *Queries) EventMarkEvaluated(ctx context.Context, id int64) (bool, error) {
	tag, err := q.db.Exec(ctx, `UPDATE attune.event SET rules_evaluated_at = now() WHERE id = $1 AND rules_evaluated_at IS NULL`, id)
	if err != nil {
		return false, fmt.Errorf("mark event %d evaluated: %w", id, translate(err))
	}
	return tag.RowsAffected() == 1, nil
}

// EventListUnevaluated returns events older than before that no rule matcher has seen: their
// event.created message was lost between commit and publish.
func (q *Queries) EventListUnevaluated(ctx context.Context, before time.Time, limit int) ([]Event, error) {
	return queryAll(ctx, q.db, "list unevaluated events", scanEvent, `SELECT `+eventColumns+` FROM attune.event
		WHERE rules_evaluated_at IS NULL AND created < $1 ORDER BY created LIMIT $2`, before, limit)
}
