// Package migrations holds Attune's schema as embedded goose SQL files and runs them under a
// PostgreSQL advisory lock, so that any number of processes may start at once.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// FS holds the migration files.
func FS() embed.FS { return files }

// Schema is the schema every Attune table lives in, goose's version table included.
const Schema = "attune"

const versionTable = Schema + ".goose_db_version"

// Migrator applies and inspects migrations on one database.
type Migrator struct {
	provider *goose.Provider
	db       *sql.DB
}

// New returns a migrator over db. The caller keeps ownership of db.
func New(db *sql.DB, logger *slog.Logger) (*Migrator, error) {
	// Replicas starting together wait for the one migrating; poll each second for up to 5 minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithTableName(versionTable),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, opts...)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return &Migrator{provider: p, db: db}, nil
}

// ensureSchema creates the schema goose keeps its version table in. It is not a migration
// because goose needs the table before it can run the first one. Two processes racing here
// can both miss the schema and one then fails on the catalog's unique index, so a failure is
// checked against what exists before it counts.
func (m *Migrator) ensureSchema(ctx context.Context) error {
	_, err := m.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+Schema)
	if err == nil {
		return nil
	}
	var exists bool
	if qerr := m.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", Schema).Scan(&exists); qerr == nil && exists {
		return nil
	}
	return fmt.Errorf("create schema %s: %w", Schema, err)
}

// Up applies every pending migration and returns the versions it applied.
func (m *Migrator) Up(ctx context.Context) ([]int64, error) {
	if err := m.ensureSchema(ctx); err != nil {
		return nil, err
	}
	results, err := m.provider.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("apply migrations: %w", err)
	}
	applied := make([]int64, 0, len(results))
	for _, r := range results {
		applied = append(applied, r.Source.Version)
	}
	return applied, nil
}

// Down rolls back the most recent migration and returns its version (0 when none was
// applied).
func (m *Migrator) Down(ctx context.Context) (int64, error) {
	if err := m.ensureSchema(ctx); err != nil {
		return 0, err
	}
	r, err := m.provider.Down(ctx)
	if err != nil {
		return 0, fmt.Errorf("roll back migration: %w", err)
	}
	if r == nil {
		return 0, nil
	}
	return r.Source.Version, nil
}

// Status is one migration's state.
type Status struct {
	Version int64
	Name    string
	Applied bool
	// AppliedAt is zero when the migration is pending.
	AppliedAt string
}

// Status lists every migration with whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]Status, error) {
	if err := m.ensureSchema(ctx); err != nil {
		return nil, err
	}
	results, err := m.provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read migration status: %w", err)
	}
	out := make([]Status, 0, len(results))
	for _, r := range results {
		s := Status{Version: r.Source.Version, Name: r.Source.Path, Applied: r.State == goose.StateApplied}
		if s.Applied {
			s.AppliedAt = r.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		out = append(out, s)
	}
	return out, nil
}

// Pending returns how many migrations are not applied yet.
func (m *Migrator) Pending(ctx context.Context) (int, error) {
	st, err := m.Status(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st {
		if !s.Applied {
			n++
		}
	}
	return n, nil
}
