package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// ExecutionTokenPrefix starts every token of a running action, so that one found in a log
// says what it is and the API tells it from its other tokens without a lookup.
const ExecutionTokenPrefix = "atx_"

// ExecutionTokenIssue returns a new token for execution, good for ttl while the execution
// runs. The ttl counts on PostgreSQL's clock, which every check compares with: the worker's
// host may be ahead of it or behind. Only its SHA-256 is kept: the token itself exists only
// in the answer.
func (q *Queries) ExecutionTokenIssue(ctx context.Context, execution int64, ttl time.Duration) (token string, err error) {
	token, sum, err := newToken(ExecutionTokenPrefix)
	if err != nil {
		return "", fmt.Errorf("issue token of execution %d: %w", execution, err)
	}
	if _, err := q.db.Exec(ctx, `INSERT INTO attune.execution_token (hash, execution, expires)
		VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')`, sum, execution, ttl.Microseconds()); err != nil {
		return "", fmt.Errorf("issue token of execution %d: %w", execution, translate(err))
	}
	return token, nil
}

// ExecutionTokenHolder is what a live execution token stands for: a running execution and the
// pack of its action.
type ExecutionTokenHolder struct {
	Execution int64
	ActionRef string
	PackRef   string
}

// ExecutionTokenHolderBySum returns the execution whose token hashes to sum, while the token
// has not expired and the execution runs (running or canceling); anything else is ErrNotFound
// alike.
func (q *Queries) ExecutionTokenHolderBySum(ctx context.Context, sum []byte) (ExecutionTokenHolder, error) {
	var h ExecutionTokenHolder
	err := q.db.QueryRow(ctx, `SELECT e.id, e.action_ref, coalesce(a.pack_ref, split_part(e.action_ref, '.', 1))
		FROM attune.execution_token t
		JOIN attune.execution e ON e.id = t.execution
		LEFT JOIN attune.action a ON a.id = e.action
		WHERE t.hash = $1 AND t.expires > now() AND e.status IN ('running', 'canceling')`, sum).
		Scan(&h.Execution, &h.ActionRef, &h.PackRef)
	if err != nil {
		return ExecutionTokenHolder{}, fmt.Errorf("look up execution token: %w", translate(err))
	}
	return h, nil
}

// ExecutionTokenDeleteExpired deletes at most limit expired execution tokens and returns how
// many it deleted; replicas sweeping at once skip each other's rows.
func (q *Queries) ExecutionTokenDeleteExpired(ctx context.Context, limit int) (int, error) {
	tag, err := q.db.Exec(ctx, `DELETE FROM attune.execution_token WHERE hash IN (
		SELECT hash FROM attune.execution_token WHERE expires <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`, limit)
	if err != nil {
		return 0, fmt.Errorf("delete expired execution tokens: %w", translate(err))
	}
	return int(tag.RowsAffected()), nil
}

// newToken returns a new bearer token starting with prefix, 32 random bytes in base64url,
// and its SHA-256, which is all the database keeps of it.
func newToken(prefix string) (token string, sum []byte, err error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, err
	}
	token = prefix + base64.RawURLEncoding.EncodeToString(secret)
	h := sha256.Sum256([]byte(token))
	return token, h[:], nil
}
