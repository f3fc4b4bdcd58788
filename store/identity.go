package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Identity is a row of attune.identity: someone who may use the API. PasswordHash is never
// shown.
type Identity struct {
	ID           int64     `json:"id"`
	Login        string    `json:"login"`
	PasswordHash string    `json:"-"`
	Role         string    `json:"role"`
	TokenVersion int       `json:"-"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
}

// APIToken is a row of attune.api_token, with the login of the identity it acts for.
type APIToken struct {
	ID         int64      `json:"id"`
	IdentityID int64      `json:"identity_id"`
	Login      string     `json:"login"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Role       *string    `json:"role"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Created    time.Time  `json:"created"`
}

// TokenOwner is what a token's secret resolves to: the token and the identity behind it.
type TokenOwner struct {
	Token    APIToken
	Identity Identity
}

const identityColumns = `identity.id, identity.login, identity.password_hash, identity.role, identity.token_version,
	identity.created, identity.updated`

func scanIdentity(row pgx.Row) (Identity, error) {
	var i Identity
	err := row.Scan(&i.ID, &i.Login, &i.PasswordHash, &i.Role, &i.TokenVersion, &i.Created, &i.Updated)
	return i, err
}

// IdentityInsert adds an identity; a login in use is ErrConflict.
func (q *Queries) IdentityInsert(ctx context.Context, login, passwordHash, role string) (Identity, error) {
	return audited(ctx, q, func(q *Queries) (Identity, error) { return q.identityInsert(ctx, login, passwordHash, role) },
		func(x Identity) auditRecord {
			return auditRecord{"identity.create", "identity", x.Login, map[string]any{"role": x.Role}}
		})
}

// identityInsert makes IdentityInsert's change; IdentityInsert records it.
func (q *Queries) identityInsert(ctx context.Context, login, passwordHash, role string) (Identity, error) {
	i, err := scanIdentity(q.db.QueryRow(ctx, `INSERT INTO attune.identity (login, password_hash, role)
		VALUES ($1, $2, $3) RETURNING `+identityColumns, login, passwordHash, role))
	if err != nil {
		return Identity{}, fmt.Errorf("insert identity %s: %w", login, translate(err))
	}
	return i, nil
}

// IdentityBootstrap adds login as an admin when no identity exists at all, and reports
// whether it did. Replicas starting together may all try; one inserts, the others see the
// login taken and report false.
func (q *Queries) IdentityBootstrap(ctx context.Context, login, passwordHash string) (bool, error) {
	var created bool
	err := q.inTx(ctx, func(q *Queries) error {
		tag, err := q.db.Exec(ctx, `INSERT INTO attune.identity (login, password_hash, role)
			SELECT $1, $2, 'admin' WHERE NOT EXISTS (SELECT 1 FROM attune.identity)
			ON CONFLICT (login) DO NOTHING`, login, passwordHash)
		if err != nil || tag.RowsAffected() == 0 {
			return translate(err)
		}
		created = true
		return q.audit(ctx, auditRecord{"identity.create", "identity", login, map[string]any{"role": "admin", "first": true}})
	})
	if err != nil {
		return false, fmt.Errorf("bootstrap identity %s: %w", login, err)
	}
	return created, nil
}

// IdentityGet returns the identity with that id.
func (q *Queries) IdentityGet(ctx context.Context, id int64) (Identity, error) {
	i, err := scanIdentity(q.db.QueryRow(ctx, `SELECT `+identityColumns+` FROM attune.identity WHERE id = $1`, id))
	if err != nil {
		return Identity{}, fmt.Errorf("get identity %d: %w", id, translate(err))
	}
	return i, nil
}

// IdentityGetByLogin returns the identity called login.
func (q *Queries) IdentityGetByLogin(ctx context.Context, login string) (Identity, error) {
	i, err := scanIdentity(q.db.QueryRow(ctx, `SELECT `+identityColumns+` FROM attune.identity WHERE login = $1`, login))
	if err != nil {
		return Identity{}, fmt.Errorf("get identity %s: %w", login, translate(err))
	}
	return i, nil
}

// IdentityList returns a page of identities in login order.
func (q *Queries) IdentityList(ctx context.Context, page Page) ([]Identity, int, error) {
	return list(ctx, q.db, "identities", `FROM attune.identity`, identityColumns, `identity.login`, page, scanIdentity)
}

// identityUpdate makes Store.IdentityUpdate's change, in a transaction after lockAdmins:
// alone, two demotions at once can both pass its check. Store.IdentityUpdate records it.
func (q *Queries) identityUpdate(ctx context.Context, login, passwordHash, role string) (Identity, error) {
	i, err := scanIdentity(q.db.QueryRow(ctx, `UPDATE attune.identity SET
			role = coalesce(nullif($3, ''), role),
			password_hash = coalesce(nullif($2, ''), password_hash),
			token_version = token_version + CASE WHEN $2 = '' THEN 0 ELSE 1 END
		WHERE login = $1
		  AND (coalesce(nullif($3, ''), role) = 'admin' OR role <> 'admin'
		       OR EXISTS (SELECT 1 FROM attune.identity o WHERE o.role = 'admin' AND o.login <> $1))
		RETURNING `+identityColumns, login, passwordHash, role))
	if isNoRows(err) {
		return Identity{}, q.identityMissingOrLastAdmin(ctx, login, "demote")
	}
	if err != nil {
		return Identity{}, fmt.Errorf("update identity %s: %w", login, translate(err))
	}
	return i, nil
}

// identityDelete makes Store.IdentityDelete's change, in a transaction after lockAdmins:
// alone, two deletions at once can both pass its check. Store.IdentityDelete records it.
func (q *Queries) identityDelete(ctx context.Context, login string) error {
	tag, err := q.db.Exec(ctx, `DELETE FROM attune.identity WHERE login = $1
		AND (role <> 'admin' OR EXISTS (SELECT 1 FROM attune.identity o WHERE o.role = 'admin' AND o.login <> $1))`, login)
	if err != nil {
		return fmt.Errorf("delete identity %s: %w", login, translate(err))
	}
	if tag.RowsAffected() == 0 {
		return q.identityMissingOrLastAdmin(ctx, login, "delete")
	}
	return nil
}

// IdentityUpdate changes an identity's role, its password or both (an empty value keeps
// what is there). A new password advances the token version, which ends every session issued
// before. The last admin cannot stop being one: that is ErrConflict. The admins are locked
// first, so that two demotions at once cannot both see the other admin and leave none.
func (s *Store) IdentityUpdate(ctx context.Context, login, passwordHash, role string) (i Identity, err error) {
	err = s.InTx(ctx, func(q *Queries) error {
		if err := q.lockAdmins(ctx); err != nil {
			return err
		}
		if i, err = q.identityUpdate(ctx, login, passwordHash, role); err != nil {
			return err
		}
		// Whether the password changed, never its hash.
		return q.audit(ctx, auditRecord{"identity.update", "identity", login,
			map[string]any{"role": i.Role, "password_changed": passwordHash != ""}})
	})
	return i, err
}

// IdentityDelete removes an identity and its API tokens. Deleting the last admin is
// ErrConflict: nobody could manage identities afterwards. The admins are locked first, so
// that two deletions at once cannot both see the other admin and leave none.
func (s *Store) IdentityDelete(ctx context.Context, login string) error {
	return s.InTx(ctx, func(q *Queries) error {
		if err := q.lockAdmins(ctx); err != nil {
			return err
		}
		if err := q.identityDelete(ctx, login); err != nil {
			return err
		}
		return q.audit(ctx, auditRecord{"identity.delete", "identity", login, nil})
	})
}

// lockAdmins takes the admins' rows until the transaction ends. The statements after it see
// what a concurrent change committed meanwhile, as each statement takes a new snapshot.
func (q *Queries) lockAdmins(ctx context.Context) error {
	if _, err := q.db.Exec(ctx, `SELECT id FROM attune.identity WHERE role = 'admin' ORDER BY id FOR UPDATE`); err != nil {
		return fmt.Errorf("lock admins: %w", translate(err))
	}
	return nil
}

func (q *Queries) identityMissingOrLastAdmin(ctx context.Context, login, verb string) error {
	if _, err := q.IdentityGetByLogin(ctx, login); err != nil {
		return err
	}
	return fmt.Errorf("%s identity %s: it is the last admin: %w", verb, login, ErrConflict)
}

const tokenColumns = `t.id, t.identity, identity.login, t.name, t.prefix, t.role, t.expires_at, t.revoked_at, t.created`

func scanToken(row pgx.Row) (APIToken, error) {
	var t APIToken
	err := row.Scan(&t.ID, &t.IdentityID, &t.Login, &t.Name, &t.Prefix, &t.Role, &t.ExpiresAt, &t.RevokedAt, &t.Created)
	return t, err
}

// TokenInsertParams describe a new API token; the caller made the secret and keeps it.
type TokenInsertParams struct {
	IdentityID   int64
	Name         string
	Prefix       string
	SecretSHA256 []byte
	Role         *string
	ExpiresAt    *time.Time
}

// TokenInsert records an API token.
func (q *Queries) TokenInsert(ctx context.Context, p TokenInsertParams) (APIToken, error) {
	return audited(ctx, q, func(q *Queries) (APIToken, error) { return q.tokenInsert(ctx, p) },
		func(x APIToken) auditRecord {
			return auditRecord{"token.create", "token", strconv.FormatInt(x.ID, 10), tokenDetail(x)}
		})
}

// tokenInsert makes TokenInsert's change; TokenInsert records it.
func (q *Queries) tokenInsert(ctx context.Context, p TokenInsertParams) (APIToken, error) {
	t, err := scanToken(q.db.QueryRow(ctx, `WITH t AS (
			INSERT INTO attune.api_token (identity, name, prefix, secret_sha256, role, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING *)
		SELECT `+tokenColumns+` FROM t JOIN attune.identity identity ON identity.id = t.identity`,
		p.IdentityID, p.Name, p.Prefix, p.SecretSHA256, p.Role, p.ExpiresAt))
	if err != nil {
		return APIToken{}, fmt.Errorf("insert api token: %w", translate(err))
	}
	return t, nil
}

// TokenOwnerBySecret returns the live token whose secret hashes to sum, with its identity.
// A token revoked, expired or unknown is ErrNotFound alike.
func (q *Queries) TokenOwnerBySecret(ctx context.Context, sum []byte) (TokenOwner, error) {
	var o TokenOwner
	err := q.db.QueryRow(ctx, `SELECT `+tokenColumns+`, `+identityColumns+`
		FROM attune.api_token t JOIN attune.identity identity ON identity.id = t.identity
		WHERE t.secret_sha256 = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())`, sum).
		Scan(&o.Token.ID, &o.Token.IdentityID, &o.Token.Login, &o.Token.Name, &o.Token.Prefix, &o.Token.Role,
			&o.Token.ExpiresAt, &o.Token.RevokedAt, &o.Token.Created,
			&o.Identity.ID, &o.Identity.Login, &o.Identity.PasswordHash, &o.Identity.Role, &o.Identity.TokenVersion,
			&o.Identity.Created, &o.Identity.Updated)
	if err != nil {
		return TokenOwner{}, fmt.Errorf("look up api token: %w", translate(err))
	}
	return o, nil
}

// TokenList returns a page of API tokens, newest first: those of one identity, or of all
// when identityID is 0.
func (q *Queries) TokenList(ctx context.Context, identityID int64, page Page) ([]APIToken, int, error) {
	from := `FROM attune.api_token t JOIN attune.identity identity ON identity.id = t.identity`
	if identityID == 0 {
		return list(ctx, q.db, "api tokens", from, tokenColumns, `t.id DESC`, page, scanToken)
	}
	return list(ctx, q.db, "api tokens", from+` WHERE t.identity = $1`, tokenColumns, `t.id DESC`, page, scanToken, identityID)
}

// TokenGet returns the API token with that id.
func (q *Queries) TokenGet(ctx context.Context, id int64) (APIToken, error) {
	t, err := scanToken(q.db.QueryRow(ctx, `SELECT `+tokenColumns+`
		FROM attune.api_token t JOIN attune.identity identity ON identity.id = t.identity WHERE t.id = $1`, id))
	if err != nil {
		return APIToken{}, fmt.Errorf("get api token %d: %w", id, translate(err))
	}
	return t, nil
}

// TokenRevoke marks a token revoked, once: revoking it again changes nothing, records
// nothing, and returns it as it is.
func (q *Queries) TokenRevoke(ctx context.Context, id int64) (APIToken, error) {
	t, _, err := auditedIf(ctx, q, func(q *Queries) (APIToken, bool, error) { return q.tokenRevoke(ctx, id) },
		func(x APIToken) auditRecord {
			return auditRecord{"token.revoke", "token", strconv.FormatInt(x.ID, 10), tokenDetail(x)}
		})
	return t, err
}

// tokenRevoke makes TokenRevoke's change, and reports whether there was one; TokenRevoke
// records it.
func (q *Queries) tokenRevoke(ctx context.Context, id int64) (APIToken, bool, error) {
	t, err := scanToken(q.db.QueryRow(ctx, `WITH t AS (
			UPDATE attune.api_token SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING *)
		SELECT `+tokenColumns+` FROM t JOIN attune.identity identity ON identity.id = t.identity`, id))
	if isNoRows(err) {
		t, err = q.TokenGet(ctx, id)
		return t, false, err
	}
	if err != nil {
		return APIToken{}, false, fmt.Errorf("revoke api token %d: %w", id, translate(err))
	}
	return t, true, nil
}

// AuthKey returns the key access tokens are signed with. The first caller's candidate
// becomes the key of every replica; later callers get that one back.
func (q *Queries) AuthKey(ctx context.Context, candidate []byte) ([]byte, error) {
	if _, err := q.db.Exec(ctx, `INSERT INTO attune.auth_key (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, candidate); err != nil {
		return nil, fmt.Errorf("store auth key: %w", translate(err))
	}
	// A statement of its own, so that it sees the key of a replica that won the race.
	var key []byte
	if err := q.db.QueryRow(ctx, `SELECT secret FROM attune.auth_key WHERE id = 1`).Scan(&key); err != nil {
		return nil, fmt.Errorf("read auth key: %w", translate(err))
	}
	return key, nil
}
