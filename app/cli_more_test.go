package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// cliJSON runs attune against p's API as the first admin with -o json, requires exit code want and
// decodes stdout.
func cliJSON(t *testing.T, p *process, want int, args ...string) map[string]any {
	t.Helper()
	stdout, stderr, code := p.cli(t, append(args, "-o", "json")...)
	require.Equal(t, want, code, "stdout: %s\nstderr: %s", stdout, stderr)
	require.Empty(t, stderr)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)
	return out
}

// cliWaitStatus waits until execution id is in status, through "execution show".
func cliWaitStatus(t *testing.T, p *process, id int64, status string) map[string]any {
	t.Helper()
	var exec map[string]any
	require.Eventually(t, func() bool {
		exec = cliJSON(t, p, 0, "execution", "show", strconv.FormatInt(id, 10))
		return exec["status"] == status
	}, 60*time.Second, 50*time.Millisecond, "execution %d did not reach %s: %v", id, status, exec)
	return exec
}

// TestCLIAgainstServer runs the API commands against one real server on the in-process broker.
func TestCLIAgainstServer(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, nil)
	apiURL := "http://" + p.addr

	t.Run("ExecuteWait", func(t *testing.T) {
		t.Parallel()
		exec := cliJSON(t, p, 0, "action", "execute", "demo.hello", "--param", "name=Ada", "--wait")
		require.Equal(t, "completed", exec["status"])
		result, ok := exec["result"].(map[string]any)
		require.True(t, ok, "no result in %v", exec)
		require.Contains(t, result["stdout"], "Ada")
	})

	t.Run("ExecuteWaitFailed", func(t *testing.T) {
		t.Parallel()
		exec := cliJSON(t, p, 1, "action", "execute", "demo.fail", "--wait")
		require.Equal(t, "failed", exec["status"])
	})

	t.Run("Tail", func(t *testing.T) {
		t.Parallel()
		created := cliJSON(t, p, 0, "action", "execute", "demo.slow", "--param", "seconds=1")
		stdout, stderr, code := p.cli(t, "execution", "tail", strconv.FormatInt(id(t, created, "id"), 10))
		require.Equal(t, 0, code, stderr)
		require.Empty(t, stderr)
		// Its status as the tail found it, and each change after that, the last completed.
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  completed$`, lines[len(lines)-1])
		for _, line := range lines {
			require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  (requested|scheduled|running|completed)$`, line)
		}

		created = cliJSON(t, p, 0, "action", "execute", "demo.hello", "--param", "name=Tail")
		stdout, _, code = p.cli(t, "execution", "tail", strconv.FormatInt(id(t, created, "id"), 10))
		require.Equal(t, 0, code)
		// Its output once: live when the tail saw it running (before the end), else stored
		// (after it).
		require.Equal(t, 1, strings.Count(stdout, "Hello, Tail!\n"), stdout)
		require.Regexp(t, `  completed\n(Hello, Tail!\n)?$`, stdout)
	})

	t.Run("TailFailed", func(t *testing.T) {
		t.Parallel()
		created := cliJSON(t, p, 0, "action", "execute", "demo.fail")
		execID := strconv.FormatInt(id(t, created, "id"), 10)
		stdout, stderr, code := p.cli(t, "execution", "tail", execID)
		require.Equal(t, 1, code, stderr)
		require.True(t, strings.HasSuffix(stdout, "  failed\n"), stdout)
		require.Equal(t, "failing on purpose\nexecution "+execID+" failed: exit status 3\n", stderr)

		_, stderr, code = p.cli(t, "execution", "tail", "999999")
		require.Equal(t, 1, code)
		require.Contains(t, requireOneErrorLine(t, stderr), "(404 Not Found)")
	})

	t.Run("ExecuteParams", func(t *testing.T) {
		t.Parallel()
		// --param values are read by the schema (count is an integer) and win over --params-json.
		exec := cliJSON(t, p, 0, "action", "execute", "demo.json", "--params-json", `{"name": "Bo", "count": 2}`, "--param", "count=3")
		require.Equal(t, map[string]any{"name": "Bo", "count": 3.0}, exec["parameters"])
	})

	t.Run("ExecuteUnknownAction", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := p.cli(t, "action", "execute", "demo.nope")
		require.Equal(t, 1, code, stderr)
		require.Empty(t, stdout)
		require.Equal(t, "attune: no action \"demo.nope\" (404 Not Found)\n", requireOneErrorLine(t, stderr))
	})

	t.Run("ExecutionList", func(t *testing.T) {
		t.Parallel()
		created := cliJSON(t, p, 0, "action", "execute", "demo.hello", "--wait")
		execID := strconv.FormatInt(id(t, created, "id"), 10)

		stdout, stderr, code := p.cli(t, "execution", "list", "--action", "demo.hello", "-o", "json")
		require.Equal(t, 0, code, stderr)
		var list []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &list), stdout)
		require.NotEmpty(t, list)
		for _, e := range list {
			require.Equal(t, "demo.hello", e["action_ref"])
		}

		stdout, stderr, code = p.cli(t, "execution", "list", "--limit", "1", "-o", "yaml")
		require.Equal(t, 0, code, stderr)
		var ylist []map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(stdout), &ylist), stdout)
		require.Len(t, ylist, 1)

		stdout, stderr, code = p.cli(t, "execution", "list")
		require.Equal(t, 0, code, stderr)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		require.Equal(t, []string{"ID", "ACTION", "STATUS", "CREATED", "WORKER", "REASON"}, strings.Fields(lines[0]))
		require.Contains(t, stdout, execID)

		// A filter matching nothing: a header alone, or [].
		stdout, stderr, code = p.cli(t, "execution", "list", "--action", "demo.none")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, 1, strings.Count(stdout, "\n"), stdout)
		stdout, _, code = p.cli(t, "execution", "list", "--action", "demo.none", "-o", "json")
		require.Equal(t, 0, code)
		require.Equal(t, "[]\n", stdout)
	})

	t.Run("ShowResultCancelRerun", func(t *testing.T) {
		t.Parallel()
		created := cliJSON(t, p, 0, "action", "execute", "demo.slow", "--param", "seconds=30")
		execID := id(t, created, "id")
		idArg := strconv.FormatInt(execID, 10)
		cliWaitStatus(t, p, execID, "running")

		stdout, stderr, code := p.cli(t, "execution", "show", idArg)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, []string{"FIELD", "VALUE"}, strings.Fields(strings.SplitN(stdout, "\n", 2)[0]))
		require.Regexp(t, `(?m)^action_ref\s+demo\.slow$`, stdout)

		canceled := cliJSON(t, p, 0, "execution", "cancel", idArg)
		require.Contains(t, []any{"canceling", "cancelled"}, canceled["status"])
		cliWaitStatus(t, p, execID, "cancelled")

		stdout, stderr, code = p.cli(t, "execution", "result", idArg)
		require.Equal(t, 0, code, stderr)
		var result map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &result), stdout)
		require.Equal(t, true, result["cancelled"], stdout)

		// Cancelling what has ended is the API's 409.
		_, stderr, code = p.cli(t, "execution", "cancel", idArg)
		require.Equal(t, 1, code, stderr)
		require.Contains(t, requireOneErrorLine(t, stderr), "(409 Conflict)")

		rerun := cliJSON(t, p, 0, "execution", "rerun", idArg, "--param", "seconds=0")
		require.Equal(t, float64(execID), rerun["parent_id"])
		require.Equal(t, map[string]any{"seconds": 0.0}, rerun["parameters"])
		cliWaitStatus(t, p, id(t, rerun, "id"), "completed")
	})

	t.Run("ShowMissing", func(t *testing.T) {
		t.Parallel()
		_, stderr, code := p.cli(t, "execution", "show", "999999")
		require.Equal(t, 1, code, stderr)
		line := requireOneErrorLine(t, stderr)
		// The API's message is its own; the command adds the status.
		require.Contains(t, line, "execution 999999")
		require.True(t, strings.HasSuffix(line, " (404 Not Found)\n"), line)
	})

	t.Run("Packs", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := p.cli(t, "pack", "list", "-o", "json")
		require.Equal(t, 0, code, stderr)
		var packs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &packs), stdout)
		var refs []any
		for _, p := range packs {
			refs = append(refs, p["ref"])
		}
		require.Contains(t, refs, "demo")

		pack := cliJSON(t, p, 0, "pack", "show", "demo")
		require.Equal(t, "demo", pack["ref"])
	})

	t.Run("Actions", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := p.cli(t, "action", "list", "--pack", "demo")
		require.Equal(t, 0, code, stderr)
		require.Equal(t, []string{"REF", "RUNNER", "ENABLED", "DESCRIPTION"}, strings.Fields(strings.SplitN(stdout, "\n", 2)[0]))
		require.Regexp(t, `(?m)^demo\.hello\s+shell\s+true\s+Greets someone\.$`, stdout)
		require.NotContains(t, stdout, "core.")

		stdout, stderr, code = p.cli(t, "action", "show", "demo.hello", "-o", "yaml")
		require.Equal(t, 0, code, stderr)
		var action map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(stdout), &action), stdout)
		require.Equal(t, "demo.hello", action["ref"])
		require.IsType(t, 0, action["id"], "ids stay integers in YAML")
	})

	t.Run("OtherLists", func(t *testing.T) {
		t.Parallel()
		for noun, header := range map[string]string{
			"trigger": "REF", "rule": "REF", "event": "ID", "policy": "REF", "worker": "NAME", "enforcement": "ID",
		} {
			stdout, stderr, code := p.cli(t, noun, "list", "-o", "json")
			require.Equal(t, 0, code, "%s: %s", noun, stderr)
			var list []any
			require.NoError(t, json.Unmarshal([]byte(stdout), &list), "%s: %s", noun, stdout)

			stdout, stderr, code = p.cli(t, noun, "list")
			require.Equal(t, 0, code, "%s: %s", noun, stderr)
			require.True(t, strings.HasPrefix(stdout, header+" "), "%s: %q", noun, stdout)
		}
	})

	t.Run("ConfigFile", func(t *testing.T) {
		t.Parallel()
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		// The token comes from the file too: the login command writes both there.
		require.NoError(t, os.WriteFile(cfg, []byte("api_url: "+apiURL+"\ntoken: "+p.authToken(t)+"\n"), 0o600))
		stdout, stderr, code := runAttuneEnv(t, []string{"ATTUNE_CONFIG=" + cfg}, "pack", "list")
		require.Equal(t, 0, code, stderr)
		require.Regexp(t, `(?m)^demo\s`, stdout)
	})
}

func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"UnknownFlag":   {"execution", "list", "--bogus"},
		"BadOutput":     {"execution", "list", "-o", "xml"},
		"BadID":         {"execution", "show", "abc"},
		"NoID":          {"execution", "result"},
		"TailBadID":     {"execution", "tail", "0"},
		"BadLimit":      {"execution", "list", "--limit", "0"},
		"BadParam":      {"action", "execute", "demo.hello", "--param", "name"},
		"BadParamsJSON": {"action", "execute", "demo.hello", "--params-json", "[1]"},
		"EventLimit":    {"event", "list", "--limit", "0"},
		"BadUntil":      {"execution", "list", "--until=-5m"},
		"PayloadArray":  {"event", "create", "core.webhook", "--payload", "[1]"},
		"PayloadNoFile": {"event", "create", "core.webhook", "--payload", "@/nonexistent/event.json"},
		"EventNoArgs":   {"event", "create"},
		"PolicyNoFile":  {"policy", "create"},
		"PolicyNoRef":   {"policy", "delete"},
		"RerunTimeout":  {"execution", "rerun", "1", "--wait", "--timeout", "0s"},
		"QueueNoArgs":   {"action", "queue"},
		"WorkerNoName":  {"worker", "delete"},
		"SecretTwoURLs": {"webhook-secret", "set", "a", "b"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The URL answers nothing: a usage error must stop before any request.
			stdout, stderr, code := runAttune(t, append(args, "--api-url", "http://127.0.0.1:1")...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			requireOneErrorLine(t, stderr)
		})
	}
}

func TestCLIUnreachable(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runAttune(t, "execution", "list", "--api-url", "http://127.0.0.1:1")
	require.Equal(t, 1, code, stderr)
	require.Empty(t, stdout)
	require.Contains(t, requireOneErrorLine(t, stderr), "cannot reach the Attune API at http://127.0.0.1:1")
}

// TestCLIConfigPrecedence holds flag > env > config file > default for the URL, env > config
// file for the token, and the bearer header, against a stand-in server.
func TestCLIConfigPrecedence(t *testing.T) {
	t.Parallel()
	auth := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth <- r.Header.Get("Authorization")
		_, _ = io.WriteString(w, `{"data": [], "pagination": {"page": 1, "page_size": 100, "total_items": 0, "total_pages": 0}}`)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("api_url: http://127.0.0.1:1\ntoken: from-file\n"), 0o600))

	// The config's URL is wrong: the env's and the flag's win over it.
	stdout, stderr, code := runAttuneEnv(t, []string{"ATTUNE_CONFIG=" + cfg, "ATTUNE_API_URL=" + srv.URL}, "worker", "list", "-o", "json")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "[]\n", stdout)
	require.Equal(t, "Bearer from-file", <-auth)

	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_CONFIG=" + cfg, "ATTUNE_API_URL=http://127.0.0.1:1", "ATTUNE_TOKEN=from-env"},
		"worker", "list", "--api-url", srv.URL)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "Bearer from-env", <-auth)

	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_CONFIG=" + cfg}, "worker", "list")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "http://127.0.0.1:1", "the config's URL wins over the default")

	// The default file, under XDG_CONFIG_HOME, is read too; without a token no header is sent.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "attune"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "attune", "config.yaml"), []byte("api_url: "+srv.URL+"\n"), 0o600))
	_, stderr, code = runAttuneEnv(t, []string{"XDG_CONFIG_HOME=" + dir}, "event", "list")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "", <-auth)
}

func TestCLIConfigInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, text := range map[string]string{"broken.yaml": "api_url: [\n", "unknown.yaml": "api_ur1: http://x\n"} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
		stdout, stderr, code := runAttuneEnv(t, []string{"ATTUNE_CONFIG=" + path}, "pack", "list")
		require.Equal(t, 2, code, stderr)
		require.Empty(t, stdout)
		require.Contains(t, requireOneErrorLine(t, stderr), "read config file "+path+": ")
	}
	missing := filepath.Join(dir, "missing.yaml")
	_, stderr, code := runAttuneEnv(t, []string{"ATTUNE_CONFIG=" + missing}, "pack", "list")
	require.Equal(t, 2, code, stderr)
	require.Equal(t, "attune: read config file "+missing+": no such file or directory\n", stderr)

	bad := filepath.Join(dir, "bad_url.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("api_url: ftp://x\n"), 0o600))
	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_CONFIG=" + bad}, "pack", "list")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, `invalid api_url in `+bad+` "ftp://x"`)
}
