package pack

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCore(t *testing.T) {
	t.Parallel()
	p, err := Core()
	require.NoError(t, err)
	require.Equal(t, "core", p.Ref)
	require.Equal(t, "Core", p.Label)
	require.Equal(t, "1.0.0", p.Version)
	require.NotEmpty(t, p.Description)
	require.Empty(t, p.Dir)

	actions := map[string]Action{}
	for _, a := range p.Actions {
		actions[a.Ref] = a
		require.NotEmpty(t, a.Description, a.Ref)
	}
	require.Len(t, actions, 6)

	ask := actions["core.ask"]
	require.Equal(t, RunnerInquiry, ask.RunnerType)
	got, err := ask.Parameters.Apply(map[string]any{"prompt": "deploy?"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"prompt": "deploy?", "schema": map[string]any{"type": "object"}, "timeout_seconds": int64(86400)}, got)

	echo := actions["core.echo"]
	require.Equal(t, RunnerShell, echo.RunnerType)
	require.Equal(t, "echo.sh", echo.EntryPoint)
	require.Equal(t, OutputText, echo.OutputFormat)
	require.Equal(t, Param{Type: TypeString, Description: "What to print.", Required: true}, echo.Parameters["message"])

	require.Equal(t, RunnerNoop, actions["core.noop"].RunnerType)
	require.Empty(t, actions["core.noop"].Parameters)

	sleep := actions["core.sleep"]
	require.Equal(t, "sleep.sh", sleep.EntryPoint)
	require.Equal(t, TypeNumber, sleep.Parameters["seconds"].Type)
	require.True(t, sleep.Parameters["seconds"].Required)

	local := actions["core.local"]
	require.Equal(t, RunnerShell, local.RunnerType)
	require.Empty(t, local.EntryPoint, "the runner runs cmd itself")
	require.Equal(t, TypeString, local.Parameters[CommandParam].Type)
	require.True(t, local.Parameters[CommandParam].Required)

	req := actions["core.http_request"]
	require.Equal(t, RunnerHTTP, req.RunnerType)
	require.Equal(t, OutputJSON, req.OutputFormat)
	require.Contains(t, req.Description, "{status_code, headers, body, json, elapsed_ms}")
	got, err = req.Parameters.Apply(map[string]any{"url": "http://127.0.0.1/"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"url": "http://127.0.0.1/", "method": "GET", "timeout": 30.0}, got)
	require.Equal(t, []any{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}, req.Parameters["method"].Enum)
	for name, typ := range map[string]string{"headers": TypeObject, "body": TypeString, "json_body": TypeObject} {
		require.Equal(t, typ, req.Parameters[name].Type, name)
	}

	triggers := map[string]Trigger{}
	for _, tr := range p.Triggers {
		triggers[tr.Ref] = tr
	}
	require.Len(t, triggers, 4)

	interval := triggers["core.intervaltimer"]
	got, err = interval.Parameters.Apply(map[string]any{"interval": 5.0})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"interval": int64(5), "unit": "seconds"}, got)
	_, err = interval.Parameters.Apply(map[string]any{"interval": 5, "unit": "weeks"})
	require.ErrorContains(t, err, `parameter "unit": "weeks" is not one of "seconds", "minutes", "hours", "days"`)
	require.Equal(t, []string{"execution_count", "fired_at", "interval_seconds", "type"}, sortedKeys(interval.Output))
	require.Equal(t, TypeInteger, interval.Output["execution_count"].Type)

	cron := triggers["core.crontimer"]
	got, err = cron.Parameters.Apply(map[string]any{"expression": "*/5 * * * *"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"expression": "*/5 * * * *", "timezone": "UTC"}, got)
	require.Equal(t, []string{"execution_count", "fired_at", "type"}, sortedKeys(cron.Output))

	datetime := triggers["core.datetimetimer"]
	require.True(t, datetime.Parameters["fire_at"].Required)
	require.Equal(t, []string{"fired_at", "type"}, sortedKeys(datetime.Output))

	hook := triggers["core.webhook"]
	require.True(t, hook.Parameters["url"].Required)
	require.Equal(t, TypeAny, hook.Output["body"].Type)
	require.Equal(t, TypeObject, hook.Output["headers"].Type)

	require.NoError(t, p.CheckReferences(nil))
}

func TestCoreFSMatchesLoadFS(t *testing.T) {
	t.Parallel()
	core, err := Core()
	require.NoError(t, err)
	again, err := LoadFS(CoreFS(), ".")
	require.NoError(t, err)
	require.Equal(t, core, again)
}

// The worker writes the core scripts to disk and runs them with the parameters in the
// environment; this does the same.
func TestCoreScriptsRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"echo.sh", "sleep.sh"} {
		data, err := fs.ReadFile(CoreFS(), "actions/"+name)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(string(data), "#!/bin/sh\n"), name)
		// Embedding drops modes, so the scripts are made executable as a worker would.
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o755))
	}

	cmd := exec.Command(filepath.Join(dir, "echo.sh"))
	cmd.Env = append(os.Environ(), "ATTUNE_PARAM_MESSAGE=-n hello %s")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Equal(t, "-n hello %s\n", string(out), "printed as is, options and format verbs included")

	cmd = exec.Command(filepath.Join(dir, "sleep.sh"))
	cmd.Env = append(os.Environ(), "ATTUNE_PARAM_SECONDS=0")
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Empty(t, out)
}
