// Package storetest gives each test a PostgreSQL database of its own, cloned from a migrated
// template, so that tests and test packages can run in parallel on one server.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/attune-go/attune/migrations"
	"github.com/attune-go/attune/store"
)

// EnvURL names the variable that points tests at a PostgreSQL server. The database it names
// is only used to create and drop the tests' own databases.
const EnvURL = "ATTUNE_TEST_DATABASE_URL"

var container struct {
	once sync.Once
	url  string
	err  error
}

// AdminURL returns the URL tests create their databases through: ATTUNE_TEST_DATABASE_URL,
// else a PostgreSQL container started once per test binary when a Docker engine answers.
// Without either the test is skipped, or fails under CI=true.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	container.once.Do(func() { container.url, container.err = startContainer() })
	if container.err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CI=true and no PostgreSQL: set %s or run a Docker engine (%v)", EnvURL, container.err)
		}
		tb.Skipf("no PostgreSQL: set %s or run a Docker engine (%v)", EnvURL, container.err)
	}
	return container.url
}

func startContainer() (url string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	defer func() {
		// testcontainers panics when it finds no Docker configuration at all.
		if r := recover(); r != nil {
			err = fmt.Errorf("no docker engine: %v", r)
		}
	}()
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return "", fmt.Errorf("no docker engine: %w", err)
	}
	defer p.Close()
	if err := p.Health(ctx); err != nil {
		return "", fmt.Errorf("no docker engine: %w", err)
	}
	c, err := tcpostgres.Run(ctx, "postgres:16-alpine",
		tcpostgres.WithDatabase("postgres"), tcpostgres.WithUsername("postgres"), tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies())
	if err != nil {
		return "", fmt.Errorf("start postgres container: %w", err)
	}
	return c.ConnectionString(ctx, "sslmode=disable")
}

// URLFor returns the admin URL with its database replaced by name.
func URLFor(tb testing.TB, name string) string {
	tb.Helper()
	u, err := url.Parse(AdminURL(tb))
	if err != nil {
		tb.Fatalf("parse %s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// UnusedDatabaseURL names a database that does not exist yet, and drops it at cleanup if the
// test created it.
func UnusedDatabaseURL(tb testing.TB) string {
	tb.Helper()
	name := "attune_t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	tb.Cleanup(func() { dropDatabase(tb, name) })
	return URLFor(tb, name)
}

// NewDatabase creates a migrated database for this test and returns its URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	template := ensureTemplate(tb)
	u := UnusedDatabaseURL(tb)
	name := strings.TrimPrefix(mustParse(tb, u).Path, "/")
	admin(tb, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template))
		return err
	})
	return u
}

// NewStore opens a store on a fresh migrated database; the pool closes at cleanup.
func NewStore(tb testing.TB) *store.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Open(ctx, store.Config{URL: NewDatabase(tb), MaxConns: 8})
	if err != nil {
		tb.Fatalf("open test store: %v", err)
	}
	tb.Cleanup(pool.Close)
	return store.NewStore(pool)
}

var templateOnce struct {
	sync.Once
	name string
	err  error
}

// ensureTemplate builds the migrated template database once per migration set. Test packages
// run as separate processes, so an advisory lock makes one of them build it while the others
// wait; it is built under a temporary name and renamed, so a crash never leaves a half-built
// template behind.
func ensureTemplate(tb testing.TB) string {
	tb.Helper()
	templateOnce.Do(func() { templateOnce.name, templateOnce.err = buildTemplate(AdminURL(tb)) })
	if templateOnce.err != nil {
		tb.Fatalf("build template database: %v", templateOnce.err)
	}
	return templateOnce.name
}

func buildTemplate(adminURL string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "attune_tpl_" + hash
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", EnvURL, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('attune_test_template'))"); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(hashtext('attune_test_template'))") //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for template: %w", err)
	}
	if exists {
		return name, nil
	}
	// Templates of older migration sets are of no more use once nobody builds them: another
	// checkout of the project (a branch with a migration of its own) may still be cloning
	// from its template, so only those untouched for a day go.
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database
		WHERE datname LIKE 'attune\_tpl\_%'
		  AND coalesce(substring(shobj_description(oid, 'pg_database') FROM 'built (.*)$')::timestamptz, '-infinity') < now() - interval '1 day'`)
	if err != nil {
		return "", fmt.Errorf("list old templates: %w", err)
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("list old templates: %w", err)
	}
	for _, old := range append(stale, name+"_build") {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{old}.Sanitize()+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("drop old template %s: %w", old, err)
		}
	}
	build := name + "_build"
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+build); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + build
	if err := migrate(ctx, u.String()); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", build, name)); err != nil {
		return "", fmt.Errorf("rename template: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("COMMENT ON DATABASE %s IS 'attune test template, built %s'", name, time.Now().UTC().Format(time.RFC3339))); err != nil {
		return "", fmt.Errorf("date template: %w", err)
	}
	return name, nil
}

func migrate(ctx context.Context, dbURL string) error {
	pool, err := store.Open(ctx, store.Config{URL: dbURL, MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	m, err := migrations.New(db, nil)
	if err != nil {
		return err
	}
	if _, err := m.Up(ctx); err != nil {
		return err
	}
	return nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS(), path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func dropDatabase(tb testing.TB, name string) {
	tb.Helper()
	admin(tb, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	})
}

func admin(tb testing.TB, fn func(ctx context.Context, conn *pgx.Conn) error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL(tb))
	if err != nil {
		tb.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(context.Background())
	if err := fn(ctx, conn); err != nil {
		tb.Fatalf("test database admin: %v", err)
	}
}

func mustParse(tb testing.TB, raw string) *url.URL {
	tb.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("parse %s: %v", raw, err)
	}
	return u
}
