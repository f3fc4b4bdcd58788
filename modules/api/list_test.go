package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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
	created, err := s.s.ExecutionCreateOne(ctx, store.ExecutionCreateParams{ActionRef: "hooks.act", EnforcementID: &enfs[0].ID})
	require.NoError(t, err)
	fromRule := created.Execution
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

// One event or enforcement answers 404 naming what is missing, and 400 for an id that is not
// one; their lists filter by trigger and by rule and by a creation window, newest first, in
// the pagination envelope.
func TestEventAndEnforcementReads(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := context.Background()
	_, err := s.s.PackRegister(ctx, store.PackRegistration{
		Pack:     store.Pack{Ref: "hooks", Path: "/packs/hooks"},
		Triggers: []store.Trigger{{Ref: "hooks.hit"}, {Ref: "hooks.miss"}},
		Actions:  []store.Action{{Ref: "hooks.act", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}},
		Rules: []store.Rule{{Ref: "hooks.a", TriggerRef: "hooks.hit", ActionRef: "hooks.act", Enabled: true},
			{Ref: "hooks.b", TriggerRef: "hooks.hit", ActionRef: "hooks.act", Enabled: true}},
	})
	require.NoError(t, err)
	var hits []int64
	for range 3 {
		ev, err := s.s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "hooks.hit", Payload: json.RawMessage(`{}`)})
		require.NoError(t, err)
		hits = append(hits, ev.ID)
	}
	miss, err := s.s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "hooks.miss"})
	require.NoError(t, err)
	enfA, err := s.s.EventEnforce(ctx, hits[0], []store.EnforcementMatch{{RuleRef: "hooks.a"}, {RuleRef: "hooks.b"}})
	require.NoError(t, err)
	enfB, err := s.s.EventEnforce(ctx, hits[1], []store.EnforcementMatch{{RuleRef: "hooks.b"}})
	require.NoError(t, err)
	ofRule := map[string]int64{}
	for _, e := range enfA {
		ofRule[e.RuleRef] = e.ID
	}

	ids := func(path string) ([]float64, map[string]any) {
		t.Helper()
		status, out := s.do(http.MethodGet, path, "")
		require.Equal(t, http.StatusOK, status, out)
		var got []float64
		for _, e := range out["data"].([]any) {
			got = append(got, e.(map[string]any)["id"].(float64))
		}
		return got, out["pagination"].(map[string]any)
	}
	got, pages := ids("/events?trigger_ref=hooks.hit&per_page=2")
	require.Equal(t, []float64{float64(hits[2]), float64(hits[1])}, got, "newest first")
	require.Equal(t, map[string]any{"page": 1.0, "page_size": 2.0, "total_items": 3.0, "total_pages": 2.0}, pages)
	got, _ = ids("/events?trigger_ref=hooks.miss")
	require.Equal(t, []float64{float64(miss.ID)}, got)
	got, _ = ids("/events?trigger_ref=hooks.none")
	require.Empty(t, got)

	got, pages = ids("/enforcements?rule_ref=hooks.b")
	require.Equal(t, []float64{float64(enfB[0].ID), float64(ofRule["hooks.b"])}, got)
	require.EqualValues(t, 2, pages["total_items"])
	got, _ = ids("/enforcements?rule_ref=hooks.a")
	require.Equal(t, []float64{float64(ofRule["hooks.a"])}, got)

	one := s.data(http.StatusOK, http.MethodGet, "/enforcements/"+strconv.FormatInt(enfB[0].ID, 10), "")
	require.Equal(t, float64(hits[1]), one["event_id"])
	require.Equal(t, "hooks.b", one["rule_ref"])
	require.Equal(t, "hooks.hit", s.data(http.StatusOK, http.MethodGet, "/events/"+strconv.FormatInt(hits[0], 10), "")["trigger_ref"])

	// A creation window, since inclusive and until exclusive, alone or with the other filter.
	ev1, err := s.s.EventGet(ctx, hits[1])
	require.NoError(t, err)
	since := url.QueryEscape(ev1.Created.Format(time.RFC3339Nano))
	later := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	got, _ = ids("/events?trigger_ref=hooks.hit&since=" + since)
	require.Equal(t, []float64{float64(hits[2]), float64(hits[1])}, got)
	got, _ = ids("/events?trigger_ref=hooks.hit&until=" + since)
	require.Equal(t, []float64{float64(hits[0])}, got)
	got, _ = ids("/events?since=" + later)
	require.Empty(t, got)
	enf1, err := s.s.EnforcementGet(ctx, enfB[0].ID)
	require.NoError(t, err)
	got, _ = ids("/enforcements?since=" + url.QueryEscape(enf1.Created.Format(time.RFC3339Nano)))
	require.Equal(t, []float64{float64(enfB[0].ID)}, got)
	got, _ = ids("/enforcements?rule_ref=hooks.b&until=" + url.QueryEscape(enf1.Created.Format(time.RFC3339Nano)))
	require.Equal(t, []float64{float64(ofRule["hooks.b"])}, got)
	require.Contains(t, s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/events?since=10m", ""), "invalid since")
	require.Contains(t, s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/enforcements?until=today", ""), "invalid until")

	require.Equal(t, "no event 999999", s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/events/999999", ""))
	require.Equal(t, "no enforcement 999999", s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/enforcements/999999", ""))
	for _, path := range []string{"/events/abc", "/events/0", "/enforcements/-1", "/events?per_page=101", "/enforcements?page=0"} {
		s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, path, "")
	}
}
