package app_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store/storetest"
)

// attune key set, get, list and delete against a server: text and JSON values, secrets from
// stdin and from a file, masked everywhere but in an admin's --decrypt, which a viewer is
// refused; a ttl; usage errors in one line.
func TestKeyCLI(t *testing.T) {
	t.Parallel()
	p := startServe(t, "--database-url="+storetest.NewDatabase(t))
	ok := func(stdin string, args ...string) (string, string) {
		t.Helper()
		stdout, stderr, code := runAttuneWith(t, stdin, []string{"ATTUNE_TOKEN=" + p.authToken(t)}, append(args, "--api-url", "http://"+p.addr)...)
		require.Equal(t, 0, code, "attune %v: %s", args, stderr)
		return stdout, stderr
	}
	asJSON := func(stdout string) map[string]any {
		t.Helper()
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &v), stdout)
		return v
	}

	out, _ := ok("", "key", "set", "system", "api_url", "https://example.com", "-o", "json")
	require.Equal(t, "https://example.com", asJSON(out)["value"])
	out, _ = ok("", "key", "set", "pack.deploy", "replicas", `{"n": 3}`, "--json", "-o", "json")
	require.Equal(t, map[string]any{"n": 3.0}, asJSON(out)["value"])
	out, _ = ok("hunter2-from-stdin\n", "key", "set", "pack.deploy", "token", "-", "--secret", "-o", "json")
	require.Equal(t, "********", asJSON(out)["value"])
	file := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(file, []byte("hunter3-from-file\n"), 0o600))
	_, stderr := ok("", "key", "set", "user", "mine", "--value-file", file, "--secret", "--ttl", "1h")
	require.Empty(t, stderr)
	_, stderr = ok("", "key", "set", "system", "argv", "hunter4-on-argv", "--secret")
	require.Contains(t, stderr, "warning: a secret given as an argument shows in ps")

	out, _ = ok("", "key", "get", "pack.deploy", "token")
	require.Regexp(t, `(?m)^value\s+"?\*{8}"?$`, out)
	out, _ = ok("", "key", "get", "pack.deploy", "token", "--decrypt", "-o", "json")
	require.Equal(t, "hunter2-from-stdin", asJSON(out)["value"], "one trailing newline dropped")
	out, _ = ok("", "key", "get", "user", "mine", "--decrypt", "-o", "yaml")
	require.Contains(t, out, "value: hunter3-from-file\n")
	require.Regexp(t, `(?m)^expires: \S+`, out)

	out, _ = ok("", "key", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Regexp(t, `^SCOPE\s+NAME\s+SECRET\s+VALUE\s+EXPIRES$`, lines[0])
	require.Len(t, lines, 6, out)
	require.NotContains(t, out, "hunter")
	out, _ = ok("", "key", "list", "--scope", "pack.deploy", "--prefix", "rep", "-o", "json")
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &listed))
	require.Len(t, listed, 1)
	require.Equal(t, "replicas", listed[0]["name"])

	// A viewer's token reads the mask and is refused the clear value.
	out, _ = ok("", "token", "create", "--name", "looker", "--role", "viewer", "-o", "yaml")
	viewer := regexp.MustCompile(`(?m)^token: (\S+)$`).FindStringSubmatch(out)
	require.NotNil(t, viewer, out)
	_, stderr, code := runAttuneEnv(t, []string{"ATTUNE_TOKEN=" + viewer[1]}, "key", "get", "pack.deploy", "token", "--decrypt", "--api-url", "http://"+p.addr)
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "needs the admin role")

	out, _ = ok("", "key", "delete", "system", "argv")
	require.Equal(t, "deleted key system argv\n", out)
	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_TOKEN=" + p.authToken(t)}, "key", "get", "system", "argv", "--api-url", "http://"+p.addr)
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "no key argv in scope system")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"key", "set", "system", "x"}, "no value"},
		{[]string{"key", "set", "system", "x", "1", "--value-file", file}, "not both"},
		{[]string{"key", "set", "system", "x", "{", "--json"}, "--json: the value is not valid JSON"},
		{[]string{"key", "set", "system", "x", "1", "--ttl", "soon"}, "--ttl"},
		{[]string{"key", "set", "system", "x", "1", "--ttl", "-1h"}, "--ttl"},
		{[]string{"key", "rotate", "--api-url", "http://x"}, "--api-url does not apply"},
	} {
		_, stderr, code := runAttuneEnv(t, []string{"ATTUNE_TOKEN=" + p.authToken(t)}, c.args...)
		require.Equal(t, 2, code, "%v: %s", c.args, stderr)
		require.Contains(t, requireOneErrorLine(t, stderr), c.want, c.args)
	}
	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_TOKEN=" + p.authToken(t)}, "key", "set", "global", "x", "1", "--api-url", "http://"+p.addr)
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "scope: want system, user or pack.<pack ref>")
}
