package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/attune-go/attune/migrations"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

type testBundle struct {
	pool *pgxpool.Pool
	db   *sql.DB
	mig  *migrations.Migrator
}

func setup(t *testing.T, url string) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Open(ctx, store.Config{URL: url, CreateDatabase: true, MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	m, err := migrations.New(db, nil)
	require.NoError(t, err)
	return &testBundle{pool: pool, db: db, mig: m}
}

func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, storetest.UnusedDatabaseURL(t))

	pending, err := b.mig.Pending(ctx)
	require.NoError(t, err)
	require.Positive(t, pending)

	applied, err := b.mig.Up(ctx)
	require.NoError(t, err)
	require.Len(t, applied, pending)
	pending, err = b.mig.Pending(ctx)
	require.NoError(t, err)
	require.Zero(t, pending)
	requireTable(t, b.pool, "execution", true)

	again, err := b.mig.Up(ctx)
	require.NoError(t, err)
	require.Empty(t, again, "a second Up applies nothing")

	for range applied {
		v, err := b.mig.Down(ctx)
		require.NoError(t, err)
		require.Positive(t, v)
	}
	requireTable(t, b.pool, "execution", false)
	st, err := b.mig.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.False(t, s.Applied, "%s still applied after rolling everything back", s.Name)
	}

	_, err = b.mig.Up(ctx)
	require.NoError(t, err)
	requireTable(t, b.pool, "execution", true)
}

// Replicas starting together all run Up; the advisory lock makes one apply and the others
// find nothing left to do.
func TestConcurrentUp(t *testing.T) {
	t.Parallel()
	url := storetest.UnusedDatabaseURL(t)
	setup(t, url) // creates the database
	var g errgroup.Group
	total := make(chan int, 4)
	for range 4 {
		g.Go(func() error {
			b := setup(t, url)
			applied, err := b.mig.Up(context.Background())
			total <- len(applied)
			return err
		})
	}
	require.NoError(t, g.Wait())
	close(total)
	sum := 0
	for n := range total {
		sum += n
	}
	st, err := setup(t, url).mig.Status(context.Background())
	require.NoError(t, err)
	require.Equal(t, len(st), sum, "each migration applied exactly once")
}

func TestExecutionSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, storetest.NewDatabase(t))

	for _, col := range []string{"id", "action_ref", "status", "parameters", "result", "enforcement", "parent",
		"worker", "created", "updated", "started_at", "finished_at"} {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
			WHERE table_schema = 'attune' AND table_name = 'execution' AND column_name = $1`, col).Scan(&n))
		require.Equal(t, 1, n, "attune.execution lacks column %s", col)
	}

	_, err := b.pool.Exec(ctx, `INSERT INTO attune.execution (action_ref, status) VALUES ('core.noop', 'bogus')`)
	requireCode(t, err, "23514")

	enf := seedEnforcement(t, b.pool)
	_, err = b.pool.Exec(ctx, `INSERT INTO attune.execution (action_ref, enforcement) VALUES ('core.noop', $1)`, enf)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO attune.execution (action_ref, enforcement) VALUES ('core.noop', $1)`, enf)
	requireCode(t, err, "23505")
}

// Statuses only move forward, whichever process writes them.
func TestStatusesNeverMoveBackwards(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, storetest.NewDatabase(t))

	var id int64
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO attune.execution (action_ref) VALUES ('core.noop') RETURNING id`).Scan(&id))
	var created, updated time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT created, updated FROM attune.execution WHERE id = $1`, id).Scan(&created, &updated))
	for _, s := range []string{"scheduling", "scheduled", "running", "canceling", "cancelled"} {
		_, err := b.pool.Exec(ctx, `UPDATE attune.execution SET status = $2 WHERE id = $1`, id, s)
		require.NoError(t, err, "move to %s", s)
	}
	for _, s := range []string{"running", "requested", "completed"} {
		_, err := b.pool.Exec(ctx, `UPDATE attune.execution SET status = $2 WHERE id = $1`, id, s)
		requireCode(t, err, "23514")
	}
	var touched time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT updated FROM attune.execution WHERE id = $1`, id).Scan(&touched))
	require.True(t, touched.After(updated), "updated follows changes")

	var running int64
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO attune.execution (action_ref, status) VALUES ('core.noop', 'running') RETURNING id`).Scan(&running))
	_, err := b.pool.Exec(ctx, `UPDATE attune.execution SET status = 'scheduled' WHERE id = $1`, running)
	requireCode(t, err, "23514")

	enf := seedEnforcement(t, b.pool)
	_, err = b.pool.Exec(ctx, `UPDATE attune.enforcement SET status = 'processed' WHERE id = $1`, enf)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `UPDATE attune.enforcement SET status = 'created' WHERE id = $1`, enf)
	requireCode(t, err, "23514")
}

func seedEnforcement(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	ctx := context.Background()
	var event, enf int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO attune.event (trigger_ref) VALUES ('core.webhook') RETURNING id`).Scan(&event))
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO attune.enforcement (rule_ref, trigger_ref, event)
		VALUES ('demo.rule', 'core.webhook', $1) RETURNING id`, event).Scan(&enf))
	_, err := pool.Exec(ctx, `INSERT INTO attune.enforcement (rule_ref, trigger_ref, event) VALUES ('demo.rule', 'core.webhook', $1)`, event)
	requireCode(t, err, "23505") // one enforcement per rule and event
	return enf
}

func requireTable(t *testing.T, pool *pgxpool.Pool, table string, want bool) {
	t.Helper()
	var exists bool
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT to_regclass('attune.' || $1) IS NOT NULL`, table).Scan(&exists))
	require.Equal(t, want, exists, "table attune.%s exists", table)
}

func requireCode(t *testing.T, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "want PostgreSQL error %s, got %v", code, err)
	require.Equal(t, code, pgErr.Code, pgErr.Message)
}

// Executions and enforcements made before migration 00012 get the secret names their action
// declares (an enforcement through its rule's action), so that their values are masked from
// the moment the new code reads them; their `updated` stays as it was.
func TestSecretsBackfilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, storetest.NewDatabase(t))
	// Roll back to just before 00012, whatever came after it.
	for {
		v, err := b.mig.Down(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, v, int64(12), "00012 was never applied")
		if v == 12 {
			break
		}
	}

	var event, plain int64
	_, err := b.pool.Exec(ctx, `
		WITH p AS (INSERT INTO attune.pack (ref) VALUES ('vault') RETURNING id),
		t AS (INSERT INTO attune.trigger (ref, pack, pack_ref) SELECT 'vault.hook', id, 'vault' FROM p RETURNING id),
		a AS (INSERT INTO attune.action (ref, pack, pack_ref, runner_type, parameters) SELECT 'vault.deploy', id, 'vault', 'noop',
			'{"token": {"type": "string", "secret": true}, "api_key": {"type": "string", "secret": true}, "host": {"type": "string"}}'
			FROM p RETURNING id),
		b AS (INSERT INTO attune.action (ref, pack, pack_ref, runner_type) SELECT 'vault.plain', id, 'vault', 'noop' FROM p)
		INSERT INTO attune.rule (ref, pack, pack_ref, trigger, trigger_ref, action, action_ref)
		SELECT 'vault.on_hook', p.id, 'vault', t.id, 'vault.hook', a.id, 'vault.deploy' FROM p, t, a`)
	require.NoError(t, err)
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO attune.event (trigger_ref) VALUES ('vault.hook') RETURNING id`).Scan(&event))
	_, err = b.pool.Exec(ctx, `INSERT INTO attune.enforcement (rule, rule_ref, trigger_ref, event, config)
		SELECT id, ref, 'vault.hook', $1, '{"token": "t"}' FROM attune.rule`, event)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO attune.execution (action, action_ref, parameters, updated)
		SELECT id, ref, '{"token": "t"}', '2020-01-01T00:00:00Z' FROM attune.action WHERE ref = 'vault.deploy'`)
	require.NoError(t, err)
	require.NoError(t, b.pool.QueryRow(ctx, `INSERT INTO attune.execution (action, action_ref, parameters)
		SELECT id, ref, '{}' FROM attune.action WHERE ref = 'vault.plain' RETURNING id`).Scan(&plain))

	_, err = b.mig.Up(ctx)
	require.NoError(t, err)
	var secrets []string
	var updated time.Time
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT secrets, updated FROM attune.execution WHERE action_ref = 'vault.deploy'`).
		Scan(&secrets, &updated))
	require.Equal(t, []string{"api_key", "token"}, secrets)
	require.True(t, updated.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)), "updated moved to %s", updated)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT secrets FROM attune.execution WHERE id = $1`, plain).Scan(&secrets))
	require.Empty(t, secrets)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT secrets FROM attune.enforcement WHERE event = $1`, event).Scan(&secrets))
	require.Equal(t, []string{"api_key", "token"}, secrets)

	// The touch triggers are back on.
	_, err = b.pool.Exec(ctx, `UPDATE attune.execution SET reason = 'x' WHERE action_ref = 'vault.deploy'`)
	require.NoError(t, err)
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT updated FROM attune.execution WHERE action_ref = 'vault.deploy'`).Scan(&updated))
	require.True(t, updated.After(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)))
}
