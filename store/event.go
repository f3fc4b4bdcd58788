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
	// TraceID names the trace the event starts (nil for events older than traces): its
	// enforcements and executions carry it.
	TraceID *string `json:"trace_id"`
}

const eventColumns = `id, trigger_ref, payload, source, rule_ref, rules_evaluated_at, created, trace_id`

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.TriggerRef, &e.Payload, &e.Source, &e.RuleRef, &e.RulesEvaluatedAt, &e.Created, &e.TraceID)
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

// EventInsertBatch is EventInsert for many events in one statement and one commit, with an
// event per item in the order given; an item whose trigger does not exist gets none (nil)
// and writes nothing. When the statement fails (a bad item), nothing is written.
func (q *Queries) EventInsertBatch(ctx context.Context, ps []EventInsertParams) ([]*Event, error) {
	n := len(ps)
	triggers, payloads, sources, ruleRefs := make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	for i, p := range ps {
		triggers[i], payloads[i], sources[i] = p.TriggerRef, string(jsonOr(p.Payload, "{}")), p.Source
		if p.RuleRef != "" {
			ruleRefs[i] = &ps[i].RuleRef
		}
	}
	// The ids are drawn before the insert, in the items' order, so that each row can be
	// matched to its item: RETURNING says nothing of the rows that were read to insert it.
	out := make([]*Event, n)
	err := scanOrdered(ctx, q.db, out, func(e **Event) []any {
		*e = &Event{}
		return []any{&(*e).ID, &(*e).TriggerRef, &(*e).Payload, &(*e).Source, &(*e).RuleRef, &(*e).RulesEvaluatedAt, &(*e).Created, &(*e).TraceID}
	}, `
		WITH input AS (
			SELECT i.ord, nextval(pg_get_serial_sequence('attune.event', 'id')) AS id, t.id AS trigger, t.ref AS trigger_ref,
				i.payload::jsonb AS payload, i.source, i.rule_ref
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS i(trigger_ref, payload, source, rule_ref, ord)
			JOIN attune.trigger t ON t.ref = i.trigger_ref
			ORDER BY i.ord),
		event AS (
			INSERT INTO attune.event (id, trigger, trigger_ref, payload, source, rule_ref) OVERRIDING SYSTEM VALUE
			SELECT id, trigger, trigger_ref, payload, source, rule_ref FROM input
			RETURNING `+eventColumns+`)
		SELECT input.ord, `+prefixed("event.", eventColumns)+` FROM event JOIN input ON input.id = event.id`,
		triggers, payloads, sources, ruleRefs)
	if err != nil {
		return nil, fmt.Errorf("insert %d events: %w", n, translate(err))
	}
	return out, nil
}

// EventGet returns event id.
func (q *Queries) EventGet(ctx context.Context, id int64) (Event, error) {
	e, err := scanEvent(q.db.QueryRow(ctx, `SELECT `+eventColumns+` FROM attune.event WHERE id = $1`, id))
	if err != nil {
		return Event{}, fmt.Errorf("get event %d: %w", id, translate(err))
	}
	return e, nil
}

// EventFilter narrows EventList; zero fields match everything.
type EventFilter struct {
	TriggerRef string
	Window
}

// EventList returns a page of events, newest first.
func (q *Queries) EventList(ctx context.Context, f EventFilter, page Page) ([]Event, int, error) {
	var w where
	if f.TriggerRef != "" {
		w.add("trigger_ref = $%d", f.TriggerRef)
	}
	w.window(f.Window)
	return list(ctx, q.db, "events", w.from("attune.event"), eventColumns, `id DESC`, page, scanEvent, w.args...)
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
