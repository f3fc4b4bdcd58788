package api_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// Deleting a pack takes everything in it at once and keeps the record of what it did; a pack
// another pack's rule uses stays, and so does core.
func TestPackDelete(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	withOps(t, s)
	ctx := context.Background()

	// ops gets an action, a trigger and a rule through the API; another pack's rule uses
	// demo's action, and a policy made through the API names ops's action.
	s.data(http.StatusCreated, http.MethodPost, "/actions", `{"ref": "ops.act", "runner_type": "noop"}`)
	s.data(http.StatusCreated, http.MethodPost, "/triggers", `{"ref": "ops.hit"}`)
	s.data(http.StatusCreated, http.MethodPost, "/rules", `{"ref": "ops.on_hit", "trigger_ref": "ops.hit", "action_ref": "ops.act"}`)
	s.data(http.StatusCreated, http.MethodPost, "/rules", `{"ref": "ops.runs_demo", "trigger_ref": "ops.hit", "action_ref": "demo.run", "enabled": false}`)
	s.data(http.StatusCreated, http.MethodPost, "/policies", `{"ref": "limits.ops_act", "action_ref": "ops.act", "concurrency": {"limit": 1}}`)
	s.data(http.StatusCreated, http.MethodPost, "/policies", `{"ref": "limits.demo_run", "action_ref": "demo.run", "concurrency": {"limit": 1}}`)
	ev := s.data(http.StatusAccepted, http.MethodPost, "/events", `{"trigger_ref": "ops.hit", "payload": {}}`)
	exec := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "ops.act"}`)

	s.refuseAll([]refused{
		{"used by another pack's rule", http.MethodDelete, "/packs/demo", "", 409, "pack demo is still used by rule ops.runs_demo (disabled)"},
		{"core", http.MethodDelete, "/packs/core", "", 409, "the built-in core pack cannot be deleted"},
		{"missing", http.MethodDelete, "/packs/nope", "", 404, `no pack "nope"`},
	})

	status, body := s.do(http.MethodDelete, "/packs/ops", "")
	require.Equal(t, http.StatusNoContent, status)
	require.Nil(t, body)
	for _, path := range []string{"/packs/ops", "/actions/ops.act", "/triggers/ops.hit", "/rules/ops.on_hit", "/rules/ops.runs_demo", "/policies/limits.ops_act"} {
		s.fail(http.StatusNotFound, "not_found", http.MethodGet, path, "")
	}
	s.data(http.StatusOK, http.MethodGet, "/policies/limits.demo_run", "")
	kept := s.data(http.StatusOK, http.MethodGet, "/events/"+id(ev, "event_id"), "")
	require.Equal(t, "ops.hit", kept["trigger_ref"], "events stay")
	keptExec := s.data(http.StatusOK, http.MethodGet, "/executions/"+id(exec, "id"), "")
	require.Equal(t, "ops.act", keptExec["action_ref"], "executions stay")

	// With its user gone, demo goes too.
	status, _ = s.do(http.MethodDelete, "/packs/demo", "")
	require.Equal(t, http.StatusNoContent, status)
	s.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/packs/demo", "")
	_, err := s.s.ActionGetByRef(ctx, "demo.run")
	require.ErrorIs(t, err, store.ErrNotFound)
	s.data(http.StatusOK, http.MethodGet, "/packs/core", "")
}

// id renders the numeric field of an answer as a path segment.
func id(data map[string]any, field string) string {
	return strconv.FormatInt(int64(data[field].(float64)), 10)
}
