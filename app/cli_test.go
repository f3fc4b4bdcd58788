package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rulesDir holds the rule and payload fixtures of "attune rule test".
const rulesDir = "../testdata/rules/"

// requireOneErrorLine checks that stderr is exactly one "attune: ..." line and returns it.
func requireOneErrorLine(t *testing.T, stderr string) string {
	t.Helper()
	require.True(t, strings.HasPrefix(stderr, "attune: "), "stderr: %q", stderr)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "stderr: %q", stderr)
	require.True(t, strings.HasSuffix(stderr, "\n"), "stderr: %q", stderr)
	return stderr
}

func TestRuleTestMatch(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runAttune(t, "rule", "test", "--rule", rulesDir+"on_order.yaml", "--payload", rulesDir+"order.json")
	require.Equal(t, 0, code, stderr)
	require.Empty(t, stderr)
	// The exact text, to hold the format: a whole template keeps its type (count is 3, not
	// "3"), lists are rendered inside, and the rule's own trigger is the event's.
	require.Equal(t, `{
  "rule": "demo.on_order",
  "matched": true,
  "action_ref": "demo.json",
  "parameters": {
    "count": 3,
    "name": "n-Ada",
    "rule": "demo.on_order",
    "tags": [
      "order",
      7
    ],
    "trigger": "core.webhook"
  }
}
`, stdout)
}

func TestRuleTestYAMLPayloadAndTrigger(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runAttune(t, "rule", "test", "--rule", rulesDir+"on_order.yaml", "--payload", rulesDir+"refund.yaml", "--trigger", "demo.order")
	require.Equal(t, 0, code, stderr)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	require.Equal(t, true, out["matched"])
	require.Equal(t, map[string]any{
		"count":   2.5,
		"name":    "n-Bo",
		"rule":    "demo.on_order",
		"tags":    []any{"refund", 7.0},
		"trigger": "demo.order",
	}, out["parameters"])
}

func TestRuleTestBareNameMatchesEverything(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runAttune(t, "rule", "test", "--rule", rulesDir+"named.yaml", "--payload", rulesDir+"order.json")
	require.Equal(t, 0, code, stderr)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	require.Equal(t, map[string]any{"rule": "every_event", "matched": true, "action_ref": "core.noop", "parameters": map[string]any{}}, out,
		"a matching rule without parameters still prints {}")
}

func TestRuleTestNoMatch(t *testing.T) {
	t.Parallel()
	// test=true trips the not-branch.
	stdout, stderr, code := runAttune(t, "rule", "test", "--rule", rulesDir+"on_order.yaml", "--payload", rulesDir+"test_order.json")
	require.Equal(t, 1, code)
	require.Empty(t, stderr, "no match is an answer, not an error")
	require.Equal(t, "{\n  \"rule\": \"demo.on_order\",\n  \"matched\": false\n}\n", stdout)
}

func TestRuleTestInvalid(t *testing.T) {
	t.Parallel()
	// Payloads that are no payload, written per test rather than kept as fixtures.
	tmp := t.TempDir()
	for name, text := range map[string]string{"list.json": "[1, 2]\n", "broken.json": "{\"body\": \n", "empty.yaml": ""} {
		require.NoError(t, os.WriteFile(filepath.Join(tmp, name), []byte(text), 0o644))
	}
	cases := map[string]struct {
		args []string
		want []string
	}{
		"UnknownKey": {
			args: []string{"--rule", rulesDir + "unknown_key.yaml", "--payload", rulesDir + "order.json"},
			want: []string{"read rule " + rulesDir + "unknown_key.yaml: ", `line 4: unknown key "condition"`},
		},
		"BadOperator": {
			args: []string{"--rule", rulesDir + "bad_operator.yaml", "--payload", rulesDir + "order.json"},
			want: []string{"rule " + rulesDir + "bad_operator.yaml: ", `conditions.all[0]: unknown operator "equal"`},
		},
		"BadTemplate": {
			args: []string{"--rule", rulesDir + "bad_template.yaml", "--payload", rulesDir + "order.json"},
			want: []string{"rule " + rulesDir + "bad_template.yaml: ", "action_params.message: ", "paylod"},
		},
		"BadSchedule": {
			args: []string{"--rule", rulesDir + "bad_schedule.yaml", "--payload", rulesDir + "order.json"},
			want: []string{"rule " + rulesDir + "bad_schedule.yaml: trigger_params.expression: field 1 (minute): 61 is out of range 0-59"},
		},
		"CoreActionParams": {
			args: []string{"--rule", rulesDir + "bad_params.yaml", "--payload", rulesDir + "order.json"},
			want: []string{"rule " + rulesDir + `bad_params.yaml: action_params.seconds: want number, got "three"`},
		},
		"MissingRule": {
			args: []string{"--rule", rulesDir + "missing.yaml", "--payload", rulesDir + "order.json"},
			want: []string{"read rule " + rulesDir + "missing.yaml: no such file or directory"},
		},
		"MissingPayload": {
			args: []string{"--rule", rulesDir + "on_order.yaml", "--payload", rulesDir + "missing.json"},
			want: []string{"read payload " + rulesDir + "missing.json: no such file or directory"},
		},
		"PayloadNotAnObject": {
			args: []string{"--rule", rulesDir + "on_order.yaml", "--payload", filepath.Join(tmp, "list.json")},
			want: []string{"list.json: want an object, got an array"},
		},
		"PayloadBrokenJSON": {
			args: []string{"--rule", rulesDir + "on_order.yaml", "--payload", filepath.Join(tmp, "broken.json")},
			want: []string{"broken.json: unexpected EOF"},
		},
		"PayloadEmpty": {
			args: []string{"--rule", rulesDir + "on_order.yaml", "--payload", filepath.Join(tmp, "empty.yaml")},
			want: []string{"empty.yaml: empty file"},
		},
		"NoPayloadFlag": {
			args: []string{"--rule", rulesDir + "on_order.yaml"},
			want: []string{"--rule and --payload are required"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runAttune(t, append([]string{"rule", "test"}, tc.args...)...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			line := requireOneErrorLine(t, stderr)
			for _, w := range tc.want {
				require.Contains(t, line, w)
			}
		})
	}
}

// TestPackRegister runs against a real server; the pipeline registered the test packs at start,
// so registering demo again changes nothing, and says so.
func TestPackRegister(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, nil)

	t.Run("Demo", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(packsDir(t), "demo")
		stdout, stderr, code := p.cli(t, "pack", "register", "../testdata/packs/demo")
		require.Equal(t, 0, code, stderr)
		require.Empty(t, stderr)
		unchanged := "registered pack demo (" + dir + "): nothing changed (6 actions, 1 trigger, 4 rules, 2 policies)\n"
		require.Equal(t, unchanged, stdout, "the relative DIR is sent absolute")
		status, body := p.get(t, "/api/v1/packs/demo")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, dir, data(t, body)["path"])

		// Again through the environment; in this subtest rather than beside it, as two
		// registrations of one pack at once would test the store, not the command.
		stdout, stderr, code = runAttuneEnv(t, []string{"ATTUNE_API_URL=http://" + p.addr, "ATTUNE_TOKEN=" + p.authToken(t)}, "pack", "register", dir)
		require.Equal(t, 0, code, stderr)
		require.Equal(t, unchanged, stdout)
	})

	t.Run("BrokenPack", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := p.cli(t, "pack", "register", filepath.Join(packsDir(t), "broken", "wrong_default"))
		require.Equal(t, 1, code, stderr)
		require.Empty(t, stdout)
		line := requireOneErrorLine(t, stderr)
		require.Contains(t, line, "wrong_default")
		require.Contains(t, line, "actions/count.yaml")
		require.Contains(t, line, "default")

		// A timer that could never fire is the pack's fault too, named by file and field.
		_, stderr, code = p.cli(t, "pack", "register", filepath.Join(packsDir(t), "broken", "bad_cron"))
		require.Equal(t, 1, code, stderr)
		require.Equal(t, "attune: register pack "+filepath.Join(packsDir(t), "broken", "bad_cron")+
			": rules/nightly.yaml: trigger_params.expression: field 1 (minute): 61 is out of range 0-59\n", requireOneErrorLine(t, stderr))
	})
}

// TestPackRegisterWire holds the request the command sends and how it reads answers that are
// not the API's, against a stand-in server.
func TestPackRegisterWire(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		status     int
		body, want string
		code       int
	}{
		"Registered":    {http.StatusOK, `{"data": {"ref": "x", "path": "/srv/x", "changes": {"pack": "added", "actions": {"added": ["x.a"]}}}}`, "registered pack x (/srv/x): new\n  actions: added x.a\n", 0},
		"OlderServer":   {http.StatusOK, `{"data": {"ref": "x", "path": "/srv/x"}}`, "registered pack x (/srv/x)\n", 0},
		"APIError":      {http.StatusBadRequest, `{"error": {"code": "bad_request", "message": "load pack /srv/x: pack.yaml: ref: required"}}`, "attune: load pack /srv/x: pack.yaml: ref: required\n", 1},
		"NoAPIRole":     {http.StatusNotFound, `{"error": {"code": "not_found", "message": "Not Found"}}`, "not found; is the api role running there, and is --api-url right?", 1},
		"SomethingElse": {http.StatusBadGateway, "<html>bad gateway</html>", "unexpected answer 502 Bad Gateway (is --api-url the Attune API?)", 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			type request struct {
				method, path, contentType string
				body                      map[string]any
			}
			got := make(chan request, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req := request{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type")}
				_ = json.NewDecoder(r.Body).Decode(&req.body)
				got <- req
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)

			stdout, stderr, code := runAttune(t, "pack", "register", "--api-url", srv.URL+"/prefix/", "../testdata/packs/demo")
			require.Equal(t, tc.code, code, stderr)
			if code == 0 {
				require.Equal(t, tc.want, stdout)
			} else {
				require.Contains(t, requireOneErrorLine(t, stderr), tc.want)
			}
			req := <-got
			require.Equal(t, http.MethodPost, req.method)
			require.Equal(t, "/prefix/api/v1/packs/register", req.path, "a path prefix in --api-url is kept")
			require.Equal(t, "application/json", req.contentType)
			require.Equal(t, map[string]any{"path": filepath.Join(packsDir(t), "demo")}, req.body)
		})
	}
}

func TestPackRegisterUnreachable(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runAttune(t, "pack", "register", "--api-url", "http://127.0.0.1:1", "../testdata/packs/demo")
	require.Equal(t, 1, code, stderr)
	require.Empty(t, stdout)
	require.Equal(t, "attune: cannot reach the Attune API at http://127.0.0.1:1: connection refused; "+
		"is a process with the api role running there? Point --api-url or ATTUNE_API_URL at it\n", stderr)
}

func TestPackRegisterBadURL(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := runAttune(t, "pack", "register", "--api-url", "::bad", "../testdata/packs/demo")
	require.Equal(t, 2, code, stderr)
	require.Empty(t, stdout)
	require.Contains(t, requireOneErrorLine(t, stderr), `invalid --api-url (or ATTUNE_API_URL) "::bad"`)

	// The flag wins over the environment, which wins over the default.
	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_API_URL=ftp://nowhere"}, "pack", "register", "../testdata/packs/demo")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, `"ftp://nowhere"`)
	_, stderr, code = runAttuneEnv(t, []string{"ATTUNE_API_URL=ftp://nowhere"}, "pack", "register", "--api-url=http://127.0.0.1:1", "../testdata/packs/demo")
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stderr, "cannot reach the Attune API at http://127.0.0.1:1")
}

func TestPackRegisterArgs(t *testing.T) {
	t.Parallel()
	_, stderr, code := runAttune(t, "pack", "register")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, requireOneErrorLine(t, stderr), "accepts 1 arg(s), received 0")
}
