package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// Cancelling an execution that ended with its next attempt planned withdraws the plan; once
// nothing is planned, it is finished like any other.
func TestCancelWithdrawsAPlannedRetry(t *testing.T) {
	t.Parallel()
	s, _ := newRerunServer(t)
	ctx := context.Background()
	s.data(http.StatusCreated, http.MethodPost, "/policies",
		`{"ref": "ops.again", "action_ref": "ops.deploy", "retry": {"max_attempts": 3, "delay_seconds": 600}}`)
	exec := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "ops.deploy", "parameters": {"host": "a"}}`)
	id := int64(exec["id"].(float64))
	w, err := s.s.WorkerRegister(ctx, store.WorkerRegisterParams{Name: "w", Runners: []string{"noop"}, Concurrency: 1})
	require.NoError(t, err)
	_, ok, err := s.s.ExecutionClaim(ctx, id, w.ID)
	require.NoError(t, err)
	require.True(t, ok)
	failed, ok, err := s.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: id, From: []string{store.ExecutionRunning}, To: store.ExecutionFailed})
	require.NoError(t, err)
	require.True(t, ok)
	require.NotNil(t, failed.RetryAt, "a retry is planned in ten minutes")

	got := s.data(http.StatusOK, http.MethodPost, executionPath(exec["id"], "/cancel"), "")
	require.Equal(t, "failed", got["status"], "the attempt keeps how it ended")
	require.Nil(t, got["retry_at"], "the plan is withdrawn")
	e := s.lastAudit("execution.cancel", "execution:"+strconv.FormatInt(id, 10), "admin")
	require.Equal(t, map[string]any{"status": "failed", "retry_withdrawn": true}, e["detail"])
	s.fail(http.StatusConflict, "conflict", http.MethodPost, executionPath(exec["id"], "/cancel"), "")
	attempts, err := s.s.ExecutionRetryDue(ctx, 10)
	require.NoError(t, err)
	require.Empty(t, attempts)
}
