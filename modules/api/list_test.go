package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// The execution list filters by status, action, the rule behind the execution and a creation
// window, alone and together; a time that does not parse is refused naming the parameter.
func TestExecutionListFilters(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	_, err := s.s.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "hooks", Path: "/packs/hooks"},
		Triggers: []store.Trigger{{Ref: "hooks.hit"}},
		Actions:  []store.Action{{Ref: "hooks.act", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
		Rules:    []store.Rule{{Ref: "hooks.on_hit", TriggerRef: "hooks.hit", ActionRef: "hooks.act", Enabled: true}},
	})
	require.NoError(t, err)
	ev, err := s.s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "hooks.hit", Payload: json.RawMessage(`{}`)})
	require.NoError(t, err)
	enfs, err := s.s.EventEnforce(ctx, ev.ID, []store.EnforcementMatch{{RuleRef: "hooks.on_hit"}})
	require.NoError(t, err)
	require.Len(t, enfs, 1)
	fromRule, _, err := s.s.ExecutionInsertForEnforcement(ctx, store.ExecutionInsertParams{ActionRef: "hooks.act", EnforcementID: &enfs[0].ID})
	require.NoError(t, err)
	byHand, err := s.s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
	require.NoError(t, err)
	failed, err := s.s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run", Status: store.ExecutionFailed, Reason: "bad"})
	require.NoError(t, err)

	ids := func(query url.Values) []int64 {
		t.Helper()
		status, out := s.do(http.MethodGet, "/executions?"+query.Encode(), "")
		require.Equal(t, http.StatusOK, status, out)
		var got []int64
		for _, e := range out["data"].([]any) {
			got = append(got, int64(e.(map[string]any)["id"].(float64)))
		}
		require.EqualValues(t, len(got), out["pagination"].(map[string]any)["total_items"])
		return got
	}
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	require.Equal(t, []int64{failed.ID, byHand.ID, fromRule.ID}, ids(url.Values{}), "newest first")
	require.Equal(t, []int64{fromRule.ID}, ids(url.Values{"rule_ref": {"hooks.on_hit"}}))
	require.Equal(t, []int64{failed.ID, byHand.ID}, ids(url.Values{"action_ref": {"demo.run"}}))
	require.Equal(t, []int64{failed.ID}, ids(url.Values{"action_ref": {"demo.run"}, "status": {"failed"}}))
	require.Empty(t, ids(url.Values{"since": {later}}))
	require.Len(t, ids(url.Values{"until": {later}, "since": {byHand.Created.Add(-time.Nanosecond).Format(time.RFC3339Nano)}}), 2)
	require.Empty(t, ids(url.Values{"rule_ref": {"hooks.on_hit"}, "action_ref": {"demo.run"}}))

	msg := s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/executions?since=yesterday", "")
	require.Contains(t, msg, "since")
}
