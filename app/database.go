package app

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/spf13/pflag"

	"github.com/attune-go/attune/migrations"
	"github.com/attune-go/attune/store"
)

const defaultDatabaseURL = "postgres://localhost:5432/attune?sslmode=disable"

// databaseFlags are shared by every command that reaches the database.
type databaseFlags struct {
	url string
}

func (d *databaseFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&d.url, "database-url", defaultDatabaseURL, "PostgreSQL URL; the database is created if missing")
	bindEnv(fs, "database-url", "ATTUNE_DATABASE_URL")
}

func openPool(ctx context.Context, url string, logger *slog.Logger) (*pgxpool.Pool, error) {
	return store.Open(ctx, store.Config{URL: url, CreateDatabase: true, Logger: logger.With("module", "store")})
}

// withMigrator hands fn a migrator over pool, through database/sql as goose needs.
func withMigrator(pool *pgxpool.Pool, logger *slog.Logger, fn func(*migrations.Migrator) error) error {
	db := stdlib.OpenDBFromPool(pool)
	defer func(db *sql.DB) { _ = db.Close() }(db)
	m, err := migrations.New(db, logger.With("module", "migrations"))
	if err != nil {
		return err
	}
	return fn(m)
}

// prepareSchema migrates at start, or with migrate off refuses to run on an outdated schema.
func prepareSchema(ctx context.Context, pool *pgxpool.Pool, migrate bool, logger *slog.Logger) error {
	return withMigrator(pool, logger, func(m *migrations.Migrator) error {
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
