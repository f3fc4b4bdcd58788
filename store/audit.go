package store

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Actor is who makes a change, as attune.audit records it: an identity (with the name of the
// API token its request came with), or a process acting on its own (System, CLI).
type Actor struct {
	// ID is the identity's id, 0 for anyone else.
	ID    int64
	Login string
	// Token is the name of the API token used, empty for an access token or none.
	Token string
}

// The actors that are no identity: System for what serve does by itself (--packs-dir, the
// first admin), CLI for the commands that change the database directly (attune key rotate,
// attune identity reset-password).
var (
	System = Actor{Login: "system"}
	CLI    = Actor{Login: "cli"}
)

type actorKey struct{}

// WithActor returns ctx carrying who acts. The changes the store records in attune.audit
// read it from the context rather than from every signature: the API sets it once per
// request, where it authenticates, and every change made for the request names it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns who acts in ctx; System when nobody was named.
func ActorOf(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return System
}

// AuditEntry is a row of attune.audit: who did what to which object, and when.
type AuditEntry struct {
	ID      int64     `json:"id"`
	Created time.Time `json:"created"`
	// ActorID is the acting identity's id while it was one; Actor its login (or system, cli,
	// anonymous), copied so that the entry outlives the identity.
	ActorID *int64 `json:"actor_id"`
	Actor   string `json:"actor"`
	// Token names the API token the change was asked with.
	Token *string `json:"token"`
	// Kind is noun.verb: execution.cancel, rule.update, key.set, ...
	Kind       string `json:"kind"`
	ObjectKind string `json:"object_kind"`
	Object     string `json:"object"`
	// Detail says what changed, never a secret value.
	Detail json.RawMessage `json:"detail"`
}

// auditRecord is what a change records of itself; the actor comes from the context.
type auditRecord struct {
	kind, objectKind, object string
	detail                   map[string]any
}

// audit writes the record of a change in q's transaction, so that the change and its record
// commit or roll back together.
func (q *Queries) audit(ctx context.Context, r auditRecord) error {
	a := ActorOf(ctx)
	var actorID *int64
	if a.ID != 0 {
		actorID = &a.ID
	}
	var token *string
	if a.Token != "" {
		token = &a.Token
	}
	detail, err := json.Marshal(r.detail)
	if err != nil {
		return fmt.Errorf("record %s of %s %s: %w", r.kind, r.objectKind, r.object, err)
	}
	if r.detail == nil {
		detail = []byte("{}")
	}
	if _, err := q.db.Exec(ctx, `INSERT INTO attune.audit (actor_id, actor, token, kind, object_kind, object, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, actorID, a.Login, token, r.kind, r.objectKind, r.object, detail); err != nil {
		return fmt.Errorf("record %s of %s %s: %w", r.kind, r.objectKind, r.object, translate(err))
	}
	return nil
}

// AuditRecord records, with the actor of ctx, a change made over many transactions of its
// own, once it is made (attune key rotate); detail must hold no secret value. Every change
// made in one transaction is recorded in it by the store method that makes it.
func (q *Queries) AuditRecord(ctx context.Context, kind, objectKind, object string, detail map[string]any) error {
	return q.audit(ctx, auditRecord{kind, objectKind, object, detail})
}

// audited makes change and records it in one transaction: record describes the change from
// its outcome. When change fails nothing is recorded, and when the record cannot be written
// the change is rolled back.
func audited[T any](ctx context.Context, q *Queries, change func(q *Queries) (T, error), record func(T) auditRecord) (T, error) {
	out, _, err := auditedIf(ctx, q, func(q *Queries) (T, bool, error) {
		out, err := change(q)
		return out, true, err
	}, record)
	return out, err
}

// auditedIf is audited for a change that may find nothing to do (enabling what is enabled,
// revoking what is revoked, moving an execution that is no longer where the move starts):
// change reports whether it changed anything, and only a change is recorded, so the audit
// never tells of one that did not happen. It reports what change reported.
func auditedIf[T any](ctx context.Context, q *Queries, change func(q *Queries) (T, bool, error), record func(T) auditRecord) (T, bool, error) {
	var out T
	var changed bool
	err := q.inTx(ctx, func(q *Queries) error {
		var err error
		if out, changed, err = change(q); err != nil || !changed {
			return err
		}
		return q.audit(ctx, record(out))
	})
	if err != nil {
		var zero T
		return zero, false, err
	}
	return out, changed, nil
}

// AuditFilter narrows AuditList; zero fields match everything.
type AuditFilter struct {
	// Actor keeps the entries of this login.
	Actor string
	// Kind keeps the entries of this kind, or of the kinds it starts: "rule" keeps
	// rule.create, rule.update, ...
	Kind string
	// ObjectKind and Object keep the entries about this object (Object only with ObjectKind).
	ObjectKind, Object string
	Window
}

// auditKindPattern is what a kind or a kind prefix looks like.
var auditKindPattern = regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)?$`)

// ValidAuditKind reports whether kind may filter AuditList: a noun (rule) or a kind
// (rule.update).
func ValidAuditKind(kind string) bool { return auditKindPattern.MatchString(kind) }

const auditColumns = `id, created, actor_id, actor, token, kind, object_kind, object, detail`

func scanAuditEntry(row pgx.Row) (AuditEntry, error) {
	var e AuditEntry
	err := row.Scan(&e.ID, &e.Created, &e.ActorID, &e.Actor, &e.Token, &e.Kind, &e.ObjectKind, &e.Object, &e.Detail)
	return e, err
}

// AuditList returns a page of audit entries, newest first.
func (q *Queries) AuditList(ctx context.Context, f AuditFilter, page Page) ([]AuditEntry, int, error) {
	var w where
	if f.Actor != "" {
		w.add("actor = $%d", f.Actor)
	}
	if f.Kind != "" {
		// The kinds Kind starts, as a range in byte order (the operators of audit_kind_idx's
		// text_pattern_ops): '/' follows '.'. LIKE would read the _ of webhook_secret as any
		// character.
		w.add("(kind = $%[1]d OR (kind ~>=~ ($%[1]d || '.') AND kind ~<~ ($%[1]d || '/')))", f.Kind)
	}
	if f.ObjectKind != "" {
		w.add("object_kind = $%d", f.ObjectKind)
	}
	if f.Object != "" {
		w.add("object = $%d", f.Object)
	}
	w.window(f.Window)
	return list(ctx, q.db, "audit entries", w.from("attune.audit"), auditColumns, `id DESC`, page, scanAuditEntry, w.args...)
}

// enableKind is noun.enable or noun.disable.
func enableKind(noun string, enabled bool) string {
	if enabled {
		return noun + ".enable"
	}
	return noun + ".disable"
}

func ruleDetail(r Rule) map[string]any {
	return map[string]any{"trigger": r.TriggerRef, "action": r.ActionRef, "enabled": r.Enabled}
}

func actionDetail(a Action) map[string]any {
	return map[string]any{"runner": a.RunnerType, "enabled": a.Enabled}
}

func policyDetail(x Policy) map[string]any {
	return map[string]any{"action": x.ActionRef, "pack": x.PackRef, "enabled": x.Enabled}
}

// tokenDetail describes an API token by its name and owner: neither its secret nor its hash.
func tokenDetail(t APIToken) map[string]any {
	return map[string]any{"name": t.Name, "owner": t.Login, "role": t.Role, "expires_at": t.ExpiresAt}
}

// requestRecord records an execution someone asked for: a first run, a rerun of its parent,
// or a rerun of a workflow from fromTasks. Its parameters stay out: they may hold secrets.
func requestRecord(c ExecutionCreated, fromTasks []string) auditRecord {
	e := c.Execution
	r := auditRecord{"execution.request", "execution", strconv.FormatInt(e.ID, 10),
		map[string]any{"action": e.ActionRef, "outcome": c.Outcome}}
	if e.ParentID != nil {
		r.kind, r.detail["rerun_of"] = "execution.rerun", *e.ParentID
	}
	if fromTasks != nil {
		r.detail["from_tasks"] = fromTasks
	}
	return r
}
