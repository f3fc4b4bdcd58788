// Package database opens Attune's PostgreSQL database for a command and brings its schema to
// the version this binary carries.
package database

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/spf13/pflag"

	"github.com/attune-go/attune/app/cli"
	"github.com/attune-go/attune/migrations"
	"github.com/attune-go/attune/store"
)

// DefaultURL is the database of a laptop's PostgreSQL, as "make run" uses it.
const DefaultURL = "postgres://localhost:5432/attune?sslmode=disable"

// Flags are shared by every command that reaches the database.
type Flags struct {
	URL string
}

// Register adds --database-url to fs.
func (d *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&d.URL, "database-url", DefaultURL, "PostgreSQL URL; the database is created if missing")
	cli.BindEnv(fs, "database-url", "ATTUNE_DATABASE_URL")
}

// Open connects to the database at url, creating it if it is missing.
func Open(ctx context.Context, url string, logger *slog.Logger) (*pgxpool.Pool, error) {
	return store.Open(ctx, store.Config{URL: url, CreateDatabase: true, Logger: logger.With("module", "store")})
}

// OpenExisting connects to the database at url, which must exist already: for commands that
// change what is in it rather than set it up.
func OpenExisting(ctx context.Context, url string, logger *slog.Logger) (*pgxpool.Pool, error) {
	return store.Open(ctx, store.Config{URL: url, Logger: logger.With("module", "store")})
}

// WithMigrator hands fn a migrator over pool, through database/sql as goose needs.
func WithMigrator(pool *pgxpool.Pool, logger *slog.Logger, fn func(*migrations.Migrator) error) error {
	db := stdlib.OpenDBFromPool(pool)
	defer func(db *sql.DB) { _ = db.Close() }(db)
	m, err := migrations.New(db, logger.With("module", "migrations"))
	if err != nil {
		return err
	}
	return fn(m)
}

// PrepareSchema migrates at start, or with migrate off refuses to run on an outdated schema.
func PrepareSchema(ctx context.Context, pool *pgxpool.Pool, migrate bool, logger *slog.Logger) error {
	return WithMigrator(pool, logger, func(m *migrations.Migrator) error {
		if migrate {
			applied, err := m.Up(ctx)
			if err != nil {
				return err
			}
			if len(applied) > 0 {
				logger.InfoContext(ctx, "applied migrations", "module", "migrations", "versions", applied)
			}
			return nil
		}
		pending, err := m.Pending(ctx)
		if err != nil {
			return err
		}
		if pending > 0 {
			return fmt.Errorf("%d database migration(s) pending and --migrate=false: run \"attune migrate up\" or start with --migrate", pending)
		}
		return nil
	})
}
