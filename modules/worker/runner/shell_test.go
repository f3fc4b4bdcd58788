package runner_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/attune-go/attune/modules/worker/runner"
	"github.com/stretchr/testify/require"
)

// waitLimit bounds every wait in these tests: far above what a loaded two-core machine needs,
// so that reaching it means a hang, not slowness.
const waitLimit = 15 * time.Second

func shell(cfg runner.Config) runner.Runner { return runner.New(cfg)[runner.TypeShell] }

// writeScript writes an executable script into a fresh temporary directory.
func writeScript(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "action.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755))
	return path
}

func scriptJob(script string) runner.Job {
	return runner.Job{
		ExecutionID:  42,
		ActionRef:    "examples.echo",
		RunnerType:   runner.TypeShell,
		Script:       script,
		WorkDir:      filepath.Dir(script),
		Timeout:      waitLimit,
		OutputFormat: runner.FormatText,
	}
}

func commandJob(t *testing.T, command string) runner.Job {
	return runner.Job{
		ExecutionID:  7,
		ActionRef:    "core.local",
		RunnerType:   runner.TypeShell,
		Command:      command,
		WorkDir:      t.TempDir(),
		Timeout:      waitLimit,
		OutputFormat: runner.FormatText,
	}
}

func TestShellScriptGetsParametersInEnvironmentAndOnStdin(t *testing.T) {
	t.Parallel()
	script := writeScript(t, `
echo "message=$ATTUNE_PARAM_MESSAGE"
echo "user_name=$ATTUNE_PARAM_USER_NAME"
echo "nested=${ATTUNE_PARAM_NESTED-unset}"
echo "pwd=$(pwd)"
cat
`)
	job := scriptJob(script)
	job.Parameters = map[string]any{
		"message":   "hi there",
		"count":     float64(3),
		"user-name": "ada",
		"nested":    map[string]any{"a": []any{1.0, "b"}},
	}
	res := shell(runner.Config{}).Run(t.Context(), job)

	require.True(t, res.Succeeded, res.Error)
	require.Zero(t, res.ExitCode)
	require.Empty(t, res.Error)
	lines := strings.SplitN(res.Stdout, "\n", 5)
	require.Equal(t, "message=hi there", lines[0])
	require.Equal(t, "user_name=ada", lines[1])
	require.Equal(t, "nested=unset", lines[2], "objects stay off the environment")
	dir, err := filepath.EvalSymlinks(job.WorkDir)
	require.NoError(t, err)
	require.Equal(t, "pwd="+dir, lines[3])
	var stdin map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[4]), &stdin))
	require.Equal(t, job.Parameters, stdin)
	require.GreaterOrEqual(t, res.DurationMS, int64(0))
}

func TestShellExecutionEnvironment(t *testing.T) {
	t.Parallel()
	job := commandJob(t, `echo "$ATTUNE_EXECUTION_ID $ATTUNE_ACTION"; test -n "$PATH" && echo path`)
	res := shell(runner.Config{}).Run(t.Context(), job)
	require.True(t, res.Succeeded, res.Error)
	require.Equal(t, "7 core.local\npath\n", res.Stdout)
}

func TestShellScalarParameterFormatting(t *testing.T) {
	t.Parallel()
	job := commandJob(t, `printf '%s|' "$ATTUNE_PARAM_COUNT" "$ATTUNE_PARAM_RATIO" "$ATTUNE_PARAM_BIG" "$ATTUNE_PARAM_ON" "$ATTUNE_PARAM_OFF" "${ATTUNE_PARAM_NOTHING-unset}" "$ATTUNE_PARAM_N" "${ATTUNE_PARAM_LIST-unset}"`)
	job.Parameters = map[string]any{
		"count":   float64(3),
		"ratio":   2.5,
		"big":     float64(1e15),
		"on":      true,
		"off":     false,
		"nothing": nil,
		"n":       int64(-12),
		"list":    []any{"a"},
	}
	res := shell(runner.Config{}).Run(t.Context(), job)
	require.True(t, res.Succeeded, res.Error)
	require.Equal(t, "3|2.5|1000000000000000|true|false||-12|unset|", res.Stdout)
}

func TestShellInlineCommandCapturesStdoutAndStderrSeparately(t *testing.T) {
	t.Parallel()
	res := shell(runner.Config{}).Run(t.Context(), commandJob(t, "echo out; echo err >&2; echo more"))
	require.True(t, res.Succeeded, res.Error)
	require.Equal(t, "out\nmore\n", res.Stdout)
	require.Equal(t, "err\n", res.Stderr)
}

func TestShellNoScriptOrCommand(t *testing.T) {
	t.Parallel()
	res := shell(runner.Config{}).Run(t.Context(), commandJob(t, ""))
	require.False(t, res.Succeeded)
	require.Equal(t, "no script or command", res.Error)
}

func TestShellScriptNotExecutable(t *testing.T) {
	t.Parallel()
	script := writeScript(t, "echo never\n")
	require.NoError(t, os.Chmod(script, 0o644))
	res := shell(runner.Config{}).Run(t.Context(), scriptJob(script))
	require.False(t, res.Succeeded)
	require.Equal(t, "script "+script+" is not executable", res.Error)
	require.Empty(t, res.Stdout)

	info, err := os.Stat(script)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), info.Mode().Perm(), "the runner must not chmod")
}

func TestShellScriptMissing(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "missing.sh")
	res := shell(runner.Config{}).Run(t.Context(), scriptJob(script))
	require.False(t, res.Succeeded)
	require.Equal(t, "script "+script+" does not exist", res.Error)
	require.True(t, res.NotStarted, "the worker records the reason")
}

// Parameters over the environment's bounds reach the script whole through files the
// environment names, and on stdin; the files are the user's alone, in the worker's directory
// (made when missing), and go with the run.
func TestShellLargeParameters(t *testing.T) {
	t.Parallel()
	payload := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	params := map[string]any{"payload": payload, "small": "kept"}
	// Twenty values of 100 KiB: 2 MiB together, more than Linux lets argv and envp hold.
	for i := range 20 {
		params[fmt.Sprintf("part%02d", i)] = strings.Repeat(string(rune('a'+i)), 100<<10)
	}
	job := scriptJob(writeScript(t, `
f="$ATTUNE_PARAM_PAYLOAD_FILE"
echo "env=${ATTUNE_PARAM_PAYLOAD-unset}"
echo "small=$ATTUNE_PARAM_SMALL"
echo "file=$(sha256sum < "$f" | cut -d' ' -f1)"
echo "mode=$(stat -c %a "$f") dir=$(stat -c %a "$(dirname "$f")")"
echo "part19=$(sha256sum < "$ATTUNE_PARAM_PART19_FILE" | cut -d' ' -f1)"
echo "stdin=$(sha256sum | cut -d' ' -f1)"
echo "path=$f"
`))
	job.Parameters = params
	filesDir := filepath.Join(t.TempDir(), "attune-worker-w")
	res := shell(runner.Config{FilesDir: filesDir}).Run(t.Context(), job)
	require.True(t, res.Succeeded, "%s\n%s", res.Error, res.Stderr)

	hash := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	stdin, err := json.Marshal(params)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	require.Len(t, lines, 7, res.Stdout)
	require.Equal(t, "env=unset", lines[0], "too large for the environment")
	require.Equal(t, "small=kept", lines[1])
	require.Equal(t, "file="+hash([]byte(payload)), lines[2])
	require.Equal(t, "mode=600 dir=700", lines[3])
	require.Equal(t, "part19="+hash([]byte(params["part19"].(string))), lines[4])
	require.Equal(t, "stdin="+hash(stdin), lines[5])
	path := strings.TrimPrefix(lines[6], "path=")
	require.Equal(t, filesDir, filepath.Dir(filepath.Dir(path)), "a directory of the run's own in the worker's")
	_, err = os.Stat(filepath.Dir(path))
	require.ErrorIs(t, err, os.ErrNotExist, "the files go with the run")
	info, err := os.Stat(filesDir)
	require.NoError(t, err, "the worker's directory stays: its companion removes it")
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
}

func TestShellNonZeroExit(t *testing.T) {
	t.Parallel()
	res := shell(runner.Config{}).Run(t.Context(), scriptJob(writeScript(t, "echo partial\nexit 3\n")))
	require.False(t, res.Succeeded)
	require.Equal(t, 3, res.ExitCode)
	require.Equal(t, "exit status 3", res.Error)
	require.False(t, res.NotStarted)
	require.Equal(t, "partial\n", res.Stdout)
	require.False(t, res.TimedOut)
	require.False(t, res.Cancelled)
}

func TestShellKilledBySignal(t *testing.T) {
	t.Parallel()
	res := shell(runner.Config{}).Run(t.Context(), commandJob(t, "kill -KILL $$"))
	require.False(t, res.Succeeded)
	require.Equal(t, -1, res.ExitCode)
	require.Contains(t, res.Error, "killed by signal 9")
	require.False(t, res.TimedOut)
	require.False(t, res.Cancelled)
}

func TestShellOutputFormatJSON(t *testing.T) {
	t.Parallel()
	job := commandJob(t, `echo '  {"id": 12345678901234567890, "ok": true, "tags": ["a"]}  '`)
	job.OutputFormat = runner.FormatJSON
	res := shell(runner.Config{}).Run(t.Context(), job)
	require.True(t, res.Succeeded, res.Error)
	require.Equal(t, map[string]any{
		"id":   json.Number("12345678901234567890"),
		"ok":   true,
		"tags": []any{"a"},
	}, res.Data)

	encoded, err := json.Marshal(res)
	require.NoError(t, err)
	require.Contains(t, string(encoded), `"data":{"id":12345678901234567890,`, "large integers survive unrounded")
}

func TestShellOutputFormatJSONInvalid(t *testing.T) {
	t.Parallel()
	for name, command := range map[string]string{
		"text":     "echo not json",
		"empty":    "true",
		"trailing": `echo '{"a": 1} {"b": 2}'`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			job := commandJob(t, command)
			job.OutputFormat = runner.FormatJSON
			res := shell(runner.Config{}).Run(t.Context(), job)
			require.False(t, res.Succeeded)
			require.Zero(t, res.ExitCode)
			require.True(t, strings.HasPrefix(res.Error, "stdout is not valid JSON: "), res.Error)
			require.Nil(t, res.Data)
		})
	}
	t.Run("kept", func(t *testing.T) {
		t.Parallel()
		job := commandJob(t, "echo not json")
		job.OutputFormat = runner.FormatJSON
		res := shell(runner.Config{}).Run(t.Context(), job)
		require.Equal(t, "not json\n", res.Stdout)
	})
}

func TestShellOutputFormatJSONKeepsExitError(t *testing.T) {
	t.Parallel()
	job := commandJob(t, `echo '{"reason": "disk full"}'; exit 2`)
	job.OutputFormat = runner.FormatJSON
	res := shell(runner.Config{}).Run(t.Context(), job)
	require.False(t, res.Succeeded)
	require.Equal(t, "exit status 2", res.Error)
	require.Equal(t, map[string]any{"reason": "disk full"}, res.Data)
}

// A long output keeps its start and its end, where errors are, with a marker line of how much
// was cut between them, within the limit.
func TestShellStdoutTruncated(t *testing.T) {
	t.Parallel()
	res := shell(runner.Config{}).Run(t.Context(), commandJob(t, "head -c 3000000 /dev/zero; echo the error at the end; echo done >&2"))
	require.True(t, res.Succeeded, res.Error)
	require.True(t, res.StdoutTruncated)
	require.LessOrEqual(t, len(res.Stdout), 1<<20)
	require.Greater(t, len(res.Stdout), 1<<20-100)
	require.True(t, strings.HasSuffix(res.Stdout, "\x00the error at the end\n"))
	require.True(t, strings.HasPrefix(res.Stdout, strings.Repeat("\x00", 1<<19)))
	printed, kept := 3000000+len("the error at the end\n"), len(res.Stdout)-res.StdoutCut.Marker
	require.Equal(t, runner.CutMarker(int64(printed-kept)), res.Stdout[res.StdoutCut.Head:][:res.StdoutCut.Marker])
	require.False(t, res.StderrTruncated)
	require.Equal(t, "done\n", res.Stderr, "the process ran past the limit to its end")
}

func TestShellStderrTruncated(t *testing.T) {
	t.Parallel()
	res := shell(runner.Config{OutputLimit: 1000}).Run(t.Context(), commandJob(t, "seq 1 100000 >&2; echo done"))
	require.True(t, res.Succeeded, res.Error)
	require.True(t, res.StderrTruncated)
	require.LessOrEqual(t, len(res.Stderr), 1000)
	require.True(t, strings.HasPrefix(res.Stderr, "1\n2\n3\n"), res.Stderr)
	require.True(t, strings.HasSuffix(res.Stderr, "\n99999\n100000\n"), res.Stderr)
	require.Equal(t, 500, res.StderrCut.Head)
	require.Equal(t, "\n[... attune cut", res.Stderr[500:500+len("\n[... attune cut")])
	require.False(t, res.StdoutTruncated)
	require.Equal(t, "done\n", res.Stdout)
}

func TestShellOutputFormatJSONTruncated(t *testing.T) {
	t.Parallel()
	job := commandJob(t, `printf '{"pad": "'; head -c 5000 /dev/zero | tr '\0' x; printf '"}'`)
	job.OutputFormat = runner.FormatJSON
	res := shell(runner.Config{OutputLimit: 100}).Run(t.Context(), job)
	require.False(t, res.Succeeded)
	require.True(t, res.StdoutTruncated)
	require.Contains(t, res.Error, "cut, so it cannot be parsed as JSON")
	require.Nil(t, res.Data)
}

func TestShellRejectsNonPositiveTimeout(t *testing.T) {
	t.Parallel()
	job := commandJob(t, "true")
	job.Timeout = 0
	res := shell(runner.Config{}).Run(t.Context(), job)
	require.False(t, res.Succeeded)
	require.Contains(t, res.Error, "timeout must be positive")
}
