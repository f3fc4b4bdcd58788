package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Enforcement statuses.
const (
	EnforcementCreated   = "created"
	EnforcementProcessed = "processed"
	EnforcementDisabled  = "disabled"
)

// Enforcement is a row of attune.enforcement: a rule matched an event.
type Enforcement struct {
	ID         int64           `json:"id"`
	RuleRef    string          `json:"rule_ref"`
	TriggerRef string          `json:"trigger_ref"`
	EventID    int64           `json:"event_id"`
	Status     string          `json:"status"`
	Payload    json.RawMessage `json:"payload"`
	Conditions json.RawMessage `json:"conditions"`
	// Config holds the rendered action parameters.
	Config     json.RawMessage `json:"config"`
	Reason     *string         `json:"reason"`
	ResolvedAt *time.Time      `json:"resolved_at"`
	Created    time.Time       `json:"created"`
	Updated    time.Time       `json:"updated"`
	// TraceID is its event's trace (nil for enforcements older than traces).
	TraceID *string `json:"trace_id"`
	// Secrets names the secret parameters of the rule's action when the rule matched: their
	// values in Config are masked wherever the enforcement is shown.
	Secrets []string `json:"-"`
}

const enforcementColumns = `id, rule_ref, trigger_ref, event, status, payload, conditions, config, reason, resolved_at, created, updated, secrets,
	trace_id`

func scanEnforcement(row pgx.Row) (Enforcement, error) {
	var e Enforcement
	err := row.Scan(&e.ID, &e.RuleRef, &e.TriggerRef, &e.EventID, &e.Status, &e.Payload, &e.Conditions, &e.Config,
		&e.Reason, &e.ResolvedAt, &e.Created, &e.Updated, &e.Secrets, &e.TraceID)
	return e, err
}

// EnforcementInsertParams describe a match of a rule and an event.
type EnforcementInsertParams struct {
	RuleRef    string
	TriggerRef string
	EventID    int64
	Payload    json.RawMessage
	Conditions json.RawMessage
	Config     json.RawMessage
	// Reason, when set, records why the rule could not be evaluated; such an
	// enforcement is resolved at once and creates no execution.
	Reason string
	// Secrets names the secret parameters of the rule's action (see Enforcement.Secrets).
	Secrets []string
}

// EnforcementInsert records an enforcement. Each rule enforces an event once: when the pair
// exists already, the existing row is returned with created false.
func (q *Queries) EnforcementInsert(ctx context.Context, p EnforcementInsertParams) (e Enforcement, created bool, err error) {
	status, reason := EnforcementCreated, (*string)(nil)
	if p.Reason != "" {
		status, reason = EnforcementProcessed, &p.Reason
	}
	e, err = scanEnforcement(q.db.QueryRow(ctx, `
		INSERT INTO attune.enforcement (rule, rule_ref, trigger_ref, event, status, payload, conditions, config, reason, resolved_at, secrets,
			action_ref, trace_id)
		SELECT (SELECT id FROM attune.rule WHERE ref = $1), $1, $2, $3, $4, $5, $6, $7, $8,
			CASE WHEN $4 = 'created' THEN NULL ELSE now() END, $9, (SELECT action_ref FROM attune.rule WHERE ref = $1),
			(SELECT trace_id FROM attune.event WHERE id = $3)
		ON CONFLICT (event, rule_ref) DO NOTHING
		RETURNING `+enforcementColumns,
		p.RuleRef, p.TriggerRef, p.EventID, status, jsonOr(p.Payload, "{}"), jsonOr(p.Conditions, "[]"), jsonOr(p.Config, "{}"), reason,
		secretNames(p.Secrets)))
	if err == nil {
		return e, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Enforcement{}, false, fmt.Errorf("insert enforcement of rule %s for event %d: %w", p.RuleRef, p.EventID, translate(err))
	}
	e, err = scanEnforcement(q.db.QueryRow(ctx, `SELECT `+enforcementColumns+` FROM attune.enforcement WHERE event = $1 AND rule_ref = $2`,
		p.EventID, p.RuleRef))
	if err != nil {
		return Enforcement{}, false, fmt.Errorf("get enforcement of rule %s for event %d: %w", p.RuleRef, p.EventID, translate(err))
	}
	return e, false, nil
}

// EnforcementGet returns enforcement id.
func (q *Queries) EnforcementGet(ctx context.Context, id int64) (Enforcement, error) {
	e, err := scanEnforcement(q.db.QueryRow(ctx, `SELECT `+enforcementColumns+` FROM attune.enforcement WHERE id = $1`, id))
	if err != nil {
		return Enforcement{}, fmt.Errorf("get enforcement %d: %w", id, translate(err))
	}
	return e, nil
}

// EnforcementTarget is what the executor needs of an enforcement: the row and, through its
// rule, the action to run. ActionRef is empty when the rule is gone.
type EnforcementTarget struct {
	Enforcement
	ActionRef   string
	RuleEnabled bool
	// Matched says that ActionRef is the action the rule named when it matched, recorded on
	// the enforcement; false (for enforcements recorded before Attune kept it) when it is the
	// rule's action now.
	Matched bool
}

// EnforcementGetTarget returns enforcement id with the action its rule matched with.
func (q *Queries) EnforcementGetTarget(ctx context.Context, id int64) (EnforcementTarget, error) {
	var t EnforcementTarget
	var actionRef *string
	var enabled *bool
	e := &t.Enforcement
	err := q.db.QueryRow(ctx, `SELECT `+prefixed("enforcement.", enforcementColumns)+`,
			coalesce(enforcement.action_ref, r.action_ref), r.enabled, enforcement.action_ref IS NOT NULL
		FROM attune.enforcement LEFT JOIN attune.rule r ON r.ref = enforcement.rule_ref WHERE enforcement.id = $1`, id).
		Scan(&e.ID, &e.RuleRef, &e.TriggerRef, &e.EventID, &e.Status, &e.Payload, &e.Conditions, &e.Config,
			&e.Reason, &e.ResolvedAt, &e.Created, &e.Updated, &e.Secrets, &e.TraceID, &actionRef, &enabled, &t.Matched)
	if err != nil {
		return EnforcementTarget{}, fmt.Errorf("get enforcement %d: %w", id, translate(err))
	}
	if actionRef != nil {
		t.ActionRef = *actionRef
	}
	t.RuleEnabled = enabled != nil && *enabled
	return t, nil
}

// EnforcementResolve moves a created enforcement to status, with an optional reason.
func (q *Queries) EnforcementResolve(ctx context.Context, id int64, status, reason string) error {
	var r *string
	if reason != "" {
		r = &reason
	}
	_, err := q.db.Exec(ctx, `UPDATE attune.enforcement SET status = $2, reason = coalesce($3, reason), resolved_at = now()
		WHERE id = $1 AND status = 'created'`, id, status, r)
	if err != nil {
		return fmt.Errorf("resolve enforcement %d: %w", id, translate(err))
	}
	return nil
}

// EnforcementFilter narrows EnforcementList; zero fields match everything.
type EnforcementFilter struct {
	RuleRef string
	Window
}

// EnforcementList returns a page of enforcements, newest first.
func (q *Queries) EnforcementList(ctx context.Context, f EnforcementFilter, page Page) ([]Enforcement, int, error) {
	var w where
	if f.RuleRef != "" {
		w.add("rule_ref = $%d", f.RuleRef)
	}
	w.window(f.Window)
	return list(ctx, q.db, "enforcements", w.from("attune.enforcement"), enforcementColumns, `id DESC`, page, scanEnforcement, w.args...)
}

// EnforcementListStale returns enforcements still created before before: their
// enforcement.created message was lost between commit and publish.
func (q *Queries) EnforcementListStale(ctx context.Context, before time.Time, limit int) ([]Enforcement, error) {
	return queryAll(ctx, q.db, "list stale enforcements", scanEnforcement, `SELECT `+enforcementColumns+` FROM attune.enforcement
		WHERE status = 'created' AND created < $1 ORDER BY created LIMIT $2`, before, limit)
}

// EnforcementMatch is one rule's verdict on an event, for EventEnforce.
type EnforcementMatch struct {
	RuleRef    string
	Conditions json.RawMessage
	Config     json.RawMessage
	// Reason, when set, records why the rule could not be evaluated: the enforcement is
	// resolved at once and creates no execution.
	Reason string
	// Failure, when set, records why the rule matched but its parameters could not be
	// rendered: the enforcement goes to the executor like any other, which creates its
	// execution failed with this reason, so that the failure shows where executions do.
	Failure string
	// Secrets names the secret parameters of the rule's action (see Enforcement.Secrets).
	Secrets []string
}

// EventEnforce marks event id evaluated and records an enforcement per match, in one
// statement. When the event was evaluated already (a redelivered event.created), it writes
// nothing and returns nothing. It returns the enforcements created and still to be
// processed: the ones to announce.
func (q *Queries) EventEnforce(ctx context.Context, id int64, matches []EnforcementMatch) ([]Enforcement, error) {
	refs := make([]string, len(matches))
	statuses := make([]string, len(matches))
	conds := make([]string, len(matches))
	configs := make([]string, len(matches))
	reasons := make([]*string, len(matches))
	secrets := make([]string, len(matches)) // comma-separated: arrays of arrays must be rectangular
	for i, m := range matches {
		refs[i], conds[i], configs[i] = m.RuleRef, string(jsonOr(m.Conditions, "[]")), string(jsonOr(m.Config, "{}"))
		secrets[i] = strings.Join(m.Secrets, ",")
		statuses[i] = EnforcementCreated
		switch {
		case m.Reason != "":
			statuses[i], reasons[i] = EnforcementProcessed, &matches[i].Reason
		case m.Failure != "":
			reasons[i] = &matches[i].Failure
		}
	}
	created, err := queryAll(ctx, q.db, fmt.Sprintf("enforce event %d", id), scanEnforcement, `
		WITH ev AS (
			UPDATE attune.event SET rules_evaluated_at = now()
			WHERE id = $1 AND rules_evaluated_at IS NULL
			RETURNING id, trigger_ref, payload, trace_id)
		INSERT INTO attune.enforcement (rule, rule_ref, trigger_ref, event, status, payload, conditions, config, reason, resolved_at, secrets,
			action_ref, trace_id)
		SELECT r.id, m.rule_ref, ev.trigger_ref, ev.id, m.status, ev.payload, m.conditions::jsonb, m.config::jsonb, m.reason,
			CASE WHEN m.status = 'created' THEN NULL ELSE now() END, string_to_array(m.secrets, ','), r.action_ref, ev.trace_id
		FROM ev
		CROSS JOIN unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
			AS m(rule_ref, status, conditions, config, reason, secrets)
		LEFT JOIN attune.rule r ON r.ref = m.rule_ref
		ON CONFLICT (event, rule_ref) DO NOTHING
		RETURNING `+enforcementColumns, id, refs, statuses, conds, configs, reasons, secrets)
	if err != nil {
		return nil, err
	}
	out := created[:0]
	for _, e := range created {
		if e.Status == EnforcementCreated {
			out = append(out, e)
		}
	}
	return out, nil
}

// EventEnforcement is one event's verdicts, for EventEnforceBatch.
type EventEnforcement struct {
	EventID int64
	Matches []EnforcementMatch
}

// EventEnforceBatch is EventEnforce for many events in one statement and one commit: for
// each item in the order given, the enforcements it created that are still to be processed.
// Items naming the same event are applied as if one after another: the first records its
// enforcements, the others find the event evaluated and record nothing. When the statement
// fails (a bad item), nothing is written.
func (q *Queries) EventEnforceBatch(ctx context.Context, items []EventEnforcement) ([][]Enforcement, error) {
	events := make([]int64, len(items))
	var owners []int32
	var refs, statuses, conds, configs, secrets []string
	var reasons []*string
	for i, it := range items {
		events[i] = it.EventID
		for j, m := range it.Matches {
			owners = append(owners, int32(i+1))
			refs = append(refs, m.RuleRef)
			secrets = append(secrets, strings.Join(m.Secrets, ","))
			conds = append(conds, string(jsonOr(m.Conditions, "[]")))
			configs = append(configs, string(jsonOr(m.Config, "{}")))
			switch {
			case m.Reason != "":
				statuses, reasons = append(statuses, EnforcementProcessed), append(reasons, &it.Matches[j].Reason)
			case m.Failure != "":
				statuses, reasons = append(statuses, EnforcementCreated), append(reasons, &it.Matches[j].Failure)
			default:
				statuses, reasons = append(statuses, EnforcementCreated), append(reasons, nil)
			}
		}
	}
	// The first item of each event marks it, in event order so that concurrent batches lock
	// the events in one order; each enforcement carries the item whose match it records.
	rows, err := q.db.Query(ctx, `
		WITH input AS (
			SELECT DISTINCT ON (event) event, item
			FROM unnest($1::bigint[]) WITH ORDINALITY AS i(event, item)
			ORDER BY event, item),
		ev AS (
			UPDATE attune.event SET rules_evaluated_at = now()
			FROM input WHERE event.id = input.event AND event.rules_evaluated_at IS NULL
			RETURNING event.id, event.trigger_ref, event.payload, event.trace_id, input.item)
		INSERT INTO attune.enforcement (rule, rule_ref, trigger_ref, event, status, payload, conditions, config, reason, resolved_at, secrets,
			action_ref, trace_id)
		SELECT r.id, m.rule_ref, ev.trigger_ref, ev.id, m.status, ev.payload, m.conditions::jsonb, m.config::jsonb, m.reason,
			CASE WHEN m.status = 'created' THEN NULL ELSE now() END, string_to_array(m.secrets, ','), r.action_ref, ev.trace_id
		FROM ev
		JOIN unnest($2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
			AS m(item, rule_ref, status, conditions, config, reason, secrets) ON m.item = ev.item
		LEFT JOIN attune.rule r ON r.ref = m.rule_ref
		ON CONFLICT (event, rule_ref) DO NOTHING
		RETURNING `+enforcementColumns, events, owners, refs, statuses, conds, configs, reasons, secrets)
	if err != nil {
		return nil, fmt.Errorf("enforce %d events: %w", len(items), translate(err))
	}
	created, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Enforcement, error) { return scanEnforcement(r) })
	if err != nil {
		return nil, fmt.Errorf("enforce %d events: %w", len(items), translate(err))
	}
	// Each event's enforcements belong to its first item.
	first := make(map[int64]int, len(items))
	for i := len(items) - 1; i >= 0; i-- {
		first[items[i].EventID] = i
	}
	out := make([][]Enforcement, len(items))
	for _, e := range created {
		if e.Status == EnforcementCreated {
			i := first[e.EventID]
			out[i] = append(out[i], e)
		}
	}
	return out, nil
}
