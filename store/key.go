package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Key is a row of attune.key: a value of the datastore. A secret key holds Sealed (a seal
// token of its value's JSON) and no Value; any other holds Value.
type Key struct {
	ID    int64  `json:"-"`
	Scope string `json:"scope"`
	// Owner is the identity whose key it is, for scope user; 0 otherwise.
	Owner   int64           `json:"-"`
	Name    string          `json:"name"`
	Secret  bool            `json:"secret"`
	Value   json.RawMessage `json:"value"`
	Sealed  string          `json:"-"`
	Expires *time.Time      `json:"expires"`
	Created time.Time       `json:"created"`
	Updated time.Time       `json:"updated"`
}

// KeyRef names one key: its scope, its owner for scope user (0 otherwise) and its name.
type KeyRef struct {
	Scope string
	Owner int64
	Name  string
}

func (r KeyRef) String() string {
	if r.Scope == "user" {
		return fmt.Sprintf("user(%d).%s", r.Owner, r.Name)
	}
	return r.Scope + "." + r.Name
}

// KeySetParams is what KeySet writes: Value, or Sealed when Secret.
type KeySetParams struct {
	KeyRef
	Secret bool
	Value  json.RawMessage
	Sealed string
	// TTL, when not zero, is how long after the write the key expires, counted on
	// PostgreSQL's clock, which every read compares with: the hosts' clocks may differ.
	TTL time.Duration
}

// KeyFilter selects the keys KeyList returns.
type KeyFilter struct {
	// Scopes keeps the keys of these scopes; empty keeps every scope.
	Scopes []string
	// Owner is whose user keys are listed: those of no other identity ever are.
	Owner int64
	// Prefix keeps the keys whose name starts with it.
	Prefix string
}

const keyColumns = `id, scope, coalesce(owner, 0), name, secret, value, coalesce(sealed, ''), expires, created, updated`

// keyAlive is the predicate of a key not yet expired: an expired key is gone for every read
// at once, whether or not the sweep has deleted it yet.
const keyAlive = `(expires IS NULL OR expires > now())`

func scanKey(row pgx.Row) (Key, error) {
	var k Key
	err := row.Scan(&k.ID, &k.Scope, &k.Owner, &k.Name, &k.Secret, &k.Value, &k.Sealed, &k.Expires, &k.Created, &k.Updated)
	return k, err
}

func nullOwner(owner int64) *int64 {
	if owner == 0 {
		return nil
	}
	return &owner
}

// KeySet writes a key, replacing any before under its name (and its expiry: none given is
// none); created reports whether there was none, an expired one counting as none.
func (s *Store) KeySet(ctx context.Context, p KeySetParams) (k Key, created bool, err error) {
	err = s.InTx(ctx, func(q *Queries) error {
		if k, created, err = q.keySet(ctx, p); err != nil {
			return err
		}
		// What was written, never the value: a secret's seal, or a plain value, may be read
		// by whoever reads the audit, who need not be allowed to read the key.
		return q.audit(ctx, auditRecord{"key.set", "key", p.KeyRef.String(),
			map[string]any{"scope": p.Scope, "name": p.Name, "secret": p.Secret, "created": created, "expires": k.Expires}})
	})
	return k, created, err
}

// keySet makes Store.KeySet's change; Store.KeySet records it.
func (q *Queries) keySet(ctx context.Context, p KeySetParams) (Key, bool, error) {
	var value, sealed any
	if p.Secret {
		sealed = p.Sealed
	} else {
		value = []byte(p.Value)
	}
	// An expired key the sweep has not reached yet is replaced as if it were not there.
	if _, err := q.db.Exec(ctx, `DELETE FROM attune.key WHERE scope = $1 AND coalesce(owner, 0) = $2 AND name = $3
		AND NOT `+keyAlive, p.Scope, p.Owner, p.Name); err != nil {
		return Key{}, false, fmt.Errorf("set key %s: %w", p.KeyRef, translate(err))
	}
	var created bool
	row := q.db.QueryRow(ctx, `INSERT INTO attune.key (scope, owner, name, secret, value, sealed, expires)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, now() + $7::bigint * interval '1 microsecond')
		ON CONFLICT (scope, coalesce(owner, 0), name) DO UPDATE SET secret = excluded.secret,
			value = excluded.value, sealed = excluded.sealed, expires = excluded.expires
		RETURNING `+keyColumns+`, xmax = 0`, p.Scope, nullOwner(p.Owner), p.Name, p.Secret, value, sealed, ttlMicroseconds(p.TTL))
	var k Key
	err := row.Scan(&k.ID, &k.Scope, &k.Owner, &k.Name, &k.Secret, &k.Value, &k.Sealed, &k.Expires, &k.Created, &k.Updated, &created)
	if err != nil {
		return Key{}, false, fmt.Errorf("set key %s: %w", p.KeyRef, translate(err))
	}
	return k, created, nil
}

// KeyGet returns a key that has not expired.
func (q *Queries) KeyGet(ctx context.Context, ref KeyRef) (Key, error) {
	k, err := scanKey(q.db.QueryRow(ctx, `SELECT `+keyColumns+` FROM attune.key
		WHERE scope = $1 AND coalesce(owner, 0) = $2 AND name = $3 AND `+keyAlive, ref.Scope, ref.Owner, ref.Name))
	if err != nil {
		return Key{}, fmt.Errorf("get key %s: %w", ref, translate(err))
	}
	return k, nil
}

// KeyList returns a page of the keys f selects that have not expired, by scope and name.
func (q *Queries) KeyList(ctx context.Context, f KeyFilter, page Page) ([]Key, int, error) {
	var w where
	w.predicates = append(w.predicates, keyAlive)
	w.add("(scope <> 'user' OR owner = $%d)", f.Owner)
	if len(f.Scopes) > 0 {
		w.add("scope = ANY($%d)", f.Scopes)
	}
	if f.Prefix != "" {
		w.add(`name LIKE $%d || '%%' ESCAPE '\'`, likeEscaper.Replace(f.Prefix))
	}
	return list(ctx, q.db, "keys", w.from("attune.key"), keyColumns, "scope, name", page, scanKey, w.args...)
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// KeyDelete removes a key; one that has expired is ErrNotFound, like one never set (its row
// goes all the same, unrecorded, as the sweep would take it).
func (q *Queries) KeyDelete(ctx context.Context, ref KeyRef) error {
	var alive bool
	err := q.inTx(ctx, func(q *Queries) error {
		err := q.db.QueryRow(ctx, `DELETE FROM attune.key WHERE scope = $1 AND coalesce(owner, 0) = $2 AND name = $3
			RETURNING `+keyAlive, ref.Scope, ref.Owner, ref.Name).Scan(&alive)
		if err != nil || !alive {
			return translate(err)
		}
		return q.audit(ctx, auditRecord{"key.delete", "key", ref.String(), nil})
	})
	if err == nil && !alive {
		err = translate(pgx.ErrNoRows)
	}
	if err != nil {
		return fmt.Errorf("delete key %s: %w", ref, err)
	}
	return nil
}

// KeyDeleteExpired deletes at most limit expired keys and returns how many it deleted. Replicas
// sweeping at once skip each other's rows rather than wait on them.
func (q *Queries) KeyDeleteExpired(ctx context.Context, limit int) (int, error) {
	tag, err := q.db.Exec(ctx, `DELETE FROM attune.key WHERE id IN (
		SELECT id FROM attune.key WHERE expires <= now() ORDER BY expires LIMIT $1 FOR UPDATE SKIP LOCKED)`, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired keys: %w", translate(err))
	}
	return int(tag.RowsAffected()), nil
}

// ttlMicroseconds is a TTL as the statement takes it: nil (no expiry) for zero.
func ttlMicroseconds(ttl time.Duration) *int64 {
	if ttl == 0 {
		return nil
	}
	us := ttl.Microseconds()
	return &us
}
