package store

import (
	"context"
	"fmt"
)

// GeneratedKey returns the encryption key Attune generated for itself, base64, and its id;
// ErrNotFound when none was ever generated.
func (q *Queries) GeneratedKey(ctx context.Context) (id, material string, err error) {
	err = q.db.QueryRow(ctx, `SELECT id, material FROM attune.generated_key`).Scan(&id, &material)
	if err != nil {
		return "", "", fmt.Errorf("read the generated encryption key: %w", translate(err))
	}
	return id, material, nil
}

// GeneratedKeyCreate stores id and material as the generated encryption key unless one is
// stored already, and returns the one stored: of replicas that start together, one key wins
// and all use it.
func (q *Queries) GeneratedKeyCreate(ctx context.Context, id, material string) (storedID, stored string, created bool, err error) {
	tag, err := q.db.Exec(ctx, `INSERT INTO attune.generated_key (id, material) VALUES ($1, $2)
		ON CONFLICT (only_one) DO NOTHING`, id, material)
	if err != nil {
		return "", "", false, fmt.Errorf("store the generated encryption key: %w", translate(err))
	}
	storedID, stored, err = q.GeneratedKey(ctx)
	return storedID, stored, tag.RowsAffected() == 1, err
}
