package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// A worker's record can be read, and deleted once the worker is gone and nothing runs on it.
func TestWorkerGetAndDelete(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	w, err := s.s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w1", Runners: []string{"shell"}, Concurrency: 2, Host: "box"})
	require.NoError(t, err)

	got := s.data(http.StatusOK, http.MethodGet, "/workers/w1", "")
	require.Equal(t, "w1", got["name"])
	require.Equal(t, "box", got["host"])
	require.Equal(t, "active", got["status"])
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/workers/nobody", "")

	msg := s.fail(http.StatusConflict, "conflict", http.MethodDelete, "/workers/w1", "")
	require.Contains(t, msg, "worker w1 is alive: it heartbeated within the last 30s")

	// Stopped, but an execution still runs on it until the executor abandons it.
	exec, err := s.s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	_, _, err = s.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{store.ExecutionRequested}, To: store.ExecutionRunning, Worker: &w.ID})
	require.NoError(t, err)
	require.NoError(t, s.s.WorkerSetInactive(ctx, "w1"))
	msg = s.fail(http.StatusConflict, "conflict", http.MethodDelete, "/workers/w1", "")
	require.Contains(t, msg, "worker w1 is still used by execution "+strconv.FormatInt(exec.ID, 10))
	_, err = s.s.ExecutionAbandonOrphans(ctx, time.Minute, true)
	require.NoError(t, err)

	status, body := s.do(http.MethodDelete, "/workers/w1", "")
	require.Equal(t, http.StatusNoContent, status)
	require.Nil(t, body)
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/workers/w1", "")
	s.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/workers/w1", "")
	kept := s.data(http.StatusOK, http.MethodGet, "/executions/"+strconv.FormatInt(exec.ID, 10), "")
	require.Equal(t, "abandoned", kept["status"], "what it ran stays")
	require.Equal(t, "w1", kept["worker"], "and says which worker ran it")
}

// A worker killed outright never marks itself inactive: one whose heartbeat is older than the
// worker timeout reads as inactive, in the list and alone.
func TestWorkerSilentReadsInactive(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	for _, name := range []string{"alive", "silent"} {
		_, err := s.s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: name, Runners: []string{"shell"}, Concurrency: 1, Host: "box"})
		require.NoError(t, err)
	}
	_, err := s.s.Pool().Exec(ctx, `UPDATE attune.worker SET last_heartbeat = now() - interval '31 seconds' WHERE name = 'silent'`)
	require.NoError(t, err)

	require.Equal(t, "active", s.data(http.StatusOK, http.MethodGet, "/workers/alive", "")["status"])
	require.Equal(t, "inactive", s.data(http.StatusOK, http.MethodGet, "/workers/silent", "")["status"])
	status, body := s.do(http.MethodGet, "/workers", "")
	require.Equal(t, http.StatusOK, status)
	got := map[string]any{}
	for _, w := range body["data"].([]any) {
		got[w.(map[string]any)["name"].(string)] = w.(map[string]any)["status"]
	}
	require.Equal(t, map[string]any{"alive": "active", "silent": "inactive"}, got)
	require.EqualValues(t, 2, body["pagination"].(map[string]any)["total_items"])
}
