package app_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// typedSecret is the default of typed.call's secret parameter: no output may show it.
const typedSecret = "typed-secret-7c1d"

// registerTypedPack registers on p the pack typed, whose action typed.call (runner noop)
// takes a parameter of each type.
func registerTypedPack(t *testing.T, p *process) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "actions"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pack.yaml"), []byte("ref: typed\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "actions", "call.yaml"), []byte(`ref: typed.call
description: Takes a parameter of each type.
runner_type: noop
parameters:
  api_key: {type: string, description: The key to call with.}
  count: {type: integer, required: true, description: How many.}
  ratio: {type: number, default: 0.5}
  verbose: {type: boolean}
  tags: {type: array}
  opts: {type: object}
  mode: {type: string, enum: [fast, slow], default: fast}
  token: {type: string, secret: true, default: `+typedSecret+`}
`), 0o644))
	_, stderr, code := p.cli(t, "pack", "register", dir)
	require.Equal(t, 0, code, stderr)
}

// typedExecutions counts the executions of typed.call.
func typedExecutions(t *testing.T, p *process) int {
	t.Helper()
	stdout, stderr, code := p.cli(t, "execution", "list", "--action", "typed.call", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var list []any
	require.NoError(t, json.Unmarshal([]byte(stdout), &list), stdout)
	return len(list)
}

// --param values are read by the action's schema: text stays text for a string, and a value
// that does not fit its type is refused naming the parameter, before anything is created.
func TestCLIParamsBySchema(t *testing.T) {
	t.Parallel()
	p := startBare(t)
	registerTypedPack(t, p)

	exec := cliJSON(t, p, 0, "action", "execute", "typed.call", "--param", "api_key=123", "--param", "count=3",
		"--param", "ratio=2", "--param", "verbose=true", "--param", `tags=["a", 1]`, "--param", `opts={"k": "v"}`,
		"--param", "mode=slow", "--wait")
	require.Equal(t, map[string]any{"api_key": "123", "count": 3.0, "ratio": 2.0, "verbose": true, "tags": []any{"a", 1.0},
		"opts": map[string]any{"k": "v"}, "mode": "slow", "token": "********"}, exec["parameters"])
	execID := strconv.FormatInt(id(t, exec, "id"), 10)

	before := typedExecutions(t, p)
	for _, tc := range []struct{ param, want string }{
		{"count=abc", "attune: invalid --param count: want an integer, such as 3\n"},
		{"verbose=yes", "attune: invalid --param verbose: want true or false\n"},
		{"tags=a", "attune: invalid --param tags: want a JSON array, such as [\"a\", \"b\"]\n"},
	} {
		stdout, stderr, code := p.cli(t, "action", "execute", "typed.call", "--param", "count=1", "--param", tc.param)
		require.Equal(t, 2, code, stderr)
		require.Empty(t, stdout)
		require.Equal(t, tc.want, requireOneErrorLine(t, stderr))
	}
	_, stderr, code := p.cli(t, "execution", "rerun", execID, "--param", "count=abc")
	require.Equal(t, 2, code, stderr)
	require.Equal(t, "attune: invalid --param count: want an integer, such as 3\n", requireOneErrorLine(t, stderr))
	require.Equal(t, before, typedExecutions(t, p), "a refused --param created an execution")

	// A name the schema lacks goes to the API as before, which refuses it with those it wants.
	_, stderr, code = p.cli(t, "action", "execute", "typed.call", "--param", "count=1", "--param", "colour=red")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, requireOneErrorLine(t, stderr), `parameter "colour": unknown; want api_key, count,`)

	// A rerun reads its --param by the same schema, and keeps the rest of the original's.
	rerun := cliJSON(t, p, 0, "execution", "rerun", execID, "--param", "api_key=456", "--param", "ratio=null")
	params, ok := rerun["parameters"].(map[string]any)
	require.True(t, ok, "no parameters in %v", rerun)
	require.Equal(t, "456", params["api_key"])
	require.Equal(t, 3.0, params["count"])
	require.Equal(t, 0.5, params["ratio"], "null leaves a parameter to its default")
}

// action execute REF --help lists REF's parameters when the API answers, and is the plain help
// when it does not; action show shows them as a table, and execution show an execution's
// output as lines.
func TestCLIShowsParametersAndOutput(t *testing.T) {
	t.Parallel()
	p := startBare(t)
	registerTypedPack(t, p)
	rows := []string{
		`(?m)^%sapi_key\s+string\s+no\s+The key to call with\.$`,
		`(?m)^%scount\s+integer\s+yes\s+How many\.$`,
		`(?m)^%smode\s+string\s+no\s+fast\s+\(one of fast, slow\)$`,
		`(?m)^%sratio\s+number\s+no\s+0\.5\s*$`,
		`(?m)^%stoken\s+string, secret\s+no\s+\*{8}\s*$`,
		`(?m)^%sPARAMETER\s+TYPE\s+REQUIRED\s+DEFAULT\s+DESCRIPTION$`,
	}

	stdout, stderr, code := p.cli(t, "action", "execute", "typed.call", "--help")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	require.Contains(t, stdout, "Usage:\n  attune action execute REF [flags]")
	require.Contains(t, stdout, "\nParameters of typed.call:\n")
	for _, row := range rows {
		require.Regexp(t, strings.ReplaceAll(row, "%s", "  "), stdout)
	}
	require.NotContains(t, stdout, typedSecret)

	stdout, stderr, code = p.cli(t, "action", "execute", "typed.nope", "--help")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "Usage:")
	require.Contains(t, stdout, "\nParameters of typed.nope: not known, the API says: no action \"typed.nope\" (404 Not Found)\n")

	stdout, stderr, code = runAttune(t, "action", "execute", "typed.call", "--help", "--api-url", "http://127.0.0.1:1")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	require.Contains(t, stdout, "Usage:")
	require.NotContains(t, stdout, "Parameters of")

	stdout, stderr, code = p.cli(t, "action", "show", "typed.call")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^ref\s+typed\.call$`, stdout)
	require.NotRegexp(t, `(?m)^parameters\s`, stdout, "the schema is a table of its own, not a field")
	for _, row := range rows {
		require.Regexp(t, strings.ReplaceAll(row, "%s", ""), stdout)
	}
	require.NotContains(t, stdout, typedSecret)
	action := cliJSON(t, p, 0, "action", "show", "typed.call")
	require.Equal(t, map[string]any{"type": "integer", "required": true, "description": "How many."},
		action["parameters"].(map[string]any)["count"], "-o json is the API's answer")

	exec := cliJSON(t, p, 0, "action", "execute", "core.local", "--param", `cmd=printf 'one\ntwo\n'; echo oops >&2`, "--wait")
	execID := strconv.FormatInt(id(t, exec, "id"), 10)
	stdout, stderr, code = p.cli(t, "execution", "show", execID)
	require.Equal(t, 0, code, stderr)
	require.True(t, strings.HasSuffix(stdout, "\n\nSTDOUT\none\ntwo\n\nSTDERR\noops\n"), stdout)
	require.Regexp(t, `(?m)^result\s+\{.*"exit_code":0.*\}$`, stdout)
	require.NotRegexp(t, `(?m)^result\s.*(stdout|stderr)`, stdout, "the output is not repeated in the result, escaped")
	exec = cliJSON(t, p, 0, "execution", "show", execID)
	require.Equal(t, "one\ntwo\n", exec["result"].(map[string]any)["stdout"], "-o json is the API's answer")
}

// complete runs attune's hidden completion command against p (nil for no API) for args, the
// last being the word to complete, and returns the candidates and the directive.
func complete(t *testing.T, p *process, args ...string) (candidates []string, directive string) {
	t.Helper()
	env := []string{"ATTUNE_API_URL=http://127.0.0.1:1"}
	if p != nil {
		env = []string{"ATTUNE_API_URL=http://" + p.addr, "ATTUNE_TOKEN=" + p.authToken(t)}
	}
	stdout, stderr, code := runAttuneEnv(t, env, append([]string{"__complete"}, args...)...)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

// Completion offers action refs and execution ids from the API, and the values of --roles
// and -o; without an API it offers nothing, and says nothing.
func TestCLICompletion(t *testing.T) {
	t.Parallel()
	p := startBare(t)
	registerTypedPack(t, p)
	exec := cliJSON(t, p, 0, "action", "execute", "typed.call", "--param", "count=1", "--wait")
	execID := strconv.FormatInt(id(t, exec, "id"), 10)

	const noFiles = ":4"
	got, directive := complete(t, p, "action", "execute", "")
	require.Equal(t, noFiles, directive)
	require.Contains(t, got, "typed.call\tTakes a parameter of each type.")
	require.Contains(t, got, "core.noop\tDoes nothing and succeeds; for trying out rules and policies.")
	got, _ = complete(t, p, "action", "show", "typ")
	require.Equal(t, []string{"typed.call\tTakes a parameter of each type."}, got)
	got, _ = complete(t, p, "action", "show", "typed.call", "")
	require.Empty(t, got, "one REF only")
	got, _ = complete(t, p, "execution", "list", "--action", "typed.")
	require.Equal(t, []string{"typed.call\tTakes a parameter of each type."}, got)

	for _, verb := range []string{"show", "tail", "cancel", "rerun", "result"} {
		got, directive = complete(t, p, "execution", verb, "")
		require.Equal(t, noFiles, directive, verb)
		require.Contains(t, got, execID+"\ttyped.call completed", verb)
	}

	got, directive = complete(t, nil, "serve", "--roles", "")
	require.ElementsMatch(t, []string{"all", "api", "sensor", "executor", "worker"}, got)
	require.Equal(t, ":6", directive, "no space after a role, nor files")
	got, _ = complete(t, nil, "serve", "--roles", "api,s")
	require.Equal(t, []string{"api,sensor"}, got)
	got, _ = complete(t, nil, "serve", "--roles", "api,sensor,")
	require.ElementsMatch(t, []string{"api,sensor,executor", "api,sensor,worker"}, got)

	for _, args := range [][]string{{"execution", "list", "-o", ""}, {"pack", "show", "--output", ""}, {"rule", "create", "-o", ""}} {
		got, directive = complete(t, nil, args...)
		require.Equal(t, []string{"table", "json", "yaml"}, got, args)
		require.Equal(t, noFiles, directive, args)
	}

	got, directive = complete(t, nil, "action", "execute", "")
	require.Empty(t, got)
	require.Equal(t, noFiles, directive)

	stdout, stderr, code := runAttune(t, "completion", "bash")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "__attune_get_completion_results")
}
