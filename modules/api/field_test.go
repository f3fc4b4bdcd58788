package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A refused rule names the body's field at fault in error.field, for a form to show the
// message beside it; a refusal that is no one field's has none.
func TestRuleErrorsNameTheField(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	withOps(t, s)
	s.data(http.StatusCreated, http.MethodPost, "/rules", `{"ref": "ops.on_push", "trigger_ref": "core.webhook", "trigger_params": {"url": "push"}, "action_ref": "core.noop"}`)
	hook := `"trigger_ref": "core.webhook", "trigger_params": {"url": "x"}`
	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"no trigger", http.MethodPost, "/rules", `{"ref": "ops.r", "action_ref": "core.noop"}`, 400, "trigger_ref"},
		{"unknown trigger", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "ops.nothing", "action_ref": "core.noop"}`, 400, "trigger_ref"},
		{"unknown action", http.MethodPost, "/rules", `{"ref": "ops.r", ` + hook + `, "action_ref": "ops.nothing"}`, 400, "action_ref"},
		{"trigger param missing", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.webhook", "action_ref": "core.noop"}`, 400, "trigger_params.url"},
		{"trigger param type", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.intervaltimer", "trigger_params": {"interval": "often"}, "action_ref": "core.noop"}`,
			400, "trigger_params.interval"},
		{"schedule", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.crontimer", "trigger_params": {"expression": "61 * * * *"}, "action_ref": "core.noop"}`,
			400, "trigger_params.expression"},
		{"conditions", http.MethodPost, "/rules", `{"ref": "ops.r", ` + hook + `, "action_ref": "core.noop", "conditions": {"field": "body.a", "operator": "resembles"}}`,
			400, "conditions"},
		{"action param type", http.MethodPost, "/rules", `{"ref": "ops.r", ` + hook + `, "action_ref": "core.echo", "action_params": {"message": "hi", "count": 1}}`,
			400, "action_params.count"},
		{"template", http.MethodPut, "/rules/ops.on_push", `{` + hook + `, "action_ref": "core.echo", "action_params": {"message": "{{ event.payload. }}"}}`,
			400, "action_params"},
		{"no pack", http.MethodPost, "/rules", `{"ref": "nope.r", ` + hook + `, "action_ref": "core.noop"}`, 400, "pack_ref"},
		{"other ref", http.MethodPut, "/rules/ops.on_push", `{"ref": "ops.x", ` + hook + `, "action_ref": "core.noop"}`, 400, "ref"},
		{"unknown key", http.MethodPost, "/rules", `{"ref": "ops.r", ` + hook + `, "action_ref": "core.noop", "when": 1}`, 400, ""},
		{"duplicate", http.MethodPost, "/rules", `{"ref": "ops.on_push", ` + hook + `, "action_ref": "core.noop"}`, 409, ""},
	} {
		status, out := s.do(tt.method, tt.path, tt.body)
		require.Equal(t, tt.status, status, "%s: %v", tt.name, out)
		detail := out["error"].(map[string]any)
		if tt.field == "" {
			require.NotContains(t, detail, "field", tt.name)
			continue
		}
		require.Equal(t, tt.field, detail["field"], "%s: %v", tt.name, detail)
		require.Contains(t, detail["message"], tt.field+": ", "%s: the message names the field too", tt.name)
	}
}
