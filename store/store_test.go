package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

func TestOpenCreatesMissingDatabase(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := storetest.UnusedDatabaseURL(t)

	_, err := store.Open(ctx, store.Config{URL: url})
	require.ErrorIs(t, err, store.ErrNotFound, "without CreateDatabase a missing database is an error")
	require.ErrorContains(t, err, "database does not exist")

	var logs bytes.Buffer
	pool, err := store.Open(ctx, store.Config{URL: url, CreateDatabase: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	defer pool.Close()
	require.Contains(t, logs.String(), "created database")
	require.NoError(t, store.NewStore(pool).Ping(ctx))

	// A second open finds it and says nothing.
	logs.Reset()
	again, err := store.Open(ctx, store.Config{URL: url, CreateDatabase: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	again.Close()
	require.Empty(t, logs.String())
}

func TestOpenExplainsFailuresInOneLine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cases := map[string]struct {
		url  string
		want string
		is   error
	}{
		"refused":      {url: "postgres://root:hunter2@127.0.0.1:1/attune?sslmode=disable", want: "connection refused; is PostgreSQL running?", is: store.ErrUnavailable},
		"not a url":    {url: "localhost:5432/attune", want: "invalid database URL"},
		"bad port":     {url: "postgres://root:hunter2@localhost:notaport/attune", want: "invalid database URL"},
		"unknown host": {url: "postgres://root:hunter2@no-such-host.invalid:5432/attune?connect_timeout=5", want: "no-such-host.invalid", is: store.ErrUnavailable},
	}
	for name, c := range cases {
		_, err := store.Open(ctx, store.Config{URL: c.url})
		require.Error(t, err, name)
		require.Contains(t, err.Error(), c.want, name)
		require.NotContains(t, err.Error(), "hunter2", "%s: the password leaked into the error", name)
		require.NotContains(t, err.Error(), "\n", "%s: one line", name)
		if c.is != nil {
			require.ErrorIs(t, err, c.is, name)
		}
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	boom := errors.New("boom")
	err := s.InTx(ctx, func(q *store.Queries) error {
		_, err := q.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w-rollback", Runners: []string{"shell"}, Concurrency: 1})
		require.NoError(t, err)
		return boom
	})
	require.ErrorIs(t, err, boom)
	_, err = s.WorkerGetByName(ctx, "w-rollback")
	require.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.InTx(ctx, func(q *store.Queries) error {
		_, err := q.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w-commit", Runners: []string{"shell"}, Concurrency: 1})
		return err
	}))
	_, err = s.WorkerGetByName(ctx, "w-commit")
	require.NoError(t, err)
}

func TestWorkerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)

	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w1", Runners: []string{"shell", "http"}, Concurrency: 8, Host: "box", PID: 42})
	require.NoError(t, err)
	require.Equal(t, store.WorkerActive, w.Status)
	require.Equal(t, []string{"shell", "http"}, w.Runners)

	require.NoError(t, s.WorkerHeartbeat(ctx, "w1"))
	after, err := s.WorkerGetByName(ctx, "w1")
	require.NoError(t, err)
	require.False(t, after.LastHeartbeat.Before(w.LastHeartbeat))

	require.NoError(t, s.WorkerSetInactive(ctx, "w1"))
	require.ErrorIs(t, s.WorkerHeartbeat(ctx, "w1"), store.ErrNotFound, "an inactive worker must register again")

	again, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w1", Runners: []string{"shell"}, Concurrency: 2, PID: 43})
	require.NoError(t, err)
	require.Equal(t, w.ID, again.ID, "a restarted worker keeps its row")
	require.Equal(t, store.WorkerActive, again.Status)
	require.Equal(t, 43, again.PID)

	require.ErrorIs(t, s.WorkerHeartbeat(ctx, "nobody"), store.ErrNotFound)
}

func TestConflictsAreTranslated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := storetest.NewStore(t)
	_, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"shell"}, Concurrency: 0})
	require.ErrorIs(t, err, store.ErrConflict, "a check constraint violation is a conflict")
	require.True(t, strings.Contains(err.Error(), "worker_concurrency_check"), err.Error())

	w, err := s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "no-runners", Concurrency: 1})
	require.NoError(t, err, "nil runners are stored as none")
	require.Empty(t, w.Runners)
}

// The Go ranking of statuses is the database's: a reader dropping stale statuses by it drops
// exactly the moves the database refuses.
func TestExecutionStatusRankMatchesDatabase(t *testing.T) {
	t.Parallel()
	s := storetest.NewStore(t)
	for _, status := range store.ExecutionStatuses {
		var rank int
		require.NoError(t, s.Pool().QueryRow(context.Background(), `SELECT attune.execution_status_rank($1)`, status).Scan(&rank))
		require.Equal(t, rank, store.ExecutionStatusRank(status), status)
	}
}

// A row that is not there reads as the operation and "not found", which the API answers as
// it is: the driver's "no rows in result set" adds nothing but noise.
func TestNotFoundReadsPlainly(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	_, err := st.ExecutionGet(context.Background(), 999999)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.EqualError(t, err, "get execution 999999: not found")
}
