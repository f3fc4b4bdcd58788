package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// newServer is the API on a database of its own holding the demo pack: demo.run and
// demo.free, and demo.other under the pack's policy demo.other_limit.
func newServer(t *testing.T) server {
	t.Helper()
	return newServerWith(t, api.Config{})
}

// newServerWith is newServer configured by cfg.
func newServerWith(t *testing.T, cfg api.Config) server {
	t.Helper()
	s := storetest.NewStore(t)
	action := func(ref string) store.Action {
		return store.Action{Ref: ref, RunnerType: "shell", EntryPoint: "run.sh", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}
	}
	_, err := s.PackRegister(context.Background(), store.PackRegistration{
		Pack:     store.Pack{Ref: "demo", Path: "/packs/demo"},
		Actions:  []store.Action{action("demo.run"), action("demo.free"), action("demo.other")},
		Policies: []store.Policy{{Ref: "demo.other_limit", ActionRef: ptr("demo.other"), Enabled: true, ConcurrencyLimit: ptr(1)}},
	})
	require.NoError(t, err)

	return startAPI(t, s, membroker.New(broker.Options{}), cfg)
}

func ptr[T any](v T) *T { return &v }

// settings is a policy answer without what the server assigns, as JSON.
func settings(t *testing.T, p map[string]any) string {
	t.Helper()
	require.NotZero(t, p["id"])
	for _, k := range []string{"created", "updated"} {
		_, err := time.Parse(time.RFC3339Nano, p[k].(string))
		require.NoError(t, err, k)
	}
	c := make(map[string]any, len(p))
	for k, v := range p {
		c[k] = v
	}
	delete(c, "id")
	delete(c, "created")
	delete(c, "updated")
	b, err := json.Marshal(c)
	require.NoError(t, err)
	return string(b)
}

func TestPolicyCRUD(t *testing.T) {
	t.Parallel()
	s := newServer(t)

	created := s.data(http.StatusCreated, http.MethodPost, "/policies",
		`{"ref": "ops.run_limit", "action_ref": "demo.run", "concurrency": {"limit": 2, "parameters": ["host"]}, "max_queue_length": 5}`)
	want := `{"ref": "ops.run_limit", "name": "run_limit", "action_ref": "demo.run", "enabled": true,
		"concurrency": {"limit": 2, "method": "enqueue", "parameters": ["host"]}, "max_queue_length": 5, "source_pack": null}`
	require.JSONEq(t, want, settings(t, created), "enabled and the method get their defaults")
	require.Equal(t, created, s.data(http.StatusOK, http.MethodGet, "/policies/ops.run_limit", ""))

	s.data(http.StatusCreated, http.MethodPost, "/policies",
		`{"ref": "ops.pack_rate", "pack_ref": "demo", "enabled": false, "rate_limit": {"max_executions": 10, "window_seconds": 60, "method": "cancel"}}`)

	// In ref order: demo.other_limit (from the pack), ops.pack_rate, ops.run_limit.
	status, list := s.do(http.MethodGet, "/policies?page=2&per_page=1", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]any{"page": 2.0, "page_size": 1.0, "total_items": 3.0, "total_pages": 3.0}, list["pagination"])
	items := list["data"].([]any)
	require.Len(t, items, 1)
	require.JSONEq(t, `{"ref": "ops.pack_rate", "name": "pack_rate", "pack_ref": "demo", "enabled": false,
		"rate_limit": {"max_executions": 10, "window_seconds": 60, "method": "cancel"}, "source_pack": null}`,
		settings(t, items[0].(map[string]any)))
	status, list = s.do(http.MethodGet, "/policies?page_size=1", "")
	require.Equal(t, http.StatusOK, status)
	first := list["data"].([]any)[0].(map[string]any)
	require.Equal(t, "demo.other_limit", first["ref"])
	require.Equal(t, "demo", first["source_pack"], "a pack's policy says where it came from")
	s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/policies?per_page=0", "")

	// PUT replaces the settings whole: what the body leaves out is unset.
	updated := s.data(http.StatusOK, http.MethodPut, "/policies/ops.run_limit",
		`{"action_ref": "demo.run", "enabled": false, "concurrency": {"limit": 3, "method": "cancel"}}`)
	require.JSONEq(t, `{"ref": "ops.run_limit", "name": "run_limit", "action_ref": "demo.run", "enabled": false,
		"concurrency": {"limit": 3, "method": "cancel"}, "source_pack": null}`, settings(t, updated))
	require.Equal(t, created["id"], updated["id"])
	require.Equal(t, created["created"], updated["created"])
	updated = s.data(http.StatusOK, http.MethodPut, "/policies/ops.run_limit",
		`{"ref": "ops.run_limit", "action_ref": "demo.run", "rate_limit": {"max_executions": 1, "window_seconds": 5}}`)
	require.Equal(t, true, updated["enabled"], "enabled defaults to true on PUT too")
	require.NotContains(t, updated, "concurrency")
	msg := s.fail(http.StatusBadRequest, "bad_request", http.MethodPut, "/policies/ops.run_limit",
		`{"ref": "ops.other", "action_ref": "demo.run", "concurrency": {"limit": 1}}`)
	require.Contains(t, msg, "ref")
	s.fail(http.StatusNotFound, "not_found", http.MethodPut, "/policies/ops.missing",
		`{"action_ref": "demo.run", "concurrency": {"limit": 1}}`)

	status, body := s.do(http.MethodDelete, "/policies/ops.run_limit", "")
	require.Equal(t, http.StatusNoContent, status)
	require.Nil(t, body)
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/policies/ops.run_limit", "")
	s.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/policies/ops.run_limit", "")
}

// A refused body names the field at fault and writes nothing.
func TestPolicyRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tests := []struct {
		name, body, wantMsg string
	}{
		{"limit 0", `{"ref": "ops.p", "action_ref": "demo.run", "concurrency": {"limit": 0}}`, "concurrency.limit: want more than 0"},
		{"unknown method", `{"ref": "ops.p", "action_ref": "demo.run", "concurrency": {"limit": 1, "method": "sometimes"}}`,
			`concurrency.method: unknown method "sometimes"`},
		{"rate window 0", `{"ref": "ops.p", "action_ref": "demo.run", "rate_limit": {"max_executions": 1, "window_seconds": 0}}`,
			"rate_limit.window_seconds"},
		{"unknown key", `{"ref": "ops.p", "action_ref": "demo.run", "concurrency": {"limit": 1}, "colour": "red"}`, `unknown field "colour"`},
		{"unknown nested key", `{"ref": "ops.p", "action_ref": "demo.run", "concurrency": {"limit": 1, "burst": 2}}`, `unknown field "burst"`},
		{"loader's file key", `{"ref": "ops.p", "action_ref": "demo.run", "concurrency": {"limit": 1}, "file": "x.yaml"}`, `unknown field "file"`},
		{"no ref", `{"action_ref": "demo.run", "concurrency": {"limit": 1}}`, "ref: required"},
		{"ref without pack", `{"ref": "p", "action_ref": "demo.run", "concurrency": {"limit": 1}}`, "ref:"},
		{"bad pack in ref", `{"ref": "Ops.p", "action_ref": "demo.run", "concurrency": {"limit": 1}}`, "ref:"},
		{"no limit", `{"ref": "ops.p", "action_ref": "demo.run"}`, "concurrency:"},
		{"no scope", `{"ref": "ops.p", "concurrency": {"limit": 1}}`, "action_ref: required"},
		{"both scopes", `{"ref": "ops.p", "action_ref": "demo.run", "pack_ref": "demo", "concurrency": {"limit": 1}}`, "pack_ref:"},
		{"missing action", `{"ref": "ops.p", "action_ref": "demo.missing", "concurrency": {"limit": 1}}`, `action_ref: no action "demo.missing"`},
		{"negative queue length", `{"ref": "ops.p", "action_ref": "demo.run", "concurrency": {"limit": 1}, "max_queue_length": -1}`, "max_queue_length"},
		{"not JSON", `{"ref": `, "invalid JSON body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s
			s.t = t
			msg := s.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/policies", tt.body)
			require.Contains(t, msg, tt.wantMsg)
		})
	}
	status, list := s.do(http.MethodGet, "/policies", "")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list["data"], 1, "only the pack's own policy")

	s.data(http.StatusCreated, http.MethodPost, "/policies", `{"ref": "ops.p", "action_ref": "demo.run", "concurrency": {"limit": 1}}`)
	s.fail(http.StatusConflict, "conflict", http.MethodPost, "/policies", `{"ref": "ops.p", "pack_ref": "demo", "concurrency": {"limit": 2}}`)
	s.fail(http.StatusConflict, "conflict", http.MethodPost, "/policies", `{"ref": "demo.other_limit", "action_ref": "demo.run", "concurrency": {"limit": 2}}`)
}

// Queue stats and queue positions show executions held by the policy in force: per group the
// slots in use and the waiters, the oldest waiter's time, and each waiter's place in line.
func TestQueueStatsAndPosition(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	s.data(http.StatusCreated, http.MethodPost, "/policies",
		`{"ref": "ops.per_host", "action_ref": "demo.run", "concurrency": {"limit": 1, "parameters": ["host"]}}`)
	admit := func(host, wantOutcome string) int64 {
		t.Helper()
		c, err := s.s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "demo.run", Parameters: json.RawMessage(`{"host": "` + host + `"}`)})
		require.NoError(t, err)
		require.Equal(t, wantOutcome, c.Outcome)
		return c.Execution.ID
	}
	before := time.Now().Add(-time.Minute)
	a1 := admit("a", store.CreateAdmitted)
	b1 := admit("b", store.CreateAdmitted)
	a2 := admit("a", store.CreateQueued)
	a3 := admit("a", store.CreateQueued)

	st := s.data(http.StatusOK, http.MethodGet, "/actions/demo.run/queue-stats", "")
	oldest, err := time.Parse(time.RFC3339Nano, st["oldest_queued_at"].(string))
	require.NoError(t, err)
	require.True(t, oldest.After(before) && !oldest.After(time.Now()), oldest)
	delete(st, "oldest_queued_at")
	require.JSONEq(t, `{"action_ref": "demo.run", "limit": 1, "active": 2, "queued": 2, "groups": [
		{"key": "[\"a\"]", "active": 1, "queued": 2}, {"key": "[\"b\"]", "active": 1, "queued": 0}]}`, mustJSON(t, st))

	// demo.other has its pack's policy and nothing running; demo.free has no policy.
	require.JSONEq(t, `{"action_ref": "demo.other", "limit": 1, "active": 0, "queued": 0, "oldest_queued_at": null, "groups": []}`,
		mustJSON(t, s.data(http.StatusOK, http.MethodGet, "/actions/demo.other/queue-stats", "")))
	require.JSONEq(t, `{"action_ref": "demo.free", "limit": null, "active": 0, "queued": 0, "oldest_queued_at": null, "groups": []}`,
		mustJSON(t, s.data(http.StatusOK, http.MethodGet, "/actions/demo.free/queue-stats", "")))
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/actions/demo.missing/queue-stats", "")

	position := func(id int64) any {
		t.Helper()
		e := s.data(http.StatusOK, http.MethodGet, "/executions/"+strconv.FormatInt(id, 10), "")
		require.Equal(t, float64(id), e["id"])
		for _, k := range []string{"action_ref", "status", "parameters", "result", "reason", "enforcement_id", "parent_id",
			"worker", "timeout_seconds", "created", "updated", "started_at", "finished_at", "queue_position"} {
			require.Contains(t, e, k, "the execution keeps every field")
		}
		return e["queue_position"]
	}
	require.Equal(t, 1.0, position(a2), "the next to be admitted")
	require.Equal(t, 2.0, position(a3))
	require.Nil(t, position(a1), "an admitted execution waits in no queue")
	require.Nil(t, position(b1))

	// Ending the running execution of host a admits a2, and a3 moves up.
	_, changed, err := s.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: a1, From: []string{store.ExecutionScheduled}, To: store.ExecutionCompleted})
	require.NoError(t, err)
	require.True(t, changed)
	require.Nil(t, position(a1), "a finished execution waits in no queue")
	require.Nil(t, position(a2))
	require.Equal(t, 1.0, position(a3))

	status, list := s.do(http.MethodGet, "/executions", "")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, list["data"].([]any)[0], "queue_position", "lists leave the position out")
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
