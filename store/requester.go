package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kinds of Requester: who, or what, caused an execution.
const (
	// RequestedByIdentity: someone asked through the API (execute, rerun).
	RequestedByIdentity = "identity"
	// RequestedByRule: a rule matched an event (of a timer, a webhook, a sensor or the API).
	RequestedByRule = "rule"
	// RequestedByWorkflow: it is a task of a workflow.
	RequestedByWorkflow = "workflow"
	// RequestedBySystem: none of those (tools and tests that write rows directly).
	RequestedBySystem = "system"
)

// Requester says who, or what, caused an execution. Nothing new is stored for it on the
// pipeline's path: it is derived when read, from the execution's enforcement (its rule) and
// the enforcement's event (its trigger and source), its parent (a workflow), its first attempt
// (a retry is caused by what caused the first), its requested_by identity, and the audit record
// of an API request, which alone names the API token used.
type Requester struct {
	Kind string `json:"kind"`
	// Identity is the login of the identity that requested it, or the workflow or first
	// attempt it belongs to; IdentityID its id while it exists.
	Identity   string `json:"identity,omitempty"`
	IdentityID *int64 `json:"identity_id,omitempty"`
	// Token is the name of the API token the request came with.
	Token string `json:"token,omitempty"`
	// Rule, Enforcement, Event, Trigger and Source say which rule matched which event, and
	// who fired the event: timer, webhook, api, or sensor (then Sensor names it).
	Rule        string `json:"rule,omitempty"`
	Enforcement *int64 `json:"enforcement,omitempty"`
	Event       *int64 `json:"event,omitempty"`
	Trigger     string `json:"trigger,omitempty"`
	Source      string `json:"source,omitempty"`
	Sensor      string `json:"sensor,omitempty"`
	// Workflow is the workflow whose task it is; RerunOf the execution it reruns; RetryOf the
	// first attempt of the request it retries.
	Workflow *int64 `json:"workflow,omitempty"`
	RerunOf  *int64 `json:"rerun_of,omitempty"`
	RetryOf  *int64 `json:"retry_of,omitempty"`
}

// requestKinds are the audit kinds that record an execution someone asked for.
const requestKinds = `('execution.request', 'execution.rerun')`

// ExecutionRequesters derives the Requester of each execution of ids (see Requester), in one
// statement; ids not found are left out.
func (q *Queries) ExecutionRequesters(ctx context.Context, ids []int64) (map[int64]Requester, error) {
	rows, err := q.db.Query(ctx, `
		SELECT e.id, e.retry_of, o.parent, o.task_name IS NOT NULL, o.requested_by, coalesce(i.login, a.actor, ''),
			coalesce(a.token, ''), a.id IS NOT NULL, en.id, coalesce(en.rule_ref, ''), ev.id, coalesce(ev.trigger_ref, ''),
			coalesce(ev.source, '')
		FROM unnest($1::bigint[]) AS x(id)
		JOIN attune.execution e ON e.id = x.id
		JOIN attune.execution o ON o.id = coalesce(e.retry_of, e.id)
		LEFT JOIN attune.identity i ON i.id = o.requested_by
		LEFT JOIN attune.enforcement en ON en.id = o.enforcement
		LEFT JOIN attune.event ev ON ev.id = en.event
		LEFT JOIN LATERAL (SELECT au.id, au.actor, au.token FROM attune.audit au
			WHERE au.object_kind = 'execution' AND au.object = o.id::text AND au.kind IN `+requestKinds+`
			ORDER BY au.id LIMIT 1) a ON true`, ids)
	if err != nil {
		return nil, fmt.Errorf("read who requested %d executions: %w", len(ids), translate(err))
	}
	out := make(map[int64]Requester, len(ids))
	for rows.Next() {
		var id int64
		var r Requester
		var parent *int64
		var task, audited bool
		if err := rows.Scan(&id, &r.RetryOf, &parent, &task, &r.IdentityID, &r.Identity, &r.Token, &audited,
			&r.Enforcement, &r.Rule, &r.Event, &r.Trigger, &r.Source); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read who requested %d executions: %w", len(ids), translate(err))
		}
		switch {
		case task:
			r.Kind, r.Workflow = RequestedByWorkflow, parent
		case r.Enforcement != nil:
			r.Kind = RequestedByRule
			if strings.Contains(r.Source, ".") {
				r.Source, r.Sensor = "sensor", r.Source
			}
		case audited || r.IdentityID != nil:
			r.Kind, r.RerunOf = RequestedByIdentity, parent
		default:
			r.Kind = RequestedBySystem
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read who requested %d executions: %w", len(ids), translate(err))
	}
	return out, nil
}

// RequestedByFilter narrows ExecutionList to what one requester caused; build it with
// ParseRequestedBy.
type RequestedByFilter struct {
	kind, value string
	// requester, when set, is the identity who is not an admin asking (see RequestedOnlyBy).
	requester int64
}

// RequestedOnlyBy makes f what identity, who is not an admin, may ask: a token: filter keeps
// only what identity requested (a token's name is its owner's and the admins' business, and
// another identity may have a token of the same name), and a login that no identity has
// finds nothing rather than an error, which would tell who has an account.
func (f RequestedByFilter) RequestedOnlyBy(identity int64) RequestedByFilter {
	f.requester = identity
	return f
}

// RequestedByForms lists what ParseRequestedBy accepts, for usage and errors.
const RequestedByForms = "LOGIN or identity:LOGIN, token:NAME, rule:REF, sensor:REF, timer, webhook, api, workflow:ID"

// ParseRequestedBy reads a requester filter:
//
//	LOGIN, identity:LOGIN  requested by this identity (execute, rerun, and the tasks and retries of those)
//	token:NAME             requested through the API with an API token of this name
//	rule:REF               caused by this rule (and the retries of those)
//	sensor:REF             caused by an event this custom sensor emitted, through any rule
//	timer, webhook, api    caused by an event of timers, of webhooks, or created through the API
//	workflow:ID            the tasks of workflow execution ID
//
// A bare timer, webhook or api is the source: identity:LOGIN names an identity of that login.
func ParseRequestedBy(s string) (RequestedByFilter, error) {
	kind, value, qualified := strings.Cut(s, ":")
	if !qualified {
		switch s {
		case "timer", "webhook", "api":
			return RequestedByFilter{kind: "source", value: s}, nil
		case "":
			return RequestedByFilter{}, fmt.Errorf("requested_by: empty; want %s", RequestedByForms)
		}
		return RequestedByFilter{kind: "identity", value: s}, nil
	}
	if value == "" {
		return RequestedByFilter{}, fmt.Errorf("requested_by %q: nothing after %s:; want %s", s, kind, RequestedByForms)
	}
	switch kind {
	case "identity", "token", "rule", "sensor":
		return RequestedByFilter{kind: kind, value: value}, nil
	case "workflow":
		if id, err := strconv.ParseInt(value, 10, 64); err != nil || id < 1 {
			return RequestedByFilter{}, fmt.Errorf("requested_by %q: want workflow:ID with an execution id, a positive whole number", s)
		}
		return RequestedByFilter{kind: kind, value: value}, nil
	}
	return RequestedByFilter{}, fmt.Errorf("requested_by %q: unknown kind %q; want %s", s, kind, RequestedByForms)
}

// caused is the predicate of an execution whose first attempt's enforcement is one of
// enforcements (a subquery whose one %d is the argument's number): a retry has no
// enforcement of its own. It is one id IN over a UNION ALL, which PostgreSQL reads as a
// semi-join whose two halves each use an index (the enforcement's unique key, then the
// attempts' key on retry_of); an OR of the two IN would scan every execution.
func caused(enforcements string) string {
	e := strings.ReplaceAll(enforcements, "%d", "%[1]d")
	return `id IN (SELECT x.id FROM attune.execution x WHERE x.enforcement IN (` + e + `)
		UNION ALL SELECT r.id FROM attune.execution x JOIN attune.execution r ON r.retry_of = x.id
			WHERE x.enforcement IN (` + e + `))`
}

// ErrUnknownRequester means a requester filter names an identity, rule or sensor that
// nothing knows of (a typo), rather than one that requested nothing.
var ErrUnknownRequester = errors.New("unknown requester")

// requesterKnown reports whether the identity, rule or sensor f names exists, or once existed
// and left a trace (a rule's enforcements, a sensor's events); other kinds are known.
func (q *Queries) requesterKnown(ctx context.Context, f RequestedByFilter) error {
	var sql, what string
	switch {
	case f.kind == "identity" && f.requester != 0:
		return nil
	case f.kind == "identity":
		sql, what = `SELECT EXISTS (SELECT 1 FROM attune.identity WHERE login = $1)`, "no identity has login"
	case f.kind == "rule":
		sql, what = `SELECT EXISTS (SELECT 1 FROM attune.rule WHERE ref = $1)
			OR EXISTS (SELECT 1 FROM attune.enforcement WHERE rule_ref = $1)`, "no rule is or was called"
	case f.kind == "sensor":
		sql, what = `SELECT EXISTS (SELECT 1 FROM attune.sensor WHERE ref = $1)
			OR EXISTS (SELECT 1 FROM attune.event WHERE source = $1 AND source LIKE '%.%')`, "no sensor is or was called"
	default:
		return nil
	}
	var known bool
	if err := q.db.QueryRow(ctx, sql, f.value).Scan(&known); err != nil {
		return fmt.Errorf("check requested_by %s:%s: %w", f.kind, f.value, translate(err))
	}
	if !known {
		return fmt.Errorf("requested_by %s:%s: %s %q: %w", f.kind, f.value, what, f.value, ErrUnknownRequester)
	}
	return nil
}

// add adds f's predicate to w.
func (f RequestedByFilter) add(w *where) {
	switch f.kind {
	case "identity":
		w.add("requested_by = (SELECT id FROM attune.identity WHERE login = $%d)", f.value)
	case "token":
		w.add(`id IN (SELECT object::bigint FROM attune.audit WHERE object_kind = 'execution' AND kind IN `+requestKinds+`
			AND token = $%d)`, f.value)
		if f.requester != 0 {
			w.add("requested_by = $%d", f.requester)
		}
	case "rule":
		w.add(caused(`SELECT id FROM attune.enforcement WHERE rule_ref = $%d`), f.value)
	case "sensor", "source":
		// A sensor's ref has a dot, and only those events are in event_sensor_source_idx.
		source := `ev.source = $%d`
		if f.kind == "sensor" {
			source += ` AND ev.source LIKE '%%.%%'`
		}
		w.add(caused(`SELECT en.id FROM attune.enforcement en JOIN attune.event ev ON ev.id = en.event WHERE `+source), f.value)
	case "workflow":
		id, _ := strconv.ParseInt(f.value, 10, 64)
		w.add("parent = $%d AND task_name IS NOT NULL", id)
	}
}
