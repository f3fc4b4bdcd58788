package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DBTX is what queries run on: the pool, or a transaction.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	// Begin starts a transaction, or a savepoint within one.
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Queries holds the query methods; New binds them to the pool or to a transaction.
type Queries struct {
	db DBTX
}

// New returns queries that run on db.
func New(db DBTX) *Queries { return &Queries{db: db} }

// Page selects a slice of a list: Limit rows after skipping Offset.
type Page struct {
	Limit  int
	Offset int
}

// Store is the pool plus its queries.
type Store struct {
	*Queries
	pool *pgxpool.Pool
	batches
}

// NewStore wraps an open pool.
func NewStore(pool *pgxpool.Pool) *Store { return NewObservedStore(pool, nil) }

// NewObservedStore wraps an open pool whose coalesced statements report their batch sizes to
// sizes (nil: to nobody).
func NewObservedStore(pool *pgxpool.Pool, sizes BatchSizes) *Store {
	q := New(pool)
	return &Store{Queries: q, pool: pool, batches: newBatches(q, sizes)}
}

// Pool returns the underlying pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping database: %w", translate(err))
	}
	return nil
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(q *Queries) error) error {
	return s.inTx(ctx, fn)
}

// inTx runs fn in a transaction on q's connection: a new one on the pool, or a savepoint in
// a transaction already open.
func (q *Queries) inTx(ctx context.Context, fn func(q *Queries) error) error {
	tx, err := q.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", translate(err))
	}
	defer func() {
		// Rollback after Commit is a no-op; it must run even if ctx is already cancelled.
		_ = tx.Rollback(context.WithoutCancel(ctx))
	}()
	if err := fn(New(tx)); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit transaction: %w", translate(err))
	}
	return nil
}

// Config says how to open the pool.
type Config struct {
	URL string
	// MaxConns bounds the pool. Default: the URL's pool_max_conns, else pgx's (the greater of
	// 4 and the number of CPUs).
	MaxConns int32
	// CreateDatabase creates the database named in URL when it does not exist yet.
	CreateDatabase bool
	// ApplicationName shows up in pg_stat_activity. Default "attune".
	ApplicationName string
	Logger          *slog.Logger
}

// Open connects to PostgreSQL and returns the pool. It is the one place a pool is made.
// Errors are written for people: they name the server and user tried, and say what to do.
func Open(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pcfg, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pcfg.ConnConfig.RuntimeParams["application_name"] = cmp.Or(cfg.ApplicationName, "attune")

	pool, err := connect(ctx, pcfg)
	if err == nil {
		return pool, nil
	}
	if !cfg.CreateDatabase || !isMissingDatabase(err) {
		return nil, describe(pcfg, err)
	}
	created, cerr := createDatabase(ctx, pcfg)
	if cerr != nil {
		return nil, cerr
	}
	if created && cfg.Logger != nil {
		cfg.Logger.InfoContext(ctx, "created database", "database", pcfg.ConnConfig.Database,
			"host", pcfg.ConnConfig.Host, "port", pcfg.ConnConfig.Port)
	}
	pool, err = connect(ctx, pcfg)
	if err != nil {
		return nil, describe(pcfg, err)
	}
	return pool, nil
}

// ParseURL parses a PostgreSQL URL; the error never repeats a password.
func ParseURL(url string) (*pgxpool.Config, error) {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, fmt.Errorf("invalid database URL %q: want postgres://user@host:port/database", redactURL(url))
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message quotes the URL with the password masked; keep only its reason.
		return nil, fmt.Errorf("invalid database URL %q: %s", redactURL(url), parseReason(err))
	}
	return pcfg, nil
}

// parseReason extracts why pgx could not parse a URL. A url.Error quotes the whole URL,
// password included, so only its cause is kept.
func parseReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		return msg[i+3:]
	}
	return "cannot parse it"
}

func connect(ctx context.Context, pcfg *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func isMissingDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}

// createDatabase creates the database through the server's maintenance database. It reports
// false when another process created it first.
func createDatabase(ctx context.Context, pcfg *pgxpool.Config) (bool, error) {
	name := pcfg.ConnConfig.Database
	admin := pcfg.ConnConfig.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return false, fmt.Errorf("database %q does not exist and connecting to database \"postgres\" to create it failed: %w",
			name, describe(pcfg, err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505"):
		// Another replica won the race: duplicate_database, or, when both inserted into
		// pg_database at the same moment, the catalog's unique index.
		return false, nil
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		return false, fmt.Errorf("database %q does not exist and user %q may not create it: "+
			"create it (createdb %s) or point --database-url / ATTUNE_DATABASE_URL at an existing one",
			name, pcfg.ConnConfig.User, name)
	default:
		return false, fmt.Errorf("create database %q: %w", name, translate(err))
	}
}

// describe turns a connection failure into one line that says what was tried and how to fix
// it, rather than the driver's nested account of every address it dialled.
func describe(pcfg *pgxpool.Config, err error) error {
	cc := pcfg.ConnConfig
	where := fmt.Sprintf("PostgreSQL at %s:%d (database %q, user %q)", cc.Host, cc.Port, cc.Database, cc.User)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "3D000":
		return described(ErrNotFound, "%s: database does not exist; create it or let attune create it", where)
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		return described(ErrUnavailable, "%s refused the login: %s; check the user and password in --database-url / ATTUNE_DATABASE_URL", where, pgErr.Message)
	case errors.Is(err, syscall.ECONNREFUSED):
		return described(ErrUnavailable, "cannot connect to %s: connection refused; is PostgreSQL running? Start it or set --database-url / ATTUNE_DATABASE_URL", where)
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return described(ErrUnavailable, "cannot connect to %s: timed out; check the host and port in --database-url / ATTUNE_DATABASE_URL", where)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return described(ErrUnavailable, "cannot connect to %s: unknown host %q; check --database-url / ATTUNE_DATABASE_URL", where, dnsErr.Name)
	}
	return described(ErrUnavailable, "cannot connect to %s: %s", where, lastLine(err))
}

// lastLine keeps the innermost cause of a pgconn error, which is the informative part.
func lastLine(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		return msg[i+2:]
	}
	return msg
}

func redactURL(raw string) string {
	// Mask anything between "://user:" and "@" without relying on the URL parsing cleanly.
	scheme := strings.Index(raw, "://")
	at := strings.LastIndex(raw, "@")
	if scheme < 0 || at < scheme {
		return raw
	}
	creds := raw[scheme+3 : at]
	if colon := strings.Index(creds, ":"); colon >= 0 {
		return raw[:scheme+3] + creds[:colon] + ":xxxxx" + raw[at:]
	}
	return raw
}

// TryAdvisoryXactLock takes the transaction-scoped advisory lock named key if it is free, so
// that one replica at a time does a periodic job. It must run inside InTx.
func (q *Queries) TryAdvisoryXactLock(ctx context.Context, key string) (bool, error) {
	var ok bool
	if err := q.db.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext($1))`, key).Scan(&ok); err != nil {
		return false, fmt.Errorf("try lock %s: %w", key, translate(err))
	}
	return ok, nil
}
