package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pack is a row of attune.pack.
type Pack struct {
	ID          int64  `json:"id"`
	Ref         string `json:"ref"`
	Label       string `json:"label"`
	Description string `json:"description"`
	Version     string `json:"version"`
	Path        string `json:"path"`
	// CurrentVersion is the hash of the version new executions run (PackVersion), empty for
	// a pack registered without its content, such as the built-in core pack.
	CurrentVersion string    `json:"current_version"`
	Created        time.Time `json:"created"`
	Updated        time.Time `json:"updated"`
}

// Action is a row of attune.action. Parameters is the pack's parameter schema as JSON.
type Action struct {
	ID             int64           `json:"id"`
	Ref            string          `json:"ref"`
	PackRef        string          `json:"pack_ref"`
	Label          string          `json:"label"`
	Description    string          `json:"description"`
	RunnerType     string          `json:"runner_type"`
	EntryPoint     string          `json:"entry_point"`
	Parameters     json.RawMessage `json:"parameters"`
	OutputFormat   string          `json:"output_format"`
	TimeoutSeconds int             `json:"timeout_seconds"`
	Enabled        bool            `json:"enabled"`
	// Retry, when set, repeats an attempt that ends in one of its statuses; a policy's retry
	// wins over it.
	Retry *Retry `json:"retry"`
	// Workflow is the checked definition of a workflow action (runner workflow), as package
	// modules/workflow encodes it; null for every other runner.
	Workflow json.RawMessage `json:"workflow,omitempty"`
	// WorkerSelector names the labels a worker must have to run the action; nil runs it on
	// any worker of its runner. A policy's selector wins over it.
	WorkerSelector Labels `json:"worker_selector,omitempty"`
	// PackPath is the directory of the action's pack, where its scripts are.
	PackPath string `json:"-"`
	// PackVersion is the hash of the pack's current version, which a worker runs the
	// action's scripts from; empty when the pack has no stored content.
	PackVersion string    `json:"-"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// Trigger is a row of attune.trigger.
type Trigger struct {
	ID          int64           `json:"id"`
	Ref         string          `json:"ref"`
	PackRef     string          `json:"pack_ref"`
	Label       string          `json:"label"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Output      json.RawMessage `json:"output"`
	Enabled     bool            `json:"enabled"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
}

// Sensor is a row of attune.sensor.
type Sensor struct {
	ID          int64           `json:"id"`
	Ref         string          `json:"ref"`
	PackRef     string          `json:"pack_ref"`
	Label       string          `json:"label"`
	Description string          `json:"description"`
	EntryPoint  string          `json:"entry_point"`
	TriggerRefs []string        `json:"trigger_refs"`
	Parameters  json.RawMessage `json:"parameters"`
	Config      json.RawMessage `json:"config"`
	Enabled     bool            `json:"enabled"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
}

// Rule is a row of attune.rule.
type Rule struct {
	ID            int64           `json:"id"`
	Ref           string          `json:"ref"`
	PackRef       string          `json:"pack_ref"`
	Label         string          `json:"label"`
	Description   string          `json:"description"`
	TriggerRef    string          `json:"trigger_ref"`
	TriggerParams json.RawMessage `json:"trigger_params"`
	Conditions    json.RawMessage `json:"conditions"`
	ActionRef     string          `json:"action_ref"`
	ActionParams  json.RawMessage `json:"action_params"`
	Enabled       bool            `json:"enabled"`
	Created       time.Time       `json:"created"`
	Updated       time.Time       `json:"updated"`
	// ActionParameters is the parameter schema of the rule's action as it is now, read with
	// the rule: it says which of ActionParams are secret. Writes ignore it.
	ActionParameters json.RawMessage `json:"-"`
}

// Retry says when an execution is tried again: each attempt that ends in one of On, with
// fewer than MaxAttempts made, is followed by another after a delay: DelaySeconds, doubled
// for each attempt made when Backoff is exponential, at most MaxDelaySeconds. It is kept as
// jsonb; the database plans the next attempt from it (migration 00014).
type Retry struct {
	MaxAttempts     int      `json:"max_attempts"`
	On              []string `json:"on"`
	DelaySeconds    int      `json:"delay_seconds"`
	Backoff         string   `json:"backoff"`
	MaxDelaySeconds *int     `json:"max_delay_seconds,omitempty"`
}

// Policy is a row of attune.policy.
type Policy struct {
	ID                    int64    `json:"id"`
	Ref                   string   `json:"ref"`
	PackRef               *string  `json:"pack_ref"`
	ActionRef             *string  `json:"action_ref"`
	Enabled               bool     `json:"enabled"`
	ConcurrencyLimit      *int     `json:"concurrency_limit"`
	ConcurrencyMethod     string   `json:"concurrency_method"`
	ConcurrencyParameters []string `json:"concurrency_parameters"`
	RateMaxExecutions     *int     `json:"rate_max_executions"`
	RateWindowSeconds     *int     `json:"rate_window_seconds"`
	RateMethod            string   `json:"rate_method"`
	MaxQueueLength        *int     `json:"max_queue_length"`
	QueueTimeoutSeconds   *int     `json:"queue_timeout_seconds"`
	Retry                 *Retry   `json:"retry"`
	// WorkerSelector, when set, names the labels a worker must have to run the executions of
	// the actions the policy covers; it wins over the action's own.
	WorkerSelector Labels `json:"worker_selector,omitempty"`
	// FromPack is the pack whose policies/ directory the policy came from; nil for one
	// made through the API.
	FromPack *string   `json:"source_pack"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

const (
	actionColumns = `id, ref, pack_ref, label, description, runner_type, entry_point, parameters, output_format, timeout_seconds, enabled,
		retry, workflow, worker_selector, (SELECT path FROM attune.pack p WHERE p.id = action.pack),
		(SELECT coalesce(v.hash, '') FROM attune.pack p LEFT JOIN attune.pack_version v ON v.id = p.current_version WHERE p.id = action.pack),
		created, updated`
	triggerColumns = `id, ref, pack_ref, label, description, parameters, output, enabled, created, updated`
	ruleColumns    = ruleOwnColumns + ruleActionColumn
	ruleOwnColumns = `id, ref, pack_ref, label, description, trigger_ref, trigger_params, conditions, action_ref, action_params, enabled, created, updated`
	// ruleActionColumn reads the schema of the rule's action (Rule.ActionParameters); it
	// names the rule's table rule, as every statement that reads rules does.
	ruleActionColumn = `, (SELECT ra.parameters FROM attune.action ra WHERE ra.id = rule.action)`
	packColumns      = `id, ref, label, description, version, path,
		coalesce((SELECT v.hash FROM attune.pack_version v WHERE v.id = current_version), ''), created, updated`
)

func scanAction(row pgx.Row) (Action, error) {
	var a Action
	err := row.Scan(&a.ID, &a.Ref, &a.PackRef, &a.Label, &a.Description, &a.RunnerType, &a.EntryPoint, &a.Parameters,
		&a.OutputFormat, &a.TimeoutSeconds, &a.Enabled, &a.Retry, &a.Workflow, &a.WorkerSelector, &a.PackPath, &a.PackVersion, &a.Created, &a.Updated)
	return a, err
}

func scanTrigger(row pgx.Row) (Trigger, error) {
	var t Trigger
	err := row.Scan(&t.ID, &t.Ref, &t.PackRef, &t.Label, &t.Description, &t.Parameters, &t.Output, &t.Enabled, &t.Created, &t.Updated)
	return t, err
}

func scanRule(row pgx.Row) (Rule, error) {
	var r Rule
	err := row.Scan(&r.ID, &r.Ref, &r.PackRef, &r.Label, &r.Description, &r.TriggerRef, &r.TriggerParams, &r.Conditions,
		&r.ActionRef, &r.ActionParams, &r.Enabled, &r.Created, &r.Updated, &r.ActionParameters)
	return r, err
}

func scanPack(row pgx.Row) (Pack, error) {
	var p Pack
	err := row.Scan(&p.ID, &p.Ref, &p.Label, &p.Description, &p.Version, &p.Path, &p.CurrentVersion, &p.Created, &p.Updated)
	return p, err
}

// ActionGetByRef returns the action called ref.
func (q *Queries) ActionGetByRef(ctx context.Context, ref string) (Action, error) {
	a, err := scanAction(q.db.QueryRow(ctx, `SELECT `+actionColumns+` FROM attune.action WHERE ref = $1`, ref))
	if err != nil {
		return Action{}, fmt.Errorf("get action %s: %w", ref, translate(err))
	}
	return a, nil
}

// ActionList returns a page of actions in ref order, optionally of one pack.
func (q *Queries) ActionList(ctx context.Context, packRef string, page Page) ([]Action, int, error) {
	return list(ctx, q.db, "actions", `FROM attune.action WHERE ($1 = '' OR pack_ref = $1)`, actionColumns, `ref`, page, scanAction, packRef)
}

// TriggerGetByRef returns the trigger called ref.
func (q *Queries) TriggerGetByRef(ctx context.Context, ref string) (Trigger, error) {
	t, err := scanTrigger(q.db.QueryRow(ctx, `SELECT `+triggerColumns+` FROM attune.trigger WHERE ref = $1`, ref))
	if err != nil {
		return Trigger{}, fmt.Errorf("get trigger %s: %w", ref, translate(err))
	}
	return t, nil
}

// TriggerList returns a page of triggers in ref order.
func (q *Queries) TriggerList(ctx context.Context, packRef string, page Page) ([]Trigger, int, error) {
	return list(ctx, q.db, "triggers", `FROM attune.trigger WHERE ($1 = '' OR pack_ref = $1)`, triggerColumns, `ref`, page, scanTrigger, packRef)
}

// RuleGetByRef returns the rule called ref.
func (q *Queries) RuleGetByRef(ctx context.Context, ref string) (Rule, error) {
	r, err := scanRule(q.db.QueryRow(ctx, `SELECT `+ruleColumns+` FROM attune.rule WHERE ref = $1`, ref))
	if err != nil {
		return Rule{}, fmt.Errorf("get rule %s: %w", ref, translate(err))
	}
	return r, nil
}

// RuleList returns a page of rules in ref order.
func (q *Queries) RuleList(ctx context.Context, packRef string, page Page) ([]Rule, int, error) {
	return list(ctx, q.db, "rules", `FROM attune.rule WHERE ($1 = '' OR pack_ref = $1)`, ruleColumns, `ref`, page, scanRule, packRef)
}

// RuleListEnabledByTrigger returns the enabled rules of one trigger, for the rule matcher.
func (q *Queries) RuleListEnabledByTrigger(ctx context.Context, triggerRef string) ([]Rule, error) {
	return queryAll(ctx, q.db, "list enabled rules of "+triggerRef, scanRule,
		`SELECT `+ruleColumns+` FROM attune.rule WHERE enabled AND trigger_ref = $1 ORDER BY ref`, triggerRef)
}

// RuleListEnabled returns every enabled rule, for the timers.
func (q *Queries) RuleListEnabled(ctx context.Context) ([]Rule, error) {
	return queryAll(ctx, q.db, "list enabled rules", scanRule, `SELECT `+ruleColumns+` FROM attune.rule WHERE enabled ORDER BY ref`)
}

// PackGetByRef returns the pack called ref.
func (q *Queries) PackGetByRef(ctx context.Context, ref string) (Pack, error) {
	p, err := scanPack(q.db.QueryRow(ctx, `SELECT `+packColumns+` FROM attune.pack WHERE ref = $1`, ref))
	if err != nil {
		return Pack{}, fmt.Errorf("get pack %s: %w", ref, translate(err))
	}
	return p, nil
}

// PackList returns a page of packs in ref order.
func (q *Queries) PackList(ctx context.Context, page Page) ([]Pack, int, error) {
	return list(ctx, q.db, "packs", `FROM attune.pack`, packColumns, `ref`, page, scanPack)
}

// list runs a count and a page query over the same FROM ... WHERE clause.
func list[T any](ctx context.Context, db DBTX, what, from, columns, order string, page Page, scan func(pgx.Row) (T, error), args ...any) ([]T, int, error) {
	var total int
	if err := db.QueryRow(ctx, `SELECT count(*) `+from, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count %s: %w", what, translate(err))
	}
	n := len(args)
	items, err := queryAll(ctx, db, "list "+what, scan,
		fmt.Sprintf(`SELECT %s %s ORDER BY %s LIMIT $%d OFFSET $%d`, columns, from, order, n+1, n+2), append(args, page.Limit, page.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	if items == nil {
		items = []T{}
	}
	return items, total, nil
}

// queryAll runs a query and scans every row with scan; what names the operation in errors.
func queryAll[T any](ctx context.Context, db DBTX, what string, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, translate(err))
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, translate(err))
	}
	return items, nil
}

// ComponentVersion returns the count of changes to rules, actions and policies so far
// (attune.component_version): a cache filled at a lower count may be missing a change whose
// NOTIFY has not arrived yet.
func (q *Queries) ComponentVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := q.db.QueryRow(ctx, `SELECT last_value FROM attune.component_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read component version: %w", translate(err))
	}
	return v, nil
}
