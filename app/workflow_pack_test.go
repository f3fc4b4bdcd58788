package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Workflow actions reach the database with their checked definitions, by pack and one by one,
// and a broken definition is refused at the door naming its file and field.
func TestWorkflowActionsRegister(t *testing.T) {
	t.Parallel()
	p := startBare(t)

	_, stderr, code := p.cli(t, "pack", "register", filepath.Join(packsDir(t), "examples"))
	require.Equal(t, 0, code, stderr)
	status, body := p.get(t, "/api/v1/actions/examples.nested")
	require.Equal(t, http.StatusOK, status, body)
	action := data(t, body)
	require.Equal(t, "workflow", action["runner_type"])
	wf, ok := action["workflow"].(map[string]any)
	require.True(t, ok, "the action carries its definition: %v", action)
	require.Equal(t, []any{"inner"}, wf["start"])
	require.Equal(t, "examples.sequence", wf["tasks"].([]any)[0].(map[string]any)["action"])

	// A pack with a broken definition: refused whole, naming the file and the field.
	dir := t.TempDir()
	writePackFile(t, dir, "pack.yaml", "ref: flows\n")
	writePackFile(t, dir, "actions/deploy.yaml", "name: deploy\nrunner_type: workflow\nentry_point: workflows/deploy.yaml\n")
	writePackFile(t, dir, "actions/workflows/deploy.yaml", "tasks:\n  check: {action: core.noop, next: [{do: notfy}]}\n")
	_, stderr, code = p.cli(t, "pack", "register", dir)
	require.Equal(t, 1, code, stderr)
	require.Equal(t, "attune: load pack "+dir+
		`: actions/workflows/deploy.yaml: tasks.check.next[0].do: no task "notfy"; want a task of this workflow, fail or noop`+"\n",
		requireOneErrorLine(t, stderr))
	status, _ = p.get(t, "/api/v1/packs/flows")
	require.Equal(t, http.StatusNotFound, status, "nothing written")

	// Fixed, the pack registers; an action sent alone is checked the same way.
	writePackFile(t, dir, "actions/workflows/deploy.yaml", "tasks:\n  check: {action: core.noop}\n")
	_, stderr, code = p.cli(t, "pack", "register", dir)
	require.Equal(t, 0, code, stderr)
	lone := map[string]any{"pack_ref": "flows", "name": "lone", "runner_type": "workflow", "entry_point": "workflows/lone.yaml"}

	writePackFile(t, dir, "actions/workflows/lone.yaml", "tasks:\n  a: {action: core.echo, input: {message: '{{ item }}'}}\n")
	status, body = p.post(t, "/api/v1/actions", lone)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body["error"].(map[string]any)["message"], `actions/workflows/lone.yaml: tasks.a.input.message: compile template "item": unknown name item`)

	writePackFile(t, dir, "actions/workflows/lone.yaml", "tasks:\n  a: {action: other.thing}\n")
	status, body = p.post(t, "/api/v1/actions", lone)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body["error"].(map[string]any)["message"], `actions/workflows/lone.yaml: tasks.a.action: no action "other.thing"`)

	writePackFile(t, dir, "actions/workflows/lone.yaml", "tasks:\n  a: {action: flows.deploy}\n")
	status, body = p.post(t, "/api/v1/actions", lone)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = p.get(t, "/api/v1/actions/flows.lone")
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, []any{"a"}, data(t, body)["workflow"].(map[string]any)["start"])
}

// writeFile writes content to name under dir, making the directories it needs.
func writePackFile(t *testing.T, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}
