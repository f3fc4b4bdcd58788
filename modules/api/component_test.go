package api_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store"
)

// withOps adds the core pack and the pack ops, registered from a directory holding
// actions/run.sh, to s: what actions, triggers and rules made through the API join.
func withOps(t *testing.T, s server) string {
	t.Helper()
	registerCore(t, s)
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "actions"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pack.yaml"), []byte("ref: ops\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "actions", "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755))
	s.data(http.StatusOK, http.MethodPost, "/packs/register", `{"path": "`+dir+`"}`)
	return dir
}

// refused checks a write is refused with status and code, its message naming want.
type refused struct {
	name, method, path, body string
	status                   int
	want                     string
}

func (s server) refuseAll(tests []refused) {
	s.t.Helper()
	codes := map[int]string{http.StatusBadRequest: "bad_request", http.StatusNotFound: "not_found", http.StatusConflict: "conflict"}
	for _, tt := range tests {
		msg := s.fail(tt.status, codes[tt.status], tt.method, tt.path, tt.body)
		require.Contains(s.t, msg, tt.want, tt.name)
	}
}

func TestActionCRUD(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	dir := withOps(t, s)

	created := s.data(http.StatusCreated, http.MethodPost, "/actions", `{"name": "deploy", "pack_ref": "ops", "runner_type": "shell",
		"entry_point": "run.sh", "parameters": {"host": {"type": "string", "required": true}}, "description": "Deploys."}`)
	require.Equal(t, "ops.deploy", created["ref"])
	require.Equal(t, "ops", created["pack_ref"])
	require.Equal(t, "text", created["output_format"], "the file's defaults apply")
	require.Equal(t, 600.0, created["timeout_seconds"])
	require.Equal(t, true, created["enabled"])
	require.Equal(t, map[string]any{"host": map[string]any{"type": "string", "required": true}}, created["parameters"])
	require.Equal(t, created, s.data(http.StatusOK, http.MethodGet, "/actions/ops.deploy", ""))
	a, err := s.s.ActionGetByRef(context.Background(), "ops.deploy")
	require.NoError(t, err)
	require.Equal(t, dir, a.PackPath, "its script runs from the pack's directory")

	// A ref alone names the pack; an inline shell command needs no script.
	s.data(http.StatusCreated, http.MethodPost, "/actions", `{"ref": "ops.inline", "runner_type": "shell", "parameters": {"cmd": {"type": "string"}}}`)

	s.refuseAll([]refused{
		{"unknown key", http.MethodPost, "/actions", `{"ref": "ops.x", "runner_type": "noop", "colour": "red"}`, 400, `unknown field "colour"`},
		{"loader's file key", http.MethodPost, "/actions", `{"ref": "ops.x", "runner_type": "noop", "file": "x.yaml"}`, 400, `unknown field "file"`},
		{"unknown parameter key", http.MethodPost, "/actions", `{"ref": "ops.x", "runner_type": "noop", "parameters": {"n": {"type": "string", "size": 2}}}`,
			400, `unknown field "size"`},
		{"no runner", http.MethodPost, "/actions", `{"ref": "ops.x"}`, 400, "runner_type: required"},
		{"bad runner", http.MethodPost, "/actions", `{"ref": "ops.x", "runner_type": "python"}`, 400, `runner_type: unknown runner "python"`},
		{"bad default", http.MethodPost, "/actions", `{"ref": "ops.x", "runner_type": "noop", "parameters": {"n": {"type": "integer", "default": "two"}}}`,
			400, "parameters.n.default: want integer"},
		{"timeout", http.MethodPost, "/actions", `{"ref": "ops.x", "runner_type": "noop", "timeout_seconds": 0}`, 400, "timeout_seconds: want more than 0"},
		{"missing script", http.MethodPost, "/actions", `{"ref": "ops.x", "runner_type": "shell", "entry_point": "gone.sh"}`,
			400, `entry_point: "gone.sh" not found in actions/`},
		{"escaping script", http.MethodPost, "/actions", `{"ref": "ops.x", "runner_type": "shell", "entry_point": "../pack.yaml"}`, 400, "entry_point:"},
		{"no ref or pack", http.MethodPost, "/actions", `{"name": "x", "runner_type": "noop"}`, 400, "pack_ref: required"},
		{"no name", http.MethodPost, "/actions", `{"pack_ref": "ops", "runner_type": "noop"}`, 400, "ref: required"},
		{"no pack", http.MethodPost, "/actions", `{"ref": "nope.x", "runner_type": "noop"}`, 400, `ref: no pack "nope"`},
		{"bad pack in ref", http.MethodPost, "/actions", `{"ref": "Ops.x", "runner_type": "noop"}`, 400, `ref: "Ops.x": pack ref "Ops" is not valid`},
		{"bad pack_ref", http.MethodPost, "/actions", `{"name": "x", "pack_ref": "Ops", "runner_type": "noop"}`, 400, `pack_ref: pack ref "Ops" is not valid`},
		{"ref without pack", http.MethodPost, "/actions", `{"ref": "x", "runner_type": "noop"}`, 400, `ref: "x": want <pack>.<name>`},
		{"ref outside pack_ref", http.MethodPost, "/actions", `{"ref": "demo.x", "pack_ref": "ops", "runner_type": "noop"}`,
			400, `pack_ref: ref "demo.x" does not belong to pack "ops"`},
		{"duplicate", http.MethodPost, "/actions", `{"name": "deploy", "pack_ref": "ops", "runner_type": "noop"}`, 409, "action ops.deploy exists already"},
		{"core", http.MethodPost, "/actions", `{"ref": "core.mine", "runner_type": "noop"}`, 409, "built-in core pack"},
	})

	// PUT replaces the settings whole: what the body leaves out takes the file's default.
	updated := s.data(http.StatusOK, http.MethodPut, "/actions/ops.deploy", `{"runner_type": "noop", "timeout_seconds": 5, "enabled": false}`)
	require.Equal(t, created["id"], updated["id"])
	require.Equal(t, "noop", updated["runner_type"])
	require.Equal(t, "", updated["entry_point"])
	require.Equal(t, map[string]any{}, updated["parameters"])
	require.Equal(t, "", updated["description"])
	require.Equal(t, false, updated["enabled"])
	s.data(http.StatusOK, http.MethodPut, "/actions/ops.deploy", `{"ref": "ops.deploy", "pack_ref": "ops", "runner_type": "noop"}`)
	s.refuseAll([]refused{
		{"missing", http.MethodPut, "/actions/ops.gone", `{"runner_type": "noop"}`, 404, `no action "ops.gone"`},
		{"bad body", http.MethodPut, "/actions/ops.deploy", `{"runner_type": "noop", "output_format": "xml"}`, 400, `output_format: unknown output format "xml"`},
		{"other ref", http.MethodPut, "/actions/ops.deploy", `{"ref": "ops.other", "runner_type": "noop"}`, 400, "ref:"},
		{"other pack", http.MethodPut, "/actions/ops.deploy", `{"pack_ref": "demo", "runner_type": "noop"}`, 400, "pack_ref:"},
		{"core", http.MethodPut, "/actions/core.echo", `{"runner_type": "noop"}`, 409, "built-in core pack"},
	})

	// A rule keeps its action, enabled or not; the policies on an action go with it.
	s.data(http.StatusCreated, http.MethodPost, "/rules", `{"ref": "ops.on_hook", "trigger_ref": "core.webhook",
		"trigger_params": {"url": "x"}, "action_ref": "ops.deploy", "enabled": false}`)
	s.data(http.StatusCreated, http.MethodPost, "/policies", `{"ref": "ops.one_deploy", "action_ref": "ops.deploy", "concurrency": {"limit": 1}}`)
	s.refuseAll([]refused{
		{"used by a disabled rule", http.MethodDelete, "/actions/ops.deploy", "", 409, "action ops.deploy is still used by rule ops.on_hook (disabled)"},
		{"core", http.MethodDelete, "/actions/core.noop", "", 409, "built-in core pack"},
		{"missing", http.MethodDelete, "/actions/ops.gone", "", 404, `no action "ops.gone"`},
	})
	s.data(http.StatusOK, http.MethodPost, "/rules/ops.on_hook/enable", "")
	msg := s.fail(http.StatusConflict, "conflict", http.MethodDelete, "/actions/ops.deploy", "")
	require.Contains(t, msg, "still used by rule ops.on_hook")
	require.NotContains(t, msg, "disabled")
	s.data(http.StatusOK, http.MethodGet, "/actions/ops.deploy", "")

	status, _ := s.do(http.MethodDelete, "/rules/ops.on_hook", "")
	require.Equal(t, http.StatusNoContent, status)
	status, body := s.do(http.MethodDelete, "/actions/ops.deploy", "")
	require.Equal(t, http.StatusNoContent, status)
	require.Nil(t, body)
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/actions/ops.deploy", "")
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/policies/ops.one_deploy", "")
}

func TestTriggerCRUD(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	withOps(t, s)

	created := s.data(http.StatusCreated, http.MethodPost, "/triggers", `{"name": "alert", "pack_ref": "ops",
		"parameters": {"severity": {"type": "string", "enum": ["low", "high"]}}, "output": {"host": {"type": "string", "required": true}}}`)
	require.Equal(t, "ops.alert", created["ref"])
	require.Equal(t, "ops", created["pack_ref"])
	require.Equal(t, created, s.data(http.StatusOK, http.MethodGet, "/triggers/ops.alert", ""))

	// Events of it are checked against its output.
	s.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/events", `{"trigger_ref": "ops.alert", "payload": {}}`)
	s.data(http.StatusAccepted, http.MethodPost, "/events", `{"trigger_ref": "ops.alert", "payload": {"host": "a"}}`)

	s.refuseAll([]refused{
		{"unknown key", http.MethodPost, "/triggers", `{"ref": "ops.t", "enabled": true}`, 400, `unknown field "enabled"`},
		{"bad schema", http.MethodPost, "/triggers", `{"ref": "ops.t", "parameters": {"n": {"type": "int"}}}`, 400, `parameters.n.type: unknown type "int"`},
		{"bad parameter name", http.MethodPost, "/triggers", `{"ref": "ops.t", "output": {"a-b": {"type": "string"}}}`, 400, "output.a-b: name must be"},
		{"bad name", http.MethodPost, "/triggers", `{"ref": "ops.T"}`, 400, `ref: name "T" is not valid`},
		{"no pack", http.MethodPost, "/triggers", `{"ref": "nope.t"}`, 400, `ref: no pack "nope"`},
		{"duplicate", http.MethodPost, "/triggers", `{"ref": "ops.alert"}`, 409, "trigger ops.alert exists already"},
		{"core", http.MethodPost, "/triggers", `{"name": "t", "pack_ref": "core"}`, 409, "built-in core pack"},
	})

	// A rule on it must still fit after an update.
	s.data(http.StatusCreated, http.MethodPost, "/rules", `{"ref": "ops.on_alert", "trigger_ref": "ops.alert",
		"trigger_params": {"severity": "high"}, "action_ref": "core.noop"}`)
	s.refuseAll([]refused{
		{"rule would not fit", http.MethodPut, "/triggers/ops.alert", `{"parameters": {"severity": {"type": "string", "enum": ["low"]}}}`,
			409, `rule ops.on_alert uses trigger ops.alert and would no longer fit its parameters: trigger_params.severity: "high" is not one of "low"`},
		{"missing", http.MethodPut, "/triggers/ops.gone", `{}`, 404, `no trigger "ops.gone"`},
		{"bad body", http.MethodPut, "/triggers/ops.alert", `{"output": {"n": {"type": "integer", "default": 1.5}}}`, 400, "output.n.default"},
		{"other ref", http.MethodPut, "/triggers/ops.alert", `{"ref": "ops.other"}`, 400, "ref:"},
		{"core", http.MethodPut, "/triggers/core.webhook", `{}`, 409, "built-in core pack"},
	})
	updated := s.data(http.StatusOK, http.MethodPut, "/triggers/ops.alert",
		`{"label": "Alert", "parameters": {"severity": {"type": "string"}, "team": {"type": "string"}}}`)
	require.Equal(t, created["id"], updated["id"])
	require.Equal(t, "Alert", updated["label"])
	require.Equal(t, map[string]any{}, updated["output"], "what the body leaves out is unset")

	s.refuseAll([]refused{
		{"used by a rule", http.MethodDelete, "/triggers/ops.alert", "", 409, "trigger ops.alert is still used by rule ops.on_alert"},
		{"core", http.MethodDelete, "/triggers/core.intervaltimer", "", 409, "built-in core pack"},
		{"missing", http.MethodDelete, "/triggers/ops.gone", "", 404, `no trigger "ops.gone"`},
	})
	status, _ := s.do(http.MethodDelete, "/rules/ops.on_alert", "")
	require.Equal(t, http.StatusNoContent, status)
	status, _ = s.do(http.MethodDelete, "/triggers/ops.alert", "")
	require.Equal(t, http.StatusNoContent, status)
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/triggers/ops.alert", "")
	status, events := s.do(http.MethodGet, "/events?trigger_ref=ops.alert", "")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, events["data"], 1, "its events stay")
}

func TestRuleCRUD(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	withOps(t, s)

	created := s.data(http.StatusCreated, http.MethodPost, "/rules", `{"name": "on_push", "pack_ref": "ops", "label": "Push",
		"trigger_ref": "core.webhook", "trigger_params": {"url": "push"},
		"conditions": {"all": [{"field": "body.ref", "operator": "equals", "value": "main"}]},
		"action_ref": "core.echo", "action_params": {"message": "{{ event.payload.body.pusher }}"}}`)
	require.Equal(t, "ops.on_push", created["ref"])
	require.Equal(t, "ops", created["pack_ref"])
	require.Equal(t, true, created["enabled"], "enabled by default, as in a file")
	require.Equal(t, map[string]any{"url": "push"}, created["trigger_params"])
	require.Equal(t, created, s.data(http.StatusOK, http.MethodGet, "/rules/ops.on_push", ""))
	timer := s.data(http.StatusCreated, http.MethodPost, "/rules",
		`{"ref": "ops.tick", "trigger_ref": "core.intervaltimer", "trigger_params": {"interval": 5, "unit": "minutes"}, "action_ref": "core.noop", "enabled": false}`)
	require.Equal(t, false, timer["enabled"])

	s.refuseAll([]refused{
		{"unknown key", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.webhook", "action_ref": "core.noop", "when": 1}`, 400, `unknown field "when"`},
		{"no trigger", http.MethodPost, "/rules", `{"ref": "ops.r", "action_ref": "core.noop"}`, 400, "trigger_ref: required"},
		{"unknown trigger", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "ops.nothing", "action_ref": "core.noop"}`,
			400, `trigger_ref: no trigger "ops.nothing"`},
		{"unknown action", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "ops.nothing"}`,
			400, `action_ref: no action "ops.nothing"`},
		{"trigger params missing", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.webhook", "action_ref": "core.noop"}`,
			400, "trigger_params.url: required"},
		{"trigger params type", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.intervaltimer", "trigger_params": {"interval": "often"}, "action_ref": "core.noop"}`,
			400, `trigger_params.interval: want integer, got "often"`},
		{"trigger params unknown", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.webhook", "trigger_params": {"url": "x", "uri": "y"}, "action_ref": "core.noop"}`,
			400, "trigger_params.uri: unknown; want url"},
		{"conditions", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "core.noop",
			"conditions": {"field": "body.a", "operator": "resembles"}}`, 400, "conditions:"},
		{"templates", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "core.noop",
			"action_params": {"m": "{{ event.payload. }}"}}`, 400, "action_params.m:"},
		{"bad action ref", http.MethodPost, "/rules", `{"ref": "ops.r", "trigger_ref": "core.webhook", "action_ref": "noop"}`, 400, "action_ref:"},
		{"no pack", http.MethodPost, "/rules", `{"ref": "nope.r", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "core.noop"}`,
			400, `ref: no pack "nope"`},
		{"name without pack", http.MethodPost, "/rules", `{"name": "r", "trigger_ref": "core.webhook", "action_ref": "core.noop"}`, 400, "pack_ref: required"},
		{"duplicate", http.MethodPost, "/rules", `{"ref": "ops.on_push", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "core.noop"}`,
			409, "rule ops.on_push exists already"},
		{"core", http.MethodPost, "/rules", `{"ref": "core.r", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "core.noop"}`,
			409, "built-in core pack"},
	})

	// Enable and disable say where the rule stands, however often they are asked.
	for _, step := range []struct {
		path string
		want bool
	}{{"/rules/ops.on_push/disable", false}, {"/rules/ops.on_push/disable", false}, {"/rules/ops.on_push/enable", true}, {"/rules/ops.tick/enable", true}} {
		require.Equal(t, step.want, s.data(http.StatusOK, http.MethodPost, step.path, "")["enabled"], step.path)
	}
	enabled, err := s.s.RuleListEnabledByTrigger(context.Background(), "core.intervaltimer")
	require.NoError(t, err)
	require.Len(t, enabled, 1)

	// PUT replaces the rule whole, enabled included.
	s.data(http.StatusOK, http.MethodPost, "/rules/ops.on_push/disable", "")
	updated := s.data(http.StatusOK, http.MethodPut, "/rules/ops.on_push",
		`{"trigger_ref": "core.webhook", "trigger_params": {"url": "tag"}, "action_ref": "core.noop"}`)
	require.Equal(t, created["id"], updated["id"])
	require.Equal(t, true, updated["enabled"])
	require.Equal(t, "core.noop", updated["action_ref"])
	require.Equal(t, "", updated["label"])
	require.Nil(t, updated["conditions"], "what the body leaves out is unset: no conditions, as in a file without them")

	s.refuseAll([]refused{
		{"missing", http.MethodPut, "/rules/ops.gone", `{"trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "core.noop"}`, 404, `no rule "ops.gone"`},
		{"bad body", http.MethodPut, "/rules/ops.on_push", `{"trigger_ref": "core.webhook", "action_ref": "core.noop"}`, 400, "trigger_params.url: required"},
		{"other ref", http.MethodPut, "/rules/ops.on_push", `{"ref": "ops.x", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "core.noop"}`, 400, "ref:"},
		{"other pack", http.MethodPut, "/rules/ops.on_push", `{"pack_ref": "demo", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "core.noop"}`, 400, "pack_ref:"},
		{"enable missing", http.MethodPost, "/rules/ops.gone/enable", "", 404, `no rule "ops.gone"`},
		{"disable missing", http.MethodPost, "/rules/ops.gone/disable", "", 404, `no rule "ops.gone"`},
		{"delete missing", http.MethodDelete, "/rules/ops.gone", "", 404, `no rule "ops.gone"`},
	})

	status, body := s.do(http.MethodDelete, "/rules/ops.on_push", "")
	require.Equal(t, http.StatusNoContent, status)
	require.Nil(t, body)
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/rules/ops.on_push", "")
	rules, err := s.s.RuleListByTrigger(context.Background(), "core.webhook")
	require.NoError(t, err)
	require.Empty(t, rules)
	_, err = s.s.RuleGetByRef(context.Background(), "ops.tick")
	require.NoError(t, err)
	_, err = s.s.RuleGetByRef(context.Background(), "ops.on_push")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// Registering a pack from its directory makes it match its files: what the API added to it
// goes, and what the API changed in it is put back.
func TestRegisterAgainUndoesAPIChanges(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	dir := withOps(t, s)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "actions", "run.yaml"), []byte("name: run\nrunner_type: shell\nentry_point: run.sh\n"), 0o644))
	s.data(http.StatusOK, http.MethodPost, "/packs/register", `{"path": "`+dir+`"}`)

	s.data(http.StatusCreated, http.MethodPost, "/actions", `{"ref": "ops.extra", "runner_type": "noop"}`)
	s.data(http.StatusCreated, http.MethodPost, "/rules", `{"ref": "ops.on_hook", "trigger_ref": "core.webhook", "trigger_params": {"url": "x"}, "action_ref": "ops.run"}`)
	s.data(http.StatusOK, http.MethodPut, "/actions/ops.run", `{"runner_type": "noop", "description": "changed"}`)

	s.data(http.StatusOK, http.MethodPost, "/packs/register", `{"path": "`+dir+`"}`)
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/actions/ops.extra", "")
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/rules/ops.on_hook", "")
	run := s.data(http.StatusOK, http.MethodGet, "/actions/ops.run", "")
	require.Equal(t, "shell", run["runner_type"])
	require.Equal(t, "", run["description"])
}
