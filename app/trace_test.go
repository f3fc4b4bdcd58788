package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
)

// A webhook whose url two usable rules and one unusable rule listen to: its trace, through
// the API and the CLI, shows the event, the three matches, the two executions that ran and
// the refused match with why; a workflow requested by hand has a trace of its own that holds
// its tasks, nested. On RabbitMQ.
func TestTraceOfAWebhook(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, []string{"--amqp-url=" + brokertest.URL(t), "--amqp-namespace=" + namespace(t)})
	p.registerHooks(t)
	for _, r := range []map[string]any{
		{"ref": "hooks.echo", "action_ref": "core.echo", "action_params": map[string]any{"message": "{{ event.payload.body.name }}"}},
		{"ref": "hooks.noop", "action_ref": "core.noop"},
		// n is not a number: the parameters cannot be rendered, and the match is refused.
		{"ref": "hooks.broken", "action_ref": "core.echo", "action_params": map[string]any{"message": "{{ event.payload.body.n * 2 }}"}},
	} {
		r["trigger_ref"], r["trigger_params"] = "core.webhook", map[string]any{"url": "traced"}
		status, body := p.post(t, "/api/v1/rules", r)
		require.Equal(t, http.StatusCreated, status, body)
	}

	status, out := p.post(t, "/api/v1/webhooks/traced", map[string]any{"name": "Ada", "n": "many"})
	require.Equal(t, http.StatusAccepted, status, out)
	eventID := id(t, data(t, out), "event_id")
	trace, _ := data(t, out)["trace_id"].(string)
	_, err := uuid.Parse(trace)
	require.NoError(t, err, "the webhook's answer names the trace: %v", out)

	var tree traceAnswer
	require.Eventually(t, func() bool {
		tree = p.trace(t, trace)
		if len(tree.Events) != 1 || len(tree.Events[0].Enforcements) != 3 {
			return false
		}
		for _, e := range tree.Events[0].Enforcements {
			if len(e.Executions) != 1 || e.Executions[0].FinishedAt == nil {
				return false
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "the trace did not fill: %+v", tree)
	ev := tree.Events[0]
	require.Equal(t, eventID, ev.ID)
	require.Equal(t, "core.webhook", ev.TriggerRef)
	require.Equal(t, "webhook", ev.Source)
	byRule := map[string]traceMatch{}
	for _, e := range ev.Enforcements {
		byRule[e.RuleRef] = e
	}
	for _, ref := range []string{"hooks.echo", "hooks.noop"} {
		m := byRule[ref]
		require.False(t, m.Refused, "%s: %+v", ref, m)
		require.Equal(t, "completed", m.Executions[0].Status, "%s: %+v", ref, m)
		require.NotNil(t, m.Executions[0].StartedAt)
	}
	broken := byRule["hooks.broken"]
	require.True(t, broken.Refused, "%+v", broken)
	require.NotNil(t, broken.Reason)
	require.Contains(t, *broken.Reason, "render action_params")
	require.Equal(t, "failed", broken.Executions[0].Status, "its execution fails with the reason, never run")
	require.Nil(t, broken.Executions[0].StartedAt)
	require.Empty(t, tree.Executions, "nothing hangs outside the event")

	// The rows name their trace too.
	echoID := byRule["hooks.echo"].Executions[0].ID
	for _, path := range []string{fmt.Sprintf("/api/v1/events/%d", eventID), fmt.Sprintf("/api/v1/enforcements/%d", broken.ID),
		fmt.Sprintf("/api/v1/executions/%d", echoID)} {
		_, body := p.get(t, path)
		require.Equal(t, trace, data(t, body)["trace_id"], path)
	}

	// The CLI's tree: indented, with statuses, durations and the refusal's reason.
	stdout, stderr, code := p.cli(t, "trace", trace)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "trace "+trace+"\n")
	require.Contains(t, stdout, fmt.Sprintf("  event %d  core.webhook from webhook", eventID))
	require.Regexp(t, `(?m)^    rule hooks.broken  enforcement \d+  processed  refused: .*render action_params`, stdout)
	require.Regexp(t, fmt.Sprintf(`(?m)^      execution %d  core.echo  completed  [0-9.]+m?s$`, echoID), stdout)
	require.Regexp(t, `(?m)^      execution \d+  core.echo  failed  \(the reason above\)$`, stdout)
	// Found from its event or one of its executions; --json is the API's answer.
	stdout, stderr, code = p.cli(t, "trace", "--event", strconv.FormatInt(eventID, 10), "--json")
	require.Equal(t, 0, code, stderr)
	var raw traceAnswer
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw), stdout)
	require.Equal(t, trace, raw.TraceID)
	stdout, stderr, code = p.cli(t, "trace", "--execution", strconv.FormatInt(echoID, 10))
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "trace "+trace+"\n")
	stdout, _, code = p.cli(t, "execution", "show", strconv.FormatInt(echoID, 10))
	require.Equal(t, 0, code)
	require.Contains(t, stdout, trace, "execution show names the trace")

	// Bad ids: 400 for one that is no UUID, 404 naming one nothing carries.
	status, body := p.get(t, "/api/v1/traces/not-a-uuid")
	require.Equal(t, http.StatusBadRequest, status, body)
	unknown := uuid.NewString()
	status, body = p.get(t, "/api/v1/traces/"+unknown)
	require.Equal(t, http.StatusNotFound, status, body)
	require.Contains(t, fmt.Sprint(body), unknown)
	_, stderr, code = p.cli(t, "trace")
	require.Equal(t, 2, code, "no trace named is a usage error: %s", stderr)

	// A workflow requested by hand starts its own trace, which its tasks and theirs share.
	status, out = p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "examples.nested", "parameters": map[string]any{"name": "bob"}})
	require.Equal(t, http.StatusCreated, status, out)
	wfID := id(t, data(t, out), "id")
	wfTrace, _ := data(t, out)["trace_id"].(string)
	require.NotEmpty(t, wfTrace)
	require.NotEqual(t, trace, wfTrace)
	require.Equal(t, "completed", p.waitExecution(t, wfID)["status"])
	wf := p.trace(t, wfTrace)
	require.Empty(t, wf.Events)
	require.Len(t, wf.Executions, 1)
	root := wf.Executions[0]
	require.Equal(t, wfID, root.ID)
	require.Len(t, root.Children, 2, "inner and after: %+v", root)
	inner := root.Children[0]
	require.Equal(t, "examples.sequence", inner.ActionRef)
	require.NotEmpty(t, inner.Children, "the nested workflow's own tasks")
	grandchild := inner.Children[0]
	_, body = p.get(t, fmt.Sprintf("/api/v1/executions/%d", grandchild.ID))
	require.Equal(t, wfTrace, data(t, body)["trace_id"])
	stdout, stderr, code = p.cli(t, "trace", wfTrace)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, fmt.Sprintf(`(?m)^      execution %d  \S+  task \S+  completed`, grandchild.ID), stdout, "indented under its workflow's task")
}

// traceAnswer is what the tests read of GET /api/v1/traces/{id}.
type traceAnswer struct {
	TraceID string `json:"trace_id"`
	Events  []struct {
		ID           int64        `json:"id"`
		TriggerRef   string       `json:"trigger_ref"`
		Source       string       `json:"source"`
		Enforcements []traceMatch `json:"enforcements"`
	} `json:"events"`
	Executions []traceNode `json:"executions"`
}

type traceMatch struct {
	ID         int64       `json:"id"`
	RuleRef    string      `json:"rule_ref"`
	Refused    bool        `json:"refused"`
	Reason     *string     `json:"reason"`
	Executions []traceNode `json:"executions"`
}

type traceNode struct {
	ID         int64       `json:"id"`
	ActionRef  string      `json:"action_ref"`
	Status     string      `json:"status"`
	StartedAt  *time.Time  `json:"started_at"`
	FinishedAt *time.Time  `json:"finished_at"`
	Children   []traceNode `json:"children"`
}

// trace reads trace id through the API.
func (p *process) trace(t *testing.T, id string) traceAnswer {
	t.Helper()
	status, body := p.get(t, "/api/v1/traces/"+id)
	require.Equal(t, http.StatusOK, status, body)
	raw, err := json.Marshal(body["data"])
	require.NoError(t, err)
	var out traceAnswer
	require.NoError(t, json.Unmarshal(raw, &out))
	require.True(t, strings.EqualFold(out.TraceID, id))
	return out
}
