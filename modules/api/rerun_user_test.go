package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// A rerun by someone else than the original's requester does not run with the requester's
// private user keys: each parameter whose default reads kv.user, and that the caller does not
// give, is rendered again from the caller's own keys (and left out when they have none). The
// requester's own rerun keeps the values, and a value the caller gives wins.
func TestRerunByAnotherReadsTheirOwnUserKeys(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(context.Background(), store.PackRegistration{
		Pack: store.Pack{Ref: "ops", Path: "/packs/ops"},
		Actions: []store.Action{{Ref: "ops.notify", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: true,
			Parameters: json.RawMessage(`{"who": {"type": "string", "default": "{{ kv.user.me }}"},
				"pw": {"type": "string", "default": "{{ kv.user.pw }}"}, "host": {"type": "string", "default": "h1"}}`)}},
	})
	require.NoError(t, err)
	s := startAPI(t, st, membroker.New(broker.Options{}), api.Config{})
	otto, olga, walt := s.newIdentity("otto", "operator"), s.newIdentity("olga", "operator"), s.newIdentity("walt", "operator")
	s.as(otto).data(http.StatusCreated, http.MethodPut, "/keys/user/me", `{"value": "otto-private"}`)
	s.as(otto).data(http.StatusCreated, http.MethodPut, "/keys/user/pw", `{"value": "otto-pw-`+keySecret+`", "secret": true}`)
	s.as(olga).data(http.StatusCreated, http.MethodPut, "/keys/user/me", `{"value": "olga's"}`)

	orig := s.as(otto).data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "ops.notify"}`)
	params := func(e map[string]any) map[string]any {
		t.Helper()
		row, err := st.ExecutionGet(context.Background(), int64(e["id"].(float64)))
		require.NoError(t, err)
		var p map[string]any
		require.NoError(t, json.Unmarshal(row.Parameters, &p))
		return p
	}
	first := params(orig)
	require.Equal(t, "otto-private", first["who"])
	require.Contains(t, first["pw"], "attune:sealed:", "otto's secret key, sealed")

	byOlga := params(s.as(olga).data(http.StatusCreated, http.MethodPost, executionPath(orig["id"], "/rerun"), ""))
	require.Equal(t, map[string]any{"who": "olga's", "host": "h1"}, byOlga, "olga's own key; she has no pw")

	byWalt := params(s.as(walt).data(http.StatusCreated, http.MethodPost, executionPath(orig["id"], "/rerun"),
		`{"parameters": {"pw": "********", "host": "h2"}}`))
	require.Equal(t, map[string]any{"host": "h2"}, byWalt, "no keys of his; the mask stands for otto's value, not his")

	given := params(s.as(olga).data(http.StatusCreated, http.MethodPost, executionPath(orig["id"], "/rerun"),
		`{"parameters": {"who": "given"}}`))
	require.Equal(t, "given", given["who"])

	byOtto := params(s.as(otto).data(http.StatusCreated, http.MethodPost, executionPath(orig["id"], "/rerun"), ""))
	require.Equal(t, first, byOtto, "the requester's rerun keeps what it ran with")
}

// A workflow whose definition reads kv.user is rerun from a task by its requester alone: the
// carried-over variables may hold the requester's private keys. One that reads no user key
// is rerun from a task by anyone who may rerun.
func TestRerunFromTaskReadingUserKeysIsTheRequesters(t *testing.T) {
	t.Parallel()
	s, _ := newWorkflowServer(t)
	otto := s.newIdentity("otto", "operator")
	var ottoID int64
	require.NoError(t, s.s.Pool().QueryRow(context.Background(), `SELECT id FROM attune.identity WHERE login = 'otto'`).Scan(&ottoID))
	failed := func(definition string) int64 {
		w := storetest.FillWorkflow(t, s.s, storetest.Workflow{ActionRef: "flows.deploy", Status: store.ExecutionFailed,
			Definition: definition, Tasks: []storetest.WorkflowTask{{Name: "check",
				Children: []storetest.WorkflowChild{{ActionRef: "flows.step", Status: store.ExecutionFailed}}}}})
		_, err := s.s.Pool().Exec(context.Background(), `UPDATE attune.execution SET requested_by = $1 WHERE id = $2`, ottoID, w.ID)
		require.NoError(t, err)
		return w.ID
	}
	const task = `"tasks": [{"name": "check", "action": "flows.step"}], "start": ["check"]`
	readsUser := failed(`{"vars": {"token": "{{ kv.user.token }}"}, ` + task + `}`)
	msg := s.fail(http.StatusForbidden, "forbidden", http.MethodPost, idPath(readsUser, "/rerun"), `{"from_task": "check"}`)
	require.Contains(t, msg, fmt.Sprintf("workflow %d reads kv.user", readsUser))
	require.Contains(t, msg, "only its requester")
	s.as(otto).data(http.StatusCreated, http.MethodPost, idPath(readsUser, "/rerun"), `{"from_task": "check"}`)
	s.data(http.StatusCreated, http.MethodPost, idPath(readsUser, "/rerun"), "")

	readsNone := failed(`{"vars": {"limit": "{{ kv.system.limit }}"}, ` + task + `}`)
	s.data(http.StatusCreated, http.MethodPost, idPath(readsNone, "/rerun"), `{"from_task": "check"}`)
}
