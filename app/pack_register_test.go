package app_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// editPack writes files (path: text) in the pack at dir, and removes those whose text is
// empty.
func editPack(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if text == "" {
			require.NoError(t, os.Remove(path))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	}
}

// "pack register" says what changed, kind by kind, across adding, updating and removing
// components, and nothing when the same pack is registered again; -o json says the same.
func TestCLIPackRegisterSaysWhatChanged(t *testing.T) {
	t.Parallel()
	p := startBare(t)
	_, dir := writePack(t, "kit", map[string]string{
		"actions/run.yaml":    "name: run\nrunner_type: noop\n",
		"actions/check.yaml":  "name: check\nrunner_type: noop\n",
		"triggers/ping.yaml":  "name: ping\n",
		"rules/on_ping.yaml":  "name: on_ping\ntrigger_ref: kit.ping\naction_ref: kit.run\n",
		"policies/once.yaml":  "name: once\naction_ref: kit.run\nconcurrency:\n  limit: 1\n",
		"rules/on_check.yaml": "name: on_check\ntrigger_ref: kit.ping\naction_ref: kit.check\n",
	})

	stdout, stderr, code := p.cli(t, "pack", "register", dir)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "registered pack kit ("+dir+"): new\n"+
		"  actions: added kit.check, kit.run\n"+
		"  triggers: added kit.ping\n"+
		"  rules: added kit.on_check, kit.on_ping\n"+
		"  policies: added kit.once\n", stdout)

	stdout, stderr, code = p.cli(t, "pack", "register", dir)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "registered pack kit ("+dir+"): nothing changed (2 actions, 1 trigger, 2 rules, 1 policy)\n", stdout)

	// An action changed, one added, a rule and a policy gone, and a rule disabled by hand
	// meanwhile, which its file enables.
	_, stderr, code = p.cli(t, "rule", "disable", "kit.on_ping")
	require.Equal(t, 0, code, stderr)
	editPack(t, dir, map[string]string{
		"actions/run.yaml":    "name: run\nrunner_type: noop\ndescription: runs\n",
		"actions/more.yaml":   "name: more\nrunner_type: noop\n",
		"rules/on_check.yaml": "",
		"policies/once.yaml":  "",
	})
	stdout, stderr, code = p.cli(t, "pack", "register", dir)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "registered pack kit ("+dir+"): updated\n"+
		"  actions: added kit.more; updated kit.run; 1 unchanged\n"+
		"  triggers: 1 unchanged\n"+
		"  rules: updated kit.on_ping; removed kit.on_check\n"+
		"  policies: removed kit.once\n"+
		"  rules enabled again, as their files say: kit.on_ping\n", stdout)

	// The same, structured; registering again now changes nothing.
	stdout, stderr, code = p.cli(t, "pack", "register", dir, "-o", "json")
	require.Equal(t, 0, code, stderr)
	var out struct {
		Ref     string         `json:"ref"`
		Path    string         `json:"path"`
		Changes map[string]any `json:"changes"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)
	require.Equal(t, "kit", out.Ref)
	require.Equal(t, dir, out.Path)
	unchanged := func(n float64) map[string]any {
		return map[string]any{"added": []any{}, "updated": []any{}, "removed": []any{}, "unchanged": n}
	}
	require.Equal(t, map[string]any{
		"pack": "unchanged", "actions": unchanged(3), "triggers": unchanged(1), "sensors": unchanged(0),
		"rules": unchanged(1), "policies": unchanged(0), "rules_reenabled": []any{}, "rules_disabled": []any{},
	}, out.Changes)
}
