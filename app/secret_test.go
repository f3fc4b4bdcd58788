package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store/storetest"
)

// The secret values of TestSecretsThroughThePipeline: none may show anywhere but in what the
// action itself writes.
const (
	pipelineRuleToken = "rule-token-4d5e6f"
	pipelineKey       = "default-key-8e1f2c"
	pipelineCLIToken  = "cli-token-a1b2c3"
)

// writeVaultPack writes the pack vault under a new packs directory and returns that
// directory. vault.reveal writes its token and api_key (both secret, api_key with a default)
// to the file out names, prints them on standard error and as JSON on standard output;
// vault.on_hook runs it for the webhook vault with a literal secret token.
func writeVaultPack(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "packs")
	files := map[string]string{
		"vault/pack.yaml": "ref: vault\n",
		"vault/actions/reveal.yaml": `ref: vault.reveal
runner_type: shell
entry_point: reveal.sh
output_format: json
timeout_seconds: 30
parameters:
  token: {type: string, required: true, secret: true}
  api_key: {type: string, default: ` + pipelineKey + `, secret: true}
  out: {type: string, required: true}
`,
		"vault/actions/reveal.sh": `#!/bin/sh
printf '%s\n%s\n' "$ATTUNE_PARAM_TOKEN" "$ATTUNE_PARAM_API_KEY" > "$ATTUNE_PARAM_OUT.tmp"
mv "$ATTUNE_PARAM_OUT.tmp" "$ATTUNE_PARAM_OUT"
echo "token is $ATTUNE_PARAM_TOKEN" >&2
printf '{"echo": "%s", "key": "%s"}\n' "$ATTUNE_PARAM_TOKEN" "$ATTUNE_PARAM_API_KEY"
`,
		"vault/rules/on_hook.yaml": `ref: vault.on_hook
trigger_ref: core.webhook
trigger_params: {url: vault}
action_ref: vault.reveal
action_params:
  token: ` + pipelineRuleToken + `
  out: "{{ event.payload.body.out }}"
`,
	}
	writeFiles(t, dir, files)
	return dir
}

// writeFiles writes files (path under dir: content) under dir, the scripts (.sh) executable.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		require.NoError(t, os.WriteFile(path, []byte(content), mode))
	}
}

// requireNoSecret fails when a secret of the pipeline test shows in text.
func requireNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, secret := range []string{pipelineRuleToken, pipelineKey, pipelineCLIToken} {
		require.NotContains(t, text, secret, "%s shows a secret", what)
	}
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// The measure, from outside: every role in one process on RabbitMQ, logging at debug
// level. A real shell action gets its secret parameters in clear (it writes them to a file),
// from a rule's literal and from the CLI, while the API answers (as a viewer), the CLI's
// output, the live stream and the log of every role show them masked; the action's echo of
// them is scrubbed from its recorded result; a rerun through the CLI, sending back the mask,
// runs with the original secret.
func TestSecretsThroughThePipeline(t *testing.T) {
	t.Parallel()
	p := startServe(t, "--database-url="+storetest.NewDatabase(t), "--packs-dir="+writeVaultPack(t), "--log-level=debug",
		"--shutdown-timeout=5s", "--amqp-url="+brokertest.URL(t), "--amqp-namespace="+namespace(t))
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.stop(t, syscall.SIGTERM, 30*time.Second)
		}
	})
	live := p.stream(t, "output=true")
	code, created := p.post(t, "/api/v1/identities", map[string]any{"login": "vic", "password": "vic-password-long", "role": "viewer"})
	require.Equal(t, http.StatusCreated, code, created)
	resp, err := http.Post("http://"+p.addr+"/auth/login", "application/json",
		strings.NewReader(`{"login": "vic", "password": "vic-password-long"}`))
	require.NoError(t, err)
	var login map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&login))
	resp.Body.Close()
	viewerToken, _ := login["access_token"].(string)
	require.NotEmpty(t, viewerToken, "%v", login)
	viewer := func(path string) map[string]any {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+viewerToken)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %v", path, body)
		requireNoSecret(t, "GET "+path+" as a viewer", jsonText(t, body))
		return body
	}
	viewerCLI := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := runAttuneEnv(t, []string{"ATTUNE_TOKEN=" + viewerToken}, append(args, "--api-url", "http://"+p.addr)...)
		require.Equal(t, 0, code, "attune %v: %s", args, stderr)
		requireNoSecret(t, fmt.Sprintf("attune %v as a viewer", args), stdout+stderr)
		return stdout
	}
	dir := t.TempDir()
	readOut := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return string(b)
	}

	// A rule's literal secret, through the matcher, the executor and a worker.
	code, body := p.post(t, "/api/v1/webhooks/vault", map[string]any{"out": filepath.Join(dir, "from-rule")})
	require.Equal(t, http.StatusAccepted, code, body)
	ruleExec := p.executionOf(t, "vault.on_hook", id(t, data(t, body), "event_id"))
	require.Equal(t, "completed", p.waitExecution(t, ruleExec)["status"])
	require.Equal(t, pipelineRuleToken+"\n"+pipelineKey+"\n", readOut("from-rule"), "the action got the values in clear")

	exec := data(t, viewer(fmt.Sprintf("/api/v1/executions/%d", ruleExec)))
	params := exec["parameters"].(map[string]any)
	require.Equal(t, pack.Mask, params["token"])
	require.Equal(t, pack.Mask, params["api_key"])
	res := result(t, exec)
	require.Equal(t, "token is "+pack.Mask+"\n", res["stderr"], "the echo is scrubbed from the result")
	require.Equal(t, map[string]any{"echo": pack.Mask, "key": pack.Mask}, res["data"])
	viewer("/api/v1/executions")
	enfs := viewer("/api/v1/enforcements?rule_ref=vault.on_hook")["data"].([]any)
	require.Len(t, enfs, 1)
	require.Equal(t, pack.Mask, enfs[0].(map[string]any)["config"].(map[string]any)["token"])
	require.Equal(t, pack.Mask, data(t, viewer("/api/v1/rules/vault.on_hook"))["action_params"].(map[string]any)["token"])
	reveal := data(t, viewer("/api/v1/actions/vault.reveal"))
	require.Equal(t, pack.Mask, reveal["parameters"].(map[string]any)["api_key"].(map[string]any)["default"])

	// The CLI: execute and wait, then rerun sending the mask back.
	stdout, stderr, code := p.cli(t, "action", "execute", "vault.reveal", "--param", "token="+pipelineCLIToken,
		"--param", "out="+filepath.Join(dir, "from-cli"), "--wait", "-o", "json")
	require.Equal(t, 0, code, stderr)
	requireNoSecret(t, "attune action execute --wait", stdout+stderr)
	var cliExec map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &cliExec))
	require.Equal(t, pack.Mask, cliExec["parameters"].(map[string]any)["token"])
	require.Equal(t, pipelineCLIToken+"\n"+pipelineKey+"\n", readOut("from-cli"))

	require.NoError(t, os.Remove(filepath.Join(dir, "from-cli")))
	stdout, stderr, code = p.cli(t, "execution", "rerun", fmt.Sprint(cliExec["id"]), "--param", "token="+pack.Mask, "-o", "json")
	require.Equal(t, 0, code, stderr)
	requireNoSecret(t, "attune execution rerun", stdout+stderr)
	var rerun map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &rerun))
	rerunID := id(t, rerun, "id")
	require.Equal(t, "completed", p.waitExecution(t, rerunID)["status"])
	require.Equal(t, pipelineCLIToken+"\n"+pipelineKey+"\n", readOut("from-cli"), "the rerun ran with the original secret")

	// What a viewer's CLI shows, in every format.
	for _, format := range []string{"table", "json", "yaml"} {
		viewerCLI("execution", "show", fmt.Sprint(rerunID), "-o", format)
		viewerCLI("execution", "list", "-o", format)
		viewerCLI("action", "show", "vault.reveal", "-o", format)
		viewerCLI("rule", "show", "vault.on_hook", "-o", format)
		viewerCLI("enforcement", "list", "-o", format)
	}
	viewerCLI("execution", "result", fmt.Sprint(ruleExec))
	viewerCLI("execution", "tail", fmt.Sprint(rerunID))

	// The live stream, open since the start, carried every change up to the rerun's end, and
	// no value.
	var streamed bytes.Buffer
	live.next(func(ev streamEvent) bool {
		streamed.WriteString(ev.name + " " + jsonText(t, ev.data) + "\n")
		return executionEvent(rerunID)(ev) && ev.data["status"] == "completed"
	})
	require.Contains(t, streamed.String(), fmt.Sprintf(`"id":%d`, ruleExec))
	requireNoSecret(t, "the live stream", streamed.String())

	// The log of every role, at debug level, to the end.
	p.stop(t, syscall.SIGTERM, 30*time.Second)
	require.Contains(t, p.output(), `"msg":"execution finished"`, "the capture holds the roles' debug log")
	requireNoSecret(t, "the log", p.output())
}

// A --param or --params-json the CLI refuses is not repeated in its error: it may hold a
// secret, and the error ends up in terminals' scrollback and CI logs.
func TestCLIParamErrorsDoNotRepeatValues(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"ParamWithoutName":  {"--param", "token:s3cret-value-1"},
		"ParamEmptyName":    {"--param", "=s3cret-value-2"},
		"ParamsJSONNotJSON": {"--params-json", `{"token": "s3cret-value-3"`},
		"ParamsJSONArray":   {"--params-json", `["s3cret-value-4"]`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runAttune(t, append([]string{"action", "execute", "demo.hello", "--api-url", "http://127.0.0.1:1"}, args...)...)
			require.Equal(t, 2, code, stderr)
			require.Empty(t, stdout)
			require.Contains(t, requireOneErrorLine(t, stderr), "invalid --param")
			require.NotContains(t, stderr, "s3cret-value")
		})
	}
}
