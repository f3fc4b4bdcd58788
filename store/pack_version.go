package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PackContent is a pack's files as one version: a canonical gzip'd tar and the hash that
// names it (see pack.Archive).
type PackContent struct {
	Hash    string
	Archive []byte
	Size    int64
	Files   int
}

// PackVersion is a stored version of a pack, without its archive.
type PackVersion struct {
	Hash    string    `json:"hash"`
	Size    int64     `json:"size"`
	Files   int       `json:"files"`
	Created time.Time `json:"created"`
	Current bool      `json:"current"`
}

// packVersionSet stores c as a version of pack, unless that hash is stored already, and makes
// it the pack's current version; it reports whether the current version changed. Versions
// are immutable: the same content registered again is the same version.
func (q *Queries) packVersionSet(ctx context.Context, pack int64, c PackContent) (bool, error) {
	var id int64
	err := q.db.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO attune.pack_version (pack, hash, size, files, archive) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (pack, hash) DO NOTHING RETURNING id)
		SELECT id FROM ins UNION ALL SELECT id FROM attune.pack_version WHERE pack = $1 AND hash = $2`,
		pack, c.Hash, c.Size, c.Files, c.Archive).Scan(&id)
	if err != nil {
		return false, fmt.Errorf("store pack version %s: %w", c.Hash, translate(err))
	}
	tag, err := q.db.Exec(ctx, `UPDATE attune.pack SET current_version = $2 WHERE id = $1 AND current_version IS DISTINCT FROM $2`, pack, id)
	if err != nil {
		return false, fmt.Errorf("set current version of pack: %w", translate(err))
	}
	return tag.RowsAffected() > 0, nil
}

// PackVersionList returns the stored versions of pack ref, newest first.
func (q *Queries) PackVersionList(ctx context.Context, ref string) ([]PackVersion, error) {
	out, err := queryAll(ctx, q.db, "list versions of pack "+ref, func(r pgx.Row) (PackVersion, error) {
		var v PackVersion
		err := r.Scan(&v.Hash, &v.Size, &v.Files, &v.Created, &v.Current)
		return v, err
	}, `SELECT v.hash, v.size, v.files, v.created, v.id = p.current_version IS TRUE
		FROM attune.pack_version v JOIN attune.pack p ON p.id = v.pack
		WHERE p.ref = $1 ORDER BY v.created DESC, v.id DESC`, ref)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []PackVersion{}
	}
	return out, nil
}

// PackVersionArchive returns the archive of version hash of pack ref; ErrNotFound when there
// is none.
func (q *Queries) PackVersionArchive(ctx context.Context, ref, hash string) ([]byte, error) {
	var archive []byte
	err := q.db.QueryRow(ctx, `
		SELECT v.archive FROM attune.pack_version v JOIN attune.pack p ON p.id = v.pack
		WHERE p.ref = $1 AND v.hash = $2`, ref, hash).Scan(&archive)
	if err != nil {
		return nil, fmt.Errorf("get version %s of pack %s: %w", hash, ref, translate(err))
	}
	return archive, nil
}

// PackVersionsCurrent returns the hash of every pack's current version: what a worker's
// cache must keep.
func (q *Queries) PackVersionsCurrent(ctx context.Context) ([]string, error) {
	return queryAll(ctx, q.db, "list current pack versions", scanRef,
		`SELECT v.hash FROM attune.pack p JOIN attune.pack_version v ON v.id = p.current_version`)
}
