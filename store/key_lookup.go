package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// KeyName names a key as a template reads it, kv.<Scope>.<Name>: Scope is "system", "pack"
// (the pack of the rule, workflow or action that reads it) or "user" (the identity that
// requested the execution).
type KeyName struct {
	Scope string
	Name  string
}

// KeyFound is a key's value as a template reads it: the JSON value of a key that is not
// secret, and for a secret key the JSON string of its seal token, never its value.
type KeyFound struct {
	Value  json.RawMessage
	Secret bool
}

// KeyLookup reads the keys named, in one statement: those of scope "pack" in pack packRef,
// those of scope "user" owned by user (none when user is nil). Keys that do not exist or have
// expired are left out.
func (q *Queries) KeyLookup(ctx context.Context, packRef string, user *int64, names []KeyName) (map[KeyName]KeyFound, error) {
	if len(names) == 0 {
		return nil, nil
	}
	scopes, keys := make([]string, len(names)), make([]string, len(names))
	for i, n := range names {
		scopes[i], keys[i] = n.Scope, n.Name
	}
	rows, err := q.db.Query(ctx, `SELECT u.scope, u.name, k.secret, CASE WHEN k.secret THEN to_jsonb(k.sealed) ELSE k.value END
		FROM unnest($1::text[], $2::text[]) u(scope, name)
		JOIN attune.key k ON k.name = u.name AND k.scope = CASE u.scope WHEN 'pack' THEN 'pack.' || $3 ELSE u.scope END
		WHERE (k.scope <> 'user' OR k.owner = $4) AND (k.expires IS NULL OR k.expires > now())`, scopes, keys, packRef, user)
	if err != nil {
		return nil, fmt.Errorf("look up %d keys: %w", len(names), translate(err))
	}
	found := make(map[KeyName]KeyFound, len(names))
	var n KeyName
	var k KeyFound
	if _, err := pgx.ForEachRow(rows, []any{&n.Scope, &n.Name, &k.Secret, &k.Value}, func() error {
		found[n] = KeyFound{Value: append(json.RawMessage(nil), k.Value...), Secret: k.Secret}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("look up %d keys: %w", len(names), translate(err))
	}
	return found, nil
}
