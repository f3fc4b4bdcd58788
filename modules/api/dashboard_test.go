package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// A viewer reads the whole dashboard in one request: the windows' counts, what runs, the
// failures, the queues, and the workers alive by the server's --worker-timeout.
func TestDashboard(t *testing.T) {
	t.Parallel()
	s := newServerWith(t, api.Config{WorkerTimeout: 2 * time.Second})
	ctx := context.Background()
	viewer := s.as(s.newIdentity("vera", "viewer"))

	got := viewer.data(http.StatusOK, http.MethodGet, "/dashboard", "")
	require.JSONEq(t, `{"last_hour": {}, "last_day": {}, "running": 0, "failures": [], "queues": [],
		"workers": {"active": 0, "inactive": 0}, "sensors": {"total": 0, "enabled": 0, "running": 0}}`, mustJSON(t, got))

	// demo.other's pack policy admits one at a time: the second waits.
	for range 2 {
		_, err := s.s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.other", Parameters: json.RawMessage(`{}`)})
		require.NoError(t, err)
	}
	failed, err := s.s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	_, _, err = s.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: failed.ID, From: []string{store.ExecutionRequested},
		To: store.ExecutionFailed, Reason: "exit status 1"})
	require.NoError(t, err)
	_, err = s.s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.free", Admitted: true, Status: store.ExecutionRunning})
	require.NoError(t, err)
	for _, name := range []string{"alive", "silent"} {
		_, err := s.s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: name, Runners: []string{"shell"}, Concurrency: 1, Host: "box"})
		require.NoError(t, err)
	}
	// Silent for 5 s: alive by the default timeout, not by this server's 2 s.
	_, err = s.s.Pool().Exec(ctx, `UPDATE attune.worker SET last_heartbeat = now() - interval '5 seconds' WHERE name = 'silent'`)
	require.NoError(t, err)

	got = viewer.data(http.StatusOK, http.MethodGet, "/dashboard", "")
	require.Equal(t, map[string]any{"scheduled": 1.0, "requested": 1.0, "failed": 1.0, "running": 1.0}, got["last_hour"])
	require.Equal(t, got["last_hour"], got["last_day"])
	require.Equal(t, 1.0, got["running"])
	require.Equal(t, map[string]any{"active": 1.0, "inactive": 1.0}, got["workers"])
	failures := got["failures"].([]any)
	require.Len(t, failures, 1)
	f := failures[0].(map[string]any)
	require.NotEmpty(t, f["finished_at"])
	delete(f, "finished_at")
	require.JSONEq(t, `{"id": `+mustJSON(t, failed.ID)+`, "action_ref": "demo.run", "status": "failed", "reason": "exit status 1"}`, mustJSON(t, f))
	queues := got["queues"].([]any)
	require.Len(t, queues, 1)
	q := queues[0].(map[string]any)
	require.Equal(t, "demo.other", q["action_ref"])
	require.Equal(t, 1.0, q["queued"])
	require.NotEmpty(t, q["oldest_queued_at"])

	s.as("").fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/dashboard", "")
}

// A failure's reason may quote a seal token (a template's error about the value it computed
// with): the dashboard shows it masked, to every role.
func TestDashboardMasksReasons(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	const token = "attune:sealed:v1:k0123456789ab:c2VhbGVk~"
	failed, err := s.s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Admitted: true})
	require.NoError(t, err)
	_, _, err = s.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: failed.ID, From: []string{store.ExecutionRequested},
		To: store.ExecutionFailed, Reason: "render vars: invalid operation: int(" + token + ")"})
	require.NoError(t, err)

	got := s.as(s.newIdentity("vera", "viewer")).data(http.StatusOK, http.MethodGet, "/dashboard", "")
	failures := got["failures"].([]any)
	require.Len(t, failures, 1)
	require.Equal(t, "render vars: invalid operation: int("+pack.Mask+")", failures[0].(map[string]any)["reason"])
	require.NotContains(t, mustJSON(t, got), "sealed:v1")
}
