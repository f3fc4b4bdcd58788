package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
)

// A trace's rows become a tree: enforcements under their event, each execution under its
// enforcement or its workflow, a retry's attempts beside the first, a row whose parent is
// not in the trace at the top; and every reason in it is masked.
func TestTraceTree(t *testing.T) {
	t.Parallel()
	ptr := func(v int64) *int64 { return &v }
	sealed := "could not read attune:sealed:v1:k0123abcd:AAAA~ here"
	now := time.Now()
	tr := store.Trace{
		ID:     "t",
		Events: []store.TraceEvent{{ID: 1, TriggerRef: "core.webhook", Created: now}},
		Enforcements: []store.TraceEnforcement{
			{ID: 10, EventID: 1, RuleRef: "a", Status: store.EnforcementProcessed},
			{ID: 11, EventID: 1, RuleRef: "b", Status: store.EnforcementProcessed, Reason: &sealed},
		},
		Executions: []store.TraceExecution{
			{ID: 100, ActionRef: "wf", EnforcementID: ptr(10), Attempt: 1},
			{ID: 101, ActionRef: "task", ParentID: ptr(100), Attempt: 1},
			{ID: 102, ActionRef: "task", ParentID: ptr(100), Attempt: 2, RetryOf: ptr(101), Reason: &sealed},
			{ID: 103, ActionRef: "b", EnforcementID: ptr(11), Attempt: 1, Reason: &sealed},
			{ID: 104, ActionRef: "wf", Attempt: 2, RetryOf: ptr(100)},
			{ID: 105, ActionRef: "lost", ParentID: ptr(99), Attempt: 1},
		},
	}
	body := masked(traceTree(tr))
	require.Len(t, body.Events, 1)
	enfs := body.Events[0].Enforcements
	require.Len(t, enfs, 2)
	require.False(t, enfs[0].Refused)
	require.True(t, enfs[1].Refused)
	require.Equal(t, "could not read "+pack.Mask+" here", *enfs[1].Reason)

	ids := func(es []traceExec) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	require.Equal(t, []int64{100, 104}, ids(enfs[0].Executions), "the workflow and its second attempt")
	require.Equal(t, []int64{101, 102}, ids(enfs[0].Executions[0].Children), "a task and its retry")
	require.Equal(t, "could not read "+pack.Mask+" here", *enfs[0].Executions[0].Children[1].Reason)
	require.Equal(t, []int64{103}, ids(enfs[1].Executions))
	require.Equal(t, "could not read "+pack.Mask+" here", *enfs[1].Executions[0].Reason)
	require.Equal(t, []int64{105}, ids(body.Executions), "its parent is not in the trace")
}
