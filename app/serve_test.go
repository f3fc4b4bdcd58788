package app_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/migrations"
	"github.com/attune-go/attune/store/storetest"
)

// migrationCount is how many migrations the binary carries.
func migrationCount(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(migrations.FS(), "*.sql")
	require.NoError(t, err)
	return len(files)
}

// namespace gives a test its own exchange and queue names, deleted at cleanup.
func namespace(t *testing.T) string {
	t.Helper()
	ns := brokertest.Namespace(t)
	brokertest.NewAMQP(t, broker.Options{Namespace: ns}) // tears the namespace down at cleanup
	return string(ns)
}

func queryOne[T any](t *testing.T, dbURL, sql string, args ...any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var v T
	require.NoError(t, conn.QueryRow(ctx, sql, args...).Scan(&v))
	return v
}

// The acceptance run: on an empty server, serve creates the database and schema,
// declares the exchanges, answers /readyz and exits 0 soon after SIGTERM.
func TestServeOnEmptyServerWithRabbitMQ(t *testing.T) {
	t.Parallel()
	dbURL := storetest.UnusedDatabaseURL(t)
	amqpURL := brokertest.URL(t)
	ns := namespace(t)

	p := startServe(t, "--roles=all", "--database-url="+dbURL, "--amqp-url="+amqpURL, "--amqp-namespace="+ns)
	p.waitLog(t, "created database", time.Second)

	code, body := p.get(t, "/readyz")
	require.Equal(t, 200, code, body)
	require.Equal(t, map[string]any{"database": "ok", "broker": "ok"}, body["checks"])
	code, _ = p.get(t, "/healthz")
	require.Equal(t, 200, code)

	require.True(t, queryOne[bool](t, dbURL, `SELECT to_regclass('attune.execution') IS NOT NULL`), "schema migrated")
	worker := p.waitLog(t, "worker registered", 10*time.Second)["worker"].(string)
	require.Equal(t, "active", queryOne[string](t, dbURL, `SELECT status FROM attune.worker WHERE name = $1`, worker))

	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err)
	defer conn.Close()
	for _, ex := range broker.Exchanges {
		ch, err := conn.Channel()
		require.NoError(t, err)
		require.NoError(t, ch.ExchangeDeclarePassive(ns+"."+ex, amqp.ExchangeTopic, true, false, false, false, nil), "exchange %s declared", ex)
		_ = ch.Close()
	}

	exit, took := p.stop(t, syscall.SIGTERM, 5*time.Second)
	require.Equal(t, 0, exit)
	t.Logf("exited %s after SIGTERM", took)
	require.Equal(t, "inactive", queryOne[string](t, dbURL, `SELECT status FROM attune.worker WHERE name = $1`, worker),
		"a stopping worker says it is gone")
}

func TestServeWithInProcessBroker(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	p := startServe(t, "--database-url="+dbURL)
	worker := p.waitLog(t, "worker registered", 10*time.Second)["worker"].(string)

	code, body := p.get(t, "/api/v1/workers")
	require.Equal(t, 200, code)
	data := body["data"].([]any)
	require.Len(t, data, 1)
	require.Equal(t, worker, data[0].(map[string]any)["name"])
	require.Equal(t, map[string]any{"page": 1.0, "page_size": 50.0, "total_items": 1.0, "total_pages": 1.0}, body["pagination"])

	code, body = p.get(t, "/api/v1/workers?per_page=500")
	require.Equal(t, 400, code)
	require.Equal(t, "bad_request", body["error"].(map[string]any)["code"])

	exit, _ := p.stop(t, syscall.SIGINT, 5*time.Second)
	require.Equal(t, 0, exit)
}

// One role per process, on RabbitMQ: the executor alone starts and is ready; it registers no
// worker and serves no API.
func TestServeSingleRole(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	p := startServe(t, "--roles=executor", "--database-url="+dbURL, "--amqp-url="+brokertest.URL(t), "--amqp-namespace="+namespace(t))
	require.Equal(t, 200, p.readyStatus(t))
	resp, err := http.Get("http://" + p.addr + "/api/v1/workers")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "the api role is not running")
	require.Zero(t, queryOne[int](t, dbURL, `SELECT count(*) FROM attune.worker`))
	exit, _ := p.stop(t, syscall.SIGTERM, 5*time.Second)
	require.Equal(t, 0, exit)
}

// The connection to RabbitMQ is cut under a running serve and comes back: readiness follows it
// without a restart. (Message flow across the same reconnect is covered in package
// amqpbroker.)
func TestReadinessFollowsTheBroker(t *testing.T) {
	t.Parallel()
	u, target := amqpTarget(t)
	proxy := brokertest.NewProxy(t, target)
	u.Host = proxy.Addr()
	testReadinessAcrossOutage(t, u.String(), proxy)
}

// The same with RabbitMQ itself stopped and started (opt-in: it disturbs every other test).
func TestReadinessAcrossRabbitMQRestart(t *testing.T) {
	u, target := amqpTarget(t)
	testReadinessAcrossOutage(t, u.String(), brokertest.RestartableRabbitMQ(t, target))
}

func amqpTarget(t *testing.T) (*url.URL, string) {
	t.Helper()
	u, err := url.Parse(brokertest.URL(t))
	require.NoError(t, err)
	target := u.Host
	if u.Port() == "" {
		target += ":5672"
	}
	return u, target
}

func testReadinessAcrossOutage(t *testing.T, amqpURL string, outage brokertest.Outage) {
	p := startServe(t, "--database-url="+storetest.NewDatabase(t), "--amqp-url="+amqpURL, "--amqp-namespace="+namespace(t))
	require.Equal(t, 200, p.readyStatus(t))

	outage.Stop()
	require.Eventually(t, func() bool { return p.readyStatus(t) == 503 }, 20*time.Second, 20*time.Millisecond,
		"/readyz still 200 with the broker gone")
	_, body := p.get(t, "/readyz")
	require.Contains(t, body["checks"].(map[string]any)["broker"], "not connected")

	outage.Start(t)
	require.Eventually(t, func() bool { return p.readyStatus(t) == 200 }, 60*time.Second, 20*time.Millisecond,
		"/readyz did not recover after the broker came back")
	p.waitLog(t, "rabbitmq connection restored", time.Second)
	exit, _ := p.stop(t, syscall.SIGTERM, 5*time.Second)
	require.Equal(t, 0, exit)
}

// Replicas started at the same moment on an empty server all come up: the database is
// created once and each migration applied once.
func TestReplicasStartTogether(t *testing.T) {
	t.Parallel()
	dbURL := storetest.UnusedDatabaseURL(t)
	var procs []*process
	for range 3 {
		procs = append(procs, startServeNoWait(t, "--database-url="+dbURL))
	}
	for _, p := range procs {
		p.waitLog(t, "attune ready", 60*time.Second)
	}
	require.Equal(t, migrationCount(t), queryOne[int](t, dbURL, `SELECT count(*) FROM attune.goose_db_version WHERE version_id > 0`))
	for _, p := range procs {
		exit, _ := p.stop(t, syscall.SIGTERM, 10*time.Second)
		require.Equal(t, 0, exit)
	}
}

func TestMigrateCommandAndMigrateFalse(t *testing.T) {
	t.Parallel()
	dbURL := storetest.UnusedDatabaseURL(t)

	_, stderr, code := runAttune(t, "serve", "--migrate=false", "--log-level=error", "--http-addr=127.0.0.1:0", "--database-url="+dbURL)
	require.Equal(t, 1, code)
	require.Equal(t, fmt.Sprintf(`attune: %d database migration(s) pending and --migrate=false: run "attune migrate up" or start with --migrate`, migrationCount(t)),
		strings.TrimSpace(stderr))

	out, _, code := runAttune(t, "migrate", "up", "--log-level=warn", "--database-url="+dbURL)
	require.Equal(t, 0, code)
	// Numbers are handed out ahead of the files, so they may skip.
	files, err := fs.Glob(migrations.FS(), "*.sql")
	require.NoError(t, err)
	var want strings.Builder
	for _, f := range files {
		fmt.Fprintf(&want, "applied %s\n", f[:5])
	}
	require.Equal(t, want.String(), out)

	out, _, code = runAttune(t, "migrate", "status", "--database-url="+dbURL)
	require.Equal(t, 0, code)
	require.Contains(t, out, "00001_domain.sql")
	require.NotContains(t, out, "pending")

	p := startServe(t, "--migrate=false", "--database-url="+dbURL)
	exit, _ := p.stop(t, syscall.SIGTERM, 5*time.Second)
	require.Equal(t, 0, exit)

	out, _, code = runAttune(t, "migrate", "down", "--log-level=warn", "--database-url="+dbURL)
	require.Equal(t, 0, code)
	require.Equal(t, "rolled back "+files[len(files)-1][:5]+"\n", out)
	out, _, _ = runAttune(t, "migrate", "status", "--database-url="+dbURL)
	require.Contains(t, out, "pending")
}

// Bad input costs one clear line on stderr and a non-zero exit: 2 for a wrong invocation,
// 1 for a service that cannot be reached.
func TestBadInputFailsInOneLine(t *testing.T) {
	t.Parallel()
	goodDB := storetest.NewDatabase(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown role", []string{"--roles=executor,schedular"}, 2, `unknown role "schedular"; valid roles are api, sensor, executor, worker, or all`},
		{"roles without broker", []string{"--roles=api,worker"}, 2, "--roles=worker,api needs --amqp-url"},
		{"malformed database url", []string{"--database-url=localhost/attune"}, 2, "invalid database URL"},
		{"malformed amqp url", []string{"--amqp-url=rabbitmq.local:5672"}, 2, "invalid AMQP URL"},
		{"unknown flag", []string{"--rolez=all"}, 2, "unknown flag: --rolez"},
		{"unreachable database", []string{"--database-url=postgres://attune:s3cret@127.0.0.1:1/attune"}, 1,
			"cannot connect to PostgreSQL at 127.0.0.1:1 (database \"attune\", user \"attune\"): connection refused; is PostgreSQL running?"},
		{"unreachable broker", []string{"--database-url=" + goodDB, "--amqp-url=amqp://guest:s3cret@127.0.0.1:1/"}, 1,
			"connect to RabbitMQ at amqp://guest:xxxxx@127.0.0.1:1/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--log-level=error", "--http-addr=127.0.0.1:0"}, c.args...)
			_, stderr, code := runAttune(t, args...)
			require.Equal(t, c.code, code, stderr)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			require.Len(t, lines, 1, "one line, got:\n%s", stderr)
			require.True(t, strings.HasPrefix(lines[0], "attune: "), lines[0])
			require.Contains(t, lines[0], c.want)
			require.NotContains(t, lines[0], "s3cret", "a password leaked")
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, _, code := runAttune(t, "version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "attune "), out)
}
