package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// recorder is the membroker, keeping what was published through it for the test to read.
type recorder struct {
	broker.Broker
	mu   sync.Mutex
	msgs []broker.Message
}

func (r *recorder) Publish(ctx context.Context, msgs ...broker.Message) error {
	if err := r.Broker.Publish(ctx, msgs...); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, msgs...)
	return nil
}

// requested returns the executions announced as requested, in order.
func (r *recorder) requested(t *testing.T) []broker.ExecutionRequested {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []broker.ExecutionRequested
	for _, m := range r.msgs {
		if m.Type != broker.TypeExecutionRequested {
			continue
		}
		p, err := broker.Decode[broker.ExecutionRequested](m)
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}

// newRerunServer is the API over real HTTP on a database of its own holding ops.deploy, whose
// parameters have a schema, and ops.off, which is disabled.
func newRerunServer(t *testing.T) (server, *recorder) {
	t.Helper()
	return newRerunServerWith(t, api.Config{})
}

// newRerunServerWith is newRerunServer with cfg.
func newRerunServerWith(t *testing.T, cfg api.Config) (server, *recorder) {
	t.Helper()
	s := storetest.NewStore(t)
	_, err := s.PackRegister(context.Background(), store.PackRegistration{
		Pack: store.Pack{Ref: "ops", Path: "/packs/ops"},
		Actions: []store.Action{
			{Ref: "ops.deploy", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: true,
				Parameters: json.RawMessage(`{"host": {"type": "string", "required": true}, "count": {"type": "integer", "default": 1}, "tag": {"type": "string"}}`)},
			{Ref: "ops.off", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: false},
		},
	})
	require.NoError(t, err)

	rec := &recorder{Broker: membroker.New(broker.Options{})}
	return startAPI(t, s, rec, cfg), rec
}

func executionPath(id any, suffix string) string {
	return "/executions/" + strconv.FormatInt(int64(id.(float64)), 10) + suffix
}

// A rerun is a new execution of the same action, a child of the original, with the original's
// parameters and the body's replacing them by key, announced as execute announces one.
func TestRerun(t *testing.T) {
	t.Parallel()
	s, rec := newRerunServer(t)

	orig := s.data(http.StatusCreated, http.MethodPost, "/executions/execute",
		`{"action_ref": "ops.deploy", "parameters": {"host": "a", "tag": "v1"}}`)
	require.JSONEq(t, `{"host": "a", "count": 1, "tag": "v1"}`, mustJSON(t, orig["parameters"]))

	// tag: null drops the key; count, never given, keeps the default the first run recorded.
	child := s.data(http.StatusCreated, http.MethodPost, executionPath(orig["id"], "/rerun"),
		`{"parameters": {"host": "b", "tag": null}}`)
	require.NotEqual(t, orig["id"], child["id"])
	require.Equal(t, "ops.deploy", child["action_ref"])
	require.Equal(t, store.ExecutionScheduled, child["status"], "no policy: admitted as it is created")
	require.JSONEq(t, `{"host": "b", "count": 1}`, mustJSON(t, child["parameters"]))
	require.Equal(t, orig["id"], child["parent_id"])
	require.Equal(t, 30.0, child["timeout_seconds"])

	stored := s.data(http.StatusOK, http.MethodGet, executionPath(child["id"], ""), "")
	require.Equal(t, orig["id"], stored["parent_id"])
	require.JSONEq(t, `{"host": "b", "count": 1}`, mustJSON(t, stored["parameters"]))

	// No body, and an empty parameters object, both run the original's parameters as they were.
	for _, body := range []string{"", `{}`, `{"parameters": {}}`} {
		again := s.data(http.StatusCreated, http.MethodPost, executionPath(orig["id"], "/rerun"), body)
		require.Equal(t, orig["id"], again["parent_id"], "body %q", body)
		require.JSONEq(t, `{"host": "a", "count": 1, "tag": "v1"}`, mustJSON(t, again["parameters"]), "body %q", body)
	}

	// Rerunning a rerun makes a child of the rerun.
	grandchild := s.data(http.StatusCreated, http.MethodPost, executionPath(child["id"], "/rerun"), `{"parameters": {"count": 3}}`)
	require.Equal(t, child["id"], grandchild["parent_id"])
	require.JSONEq(t, `{"host": "b", "count": 3}`, mustJSON(t, grandchild["parameters"]))

	var announced []float64
	for _, r := range rec.requested(t) {
		require.Equal(t, "ops.deploy", r.ActionRef)
		announced = append(announced, float64(r.ExecutionID))
	}
	require.Len(t, announced, 6, "the execute, then each rerun")
	require.Equal(t, orig["id"], announced[0])
	require.Equal(t, child["id"], announced[1])
	require.Equal(t, grandchild["id"], announced[5])
}

// A refused rerun creates and announces nothing.
func TestRerunRefused(t *testing.T) {
	t.Parallel()
	s, rec := newRerunServer(t)
	orig := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "ops.deploy", "parameters": {"host": "a"}}`)
	rerun := executionPath(orig["id"], "/rerun")
	off, err := s.s.ExecutionInsert(context.Background(), store.ExecutionInsertParams{ActionRef: "ops.off"})
	require.NoError(t, err)

	tests := []struct {
		name, path, body   string
		wantStatus         int
		wantCode, wantPart string
	}{
		{"no such execution", "/executions/999999/rerun", "", http.StatusNotFound, "not_found", "no execution 999999"},
		{"id not a number", "/executions/abc/rerun", "", http.StatusBadRequest, "bad_request", "invalid id"},
		{"body an array", rerun, `[{"parameters": {}}]`, http.StatusBadRequest, "bad_request", "invalid JSON body"},
		{"body a string", rerun, `"again"`, http.StatusBadRequest, "bad_request", "invalid JSON body"},
		{"body not JSON", rerun, `{"parameters": `, http.StatusBadRequest, "bad_request", "invalid JSON body"},
		{"unknown key", rerun, `{"parameters": {}, "action_ref": "ops.off"}`, http.StatusBadRequest, "bad_request", `unknown field "action_ref"`},
		{"parameters not an object", rerun, `{"parameters": ["host"]}`, http.StatusBadRequest, "bad_request", "invalid JSON body"},
		{"parameter the action lacks", rerun, `{"parameters": {"colour": "red"}}`, http.StatusBadRequest, "bad_request", `parameter "colour": unknown`},
		{"required parameter dropped", rerun, `{"parameters": {"host": null}}`, http.StatusBadRequest, "bad_request", `parameter "host": required`},
		{"action disabled since", "/executions/" + strconv.FormatInt(off.ID, 10) + "/rerun", "", http.StatusConflict, "conflict", "ops.off is disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s
			s.t = t
			require.Contains(t, s.fail(tt.wantStatus, tt.wantCode, http.MethodPost, tt.path, tt.body), tt.wantPart)
		})
	}

	_, total, err := s.s.ExecutionList(context.Background(), store.ExecutionFilter{}, store.Page{Limit: 10})
	require.NoError(t, err)
	require.Equal(t, 2, total, "the execute's and the one inserted for ops.off")
	require.Len(t, rec.requested(t), 1, "only the execute was announced")
}

// A cancel before the run announces the ending with whether the execution held a policy's
// place, so that the completion listener looks for a waiter to schedule only when one may
// have been admitted.
func TestCancelSaysWhetherItHeldASlot(t *testing.T) {
	t.Parallel()
	s, rec := newRerunServer(t)
	exec := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "ops.deploy", "parameters": {"host": "a"}}`)
	s.data(http.StatusOK, http.MethodPost, executionPath(exec["id"], "/cancel"), "")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var completions []broker.ExecutionCompleted
	for _, m := range rec.msgs {
		if m.Type == broker.TypeExecutionCompleted {
			p, err := broker.Decode[broker.ExecutionCompleted](m)
			require.NoError(t, err)
			completions = append(completions, p)
		}
	}
	require.Len(t, completions, 1)
	require.Equal(t, store.ExecutionCancelled, completions[0].Status)
	require.NotNil(t, completions[0].HeldSlot, "the API knows, from the statement that ended it")
	require.False(t, *completions[0].HeldSlot, "no policy covers ops.deploy")
}
