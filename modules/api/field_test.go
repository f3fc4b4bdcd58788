package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
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
			400, "action_params.message"},
		{"no pack, from the ref", http.MethodPost, "/rules", `{"ref": "nope.r", ` + hook + `, "action_ref": "core.noop"}`, 400, "ref"},
		{"no pack", http.MethodPost, "/rules", `{"name": "r", "pack_ref": "nope", ` + hook + `, "action_ref": "core.noop"}`, 400, "pack_ref"},
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

// refusedAt checks that a request is refused with status, naming field in error.field and
// at the start of the message (an action's parameter as parameter "NAME").
func (s server) refusedAt(name string, status int, method, url, token, body, field string) {
	s.t.Helper()
	got, out := s.raw(method, url, token, body)
	require.Equal(s.t, status, got, "%s: %v", name, out)
	detail := out["error"].(map[string]any)
	require.Equal(s.t, field, detail["field"], "%s: %v", name, detail)
	prefix := field + ": "
	if param, ok := strings.CutPrefix(field, "parameters."); ok && !strings.Contains(detail["message"].(string), "sealed") {
		prefix = `parameter "` + param + `": `
	}
	require.True(s.t, strings.HasPrefix(detail["message"].(string), prefix), "%s: the message names the field first: %v", name, detail)
}

// Every refusal about one field of the body names it in error.field, as the rules' writes do:
// keys, identities, logins, API tokens, webhook secrets, execute and rerun (an action's
// parameters as parameters.NAME) and an inquiry's answer (response.PATH).
func TestFieldErrorsEverywhere(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(context.Background(), store.PackRegistration{
		Pack: store.Pack{Ref: "ops", Path: "/packs/ops"},
		Actions: []store.Action{
			{Ref: "ops.deploy", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: true,
				Parameters: json.RawMessage(`{"host": {"type": "string", "required": true}, "count": {"type": "integer", "default": 1}}`)},
			{Ref: "ops.ask", RunnerType: "inquiry", OutputFormat: "json", TimeoutSeconds: 30, Enabled: true},
		},
	})
	require.NoError(t, err)
	s := startAPI(t, st, &recorder{Broker: membroker.New(broker.Options{})}, api.Config{})
	orig := s.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "ops.deploy", "parameters": {"host": "a"}}`)
	_, inquiry := s.ask(nil, nil, approvalSchema)
	const bad = http.StatusBadRequest
	for _, tt := range []struct {
		name, method, path, body, field string
	}{
		{"key name", http.MethodPut, "/keys/system/9-lives", `{"value": 1}`, "name"},
		{"key scope", http.MethodPut, "/keys/nowhere/k", `{"value": 1}`, "scope"},
		{"key value", http.MethodPut, "/keys/system/k", `{}`, "value"},
		{"key ttl", http.MethodPut, "/keys/system/k", `{"value": 1, "ttl": "soon"}`, "ttl"},
		{"identity login", http.MethodPost, "/identities", `{"login": "no spaces", "password": "long-enough-1", "role": "viewer"}`, "login"},
		{"identity role", http.MethodPost, "/identities", `{"login": "ida", "password": "long-enough-1", "role": "boss"}`, "role"},
		{"identity password", http.MethodPost, "/identities", `{"login": "ida", "password": "short", "role": "viewer"}`, "password"},
		{"identity no password", http.MethodPost, "/identities", `{"login": "ida", "role": "viewer"}`, "password"},
		{"own password", http.MethodPut, "/identities/admin", `{"password": "another-one-1"}`, "current_password"},
		{"new password", http.MethodPut, "/identities/admin", `{"password": "short", "current_password": "` + adminPassword + `"}`, "password"},
		{"token role", http.MethodPost, "/tokens", `{"role": "boss"}`, "role"},
		{"token expiry", http.MethodPost, "/tokens", `{"expires_at": "2001-01-01T00:00:00Z"}`, "expires_at"},
		{"token name", http.MethodPost, "/tokens", `{"name": "` + strings.Repeat("n", 201) + `"}`, "name"},
		{"webhook secret", http.MethodPut, "/webhook-secrets/hook", `{"secret": "short"}`, "secret"},
		{"execute no action", http.MethodPost, "/executions/execute", `{}`, "action_ref"},
		{"execute type", http.MethodPost, "/executions/execute", `{"action_ref": "ops.deploy", "parameters": {"host": "a", "count": "x"}}`, "parameters.count"},
		{"execute required", http.MethodPost, "/executions/execute", `{"action_ref": "ops.deploy"}`, "parameters.host"},
		{"execute unknown", http.MethodPost, "/executions/execute", `{"action_ref": "ops.deploy", "parameters": {"host": "a", "colour": "red"}}`, "parameters.colour"},
		{"rerun type", http.MethodPost, executionPath(orig["id"], "/rerun"), `{"parameters": {"count": "many"}}`, "parameters.count"},
		{"rerun from task", http.MethodPost, executionPath(orig["id"], "/rerun"), `{"from_task": "build"}`, "from_task"},
		{"answer path", http.MethodPost, inquiry + "/respond", `{"response": {"approved": "yes"}}`, "response.approved"},
		{"answer missing", http.MethodPost, inquiry + "/respond", `{"response": {}}`, "response"},
		{"no answer", http.MethodPost, inquiry + "/respond", `{}`, "response"},
	} {
		s.refusedAt(tt.name, bad, tt.method, s.base+tt.path, s.token, tt.body, tt.field)
	}
	s.refusedAt("login password", bad, http.MethodPost, s.root+"/auth/login", "", `{"login": "admin"}`, "password")
	s.refusedAt("login", bad, http.MethodPost, s.root+"/auth/login", "", `{"password": "x"}`, "login")
	s.refusedAt("refresh", bad, http.MethodPost, s.root+"/auth/refresh", "", `{}`, "refresh_token")
	// A wrong current password is refused (403), and said at its field too.
	s.refusedAt("wrong current password", http.StatusForbidden, http.MethodPut, s.base+"/identities/admin", s.token,
		`{"password": "another-one-1", "current_password": "not-it-at-all"}`, "current_password")
}
