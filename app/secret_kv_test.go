package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store/seal"
	"github.com/attune-go/attune/store/storetest"
)

// The clear values of TestSecretsAppearNowhere: each may show only inside the actions.
const (
	kvSystemSecret = "kv-system-secret-5d8c2e"
	kvUserSecret   = "kv-user-secret-a7b31f"
	kvCLISecret    = "kv-cli-secret-e4f90b"
)

var kvSecrets = []string{kvSystemSecret, kvUserSecret, kvCLISecret}

// writeKVPack writes the pack keys: keys.show (shell) writes the SHA-256 of what it got to
// the file out names, one line a parameter, and echoes the values themselves on standard
// output (what the worker must scrub); its defaults read kv.system and kv.user. keys.on_hook
// runs it for the webhook keys with a secret system key inside a longer string and a pack
// key; keys.flow is a workflow whose task input reads the secret system key.
func writeKVPack(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "packs")
	files := map[string]string{
		"keys/pack.yaml": "ref: keys\n",
		"keys/actions/show.yaml": `ref: keys.show
runner_type: shell
entry_point: show.sh
output_format: text
timeout_seconds: 30
parameters:
  auth: {type: string}
  url: {type: string}
  token: {type: string, secret: true}
  who: {type: string, default: "{{ kv.user.me }}"}
  region: {type: string, default: "{{ kv.system.region }}"}
  out: {type: string, required: true}
`,
		"keys/actions/show.sh": `#!/bin/sh
sum() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
{
  echo "auth $(sum "$ATTUNE_PARAM_AUTH")"
  echo "token $(sum "$ATTUNE_PARAM_TOKEN")"
  echo "who $(sum "$ATTUNE_PARAM_WHO")"
  echo "url $ATTUNE_PARAM_URL"
  echo "region $ATTUNE_PARAM_REGION"
  echo "api $ATTUNE_API_URL $(sum "$ATTUNE_TOKEN")"
} > "$ATTUNE_PARAM_OUT.tmp"
# The action writes a key of its pack back with the token its worker gave it.
curl -fsS -o /dev/null -X PUT "$ATTUNE_API_URL/api/v1/keys/pack.keys/last_out" \
  -H "Authorization: Bearer $ATTUNE_TOKEN" -H 'Content-Type: application/json' \
  -d "{\"value\": \"$(basename "$ATTUNE_PARAM_OUT")\"}" || echo "write-back failed" >&2
mv "$ATTUNE_PARAM_OUT.tmp" "$ATTUNE_PARAM_OUT"
echo "got [$ATTUNE_PARAM_AUTH] [$ATTUNE_PARAM_TOKEN] [$ATTUNE_PARAM_WHO]"
echo "token [$ATTUNE_TOKEN]" >&2
`,
		"keys/rules/on_hook.yaml": `ref: keys.on_hook
trigger_ref: core.webhook
trigger_params: {url: keys}
action_ref: keys.show
action_params:
  auth: "Bearer {{ kv.system.api_token }}"
  url: "{{ kv.pack.api_url }}"
  out: "{{ event.payload.body.out }}"
`,
		"keys/actions/flow.yaml": `ref: keys.flow
runner_type: workflow
entry_point: workflows/flow.yaml
parameters:
  out: {type: string, required: true}
`,
		"keys/actions/workflows/flow.yaml": `input: [out]
vars:
  url: "{{ kv.pack.api_url }}"
tasks:
  call:
    action: keys.show
    input: {auth: "{{ kv.system.api_token }}", url: "{{ vars.url }}", out: "{{ input.out }}"}
output:
  sent: "{{ kv.system.api_token }}"
`,
	}
	writeFiles(t, dir, files)
	return dir
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// amqpCapture holds every message published to a namespace's exchanges, through a queue of
// its own bound with '#' to each.
type amqpCapture struct {
	mu   sync.Mutex
	msgs []string
}

func captureAMQP(t *testing.T, ns string) *amqpCapture {
	t.Helper()
	conn, err := amqp.Dial(brokertest.URL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	for _, ex := range broker.Exchanges {
		require.NoError(t, ch.QueueBind(q.Name, "#", broker.Namespace(ns).Name(ex), false, nil), ex)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	require.NoError(t, err)
	c := &amqpCapture{}
	go func() {
		for d := range deliveries {
			c.mu.Lock()
			c.msgs = append(c.msgs, d.RoutingKey+" "+d.Type+" "+string(d.Body))
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *amqpCapture) all() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.msgs, "\n")
}

// dumpDatabase returns every row of every table of schema attune, as JSON, one a line.
func dumpDatabase(t *testing.T, dbURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'attune' AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, tables, "execution")
	var out strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT row_to_json(t)::text FROM attune.%s t`, pgx.Identifier{table}.Sanitize()))
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err, table)
		for _, l := range lines {
			out.WriteString(table + " " + l + "\n")
		}
	}
	return out.String()
}

// The measure of secrets at rest, from outside, with every role a process of its own
// on RabbitMQ logging at debug level: a secret system key read by a rule ("Bearer {{
// kv.system.api_token }}") and by a workflow's task input, a secret user key read by an
// action's default as the requester's, and a secret parameter given through the CLI reach the
// actions in clear, and afterwards none of them is anywhere in the database (every row of
// every table), in any message published on the namespace's exchanges, in any process's log
// or in the live stream, the actions' live output included. Non-secret keys render as their
// values (kv.pack, kv.system).
func TestSecretsAppearNowhere(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	ns := namespace(t)
	key, err := seal.NewKey()
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(keyFile, []byte(key.String()+"\n"), 0o600))

	common := []string{"--database-url=" + dbURL, "--amqp-url=" + brokertest.URL(t), "--amqp-namespace=" + ns,
		"--packs-dir=" + writeKVPack(t), "--encryption-key-file=" + keyFile, "--log-level=debug", "--shutdown-timeout=5s"}
	var procs []*process
	start := func(role string) *process {
		p := startServe(t, append([]string{"--roles=" + role}, common...)...)
		procs = append(procs, p)
		t.Cleanup(func() {
			select {
			case <-p.exited:
			default:
				p.stop(t, syscall.SIGTERM, 30*time.Second)
			}
		})
		return p
	}
	api := start("api")
	apiURL := "http://" + api.addr
	common = append(common, "--worker-api-url="+apiURL)
	start("worker")
	start("executor")
	start("sensor")
	captured := captureAMQP(t, ns)
	live := api.stream(t, "output=true")

	// The keys, through the keys API, which keeps a secret one only as its seal token.
	admin := queryOne[int64](t, dbURL, `SELECT id FROM attune.identity WHERE login = 'admin'`)
	setKey := func(path string, value any, secret bool) {
		t.Helper()
		b, err := json.Marshal(map[string]any{"value": value, "secret": secret})
		require.NoError(t, err)
		resp := api.request(t, http.MethodPut, "/api/v1/keys/"+path, bytes.NewReader(b))
		defer resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode, path)
	}
	setKey("system/api_token", kvSystemSecret, true)
	setKey("system/region", "eu-west-3", false)
	setKey("pack.keys/api_url", "https://api.example/v2", false)
	setKey("user/me", kvUserSecret, true)
	ctx := context.Background()

	dir := t.TempDir()
	readOut := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return string(b)
	}

	// A rule: the secret system key inside a longer string, a pack key; no user.
	code, body := api.post(t, "/api/v1/webhooks/keys", map[string]any{"out": filepath.Join(dir, "rule")})
	require.Equal(t, http.StatusAccepted, code, body)
	ruleExec := api.executionOf(t, "keys.on_hook", id(t, data(t, body), "event_id"))
	exec := api.waitExecution(t, ruleExec)
	require.Equal(t, "completed", exec["status"], exec)
	lines := strings.Split(readOut("rule"), "\n")
	require.Equal(t, "auth "+sha("Bearer "+kvSystemSecret)+"\ntoken "+sha("")+"\nwho "+sha("")+"\nurl https://api.example/v2\nregion eu-west-3",
		strings.Join(lines[:5], "\n"), "the action got the key opened, the pack key, the system default, and no user key")
	require.Equal(t, "got ["+pack.Mask+"] [] []\n", result(t, exec)["stdout"], "the echo of the opened value is scrubbed")
	// Its API token: the worker's --worker-api-url, and a token known to the database by its
	// SHA-256 alone, scrubbed from the action's output.
	tokenSum, _ := strings.CutPrefix(lines[5], "api "+apiURL+" ")
	require.Len(t, tokenSum, 64, lines[5])
	require.Equal(t, 1, queryOne[int](t, dbURL, `SELECT count(*)::int FROM attune.execution_token WHERE encode(hash, 'hex') = $1 AND execution = $2`, tokenSum, ruleExec))
	require.Equal(t, "token ["+pack.Mask+"]\n", result(t, exec)["stderr"])
	require.Equal(t, pack.Mask, exec["parameters"].(map[string]any)["auth"], "a parameter a secret key went into is masked")
	code, body = api.get(t, "/api/v1/keys/pack.keys/last_out")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "rule", data(t, body)["value"], "the action wrote its pack's key back with its token")

	// A workflow: its task's input reads the secret key; its output does too.
	code, body = api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "keys.flow",
		"parameters": map[string]any{"out": filepath.Join(dir, "flow")}})
	require.Equal(t, http.StatusCreated, code, body)
	flow := api.waitExecution(t, id(t, data(t, body), "id"))
	require.Equal(t, "completed", flow["status"], flow)
	require.Equal(t, map[string]any{"sent": pack.Mask}, flow["result"])
	require.Contains(t, readOut("flow"), "auth "+sha(kvSystemSecret)+"\n")
	require.Contains(t, readOut("flow"), "url https://api.example/v2\n")
	require.Contains(t, readOut("flow"), "who "+sha(kvUserSecret)+"\n", "the task runs as its workflow's requester")

	// The CLI: a secret parameter, and the default reading the requester's own user key.
	stdout, stderr, code := api.cli(t, "action", "execute", "keys.show", "--param", "token="+kvCLISecret,
		"--param", "out="+filepath.Join(dir, "cli"), "--wait", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var cliExec map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &cliExec))
	require.Equal(t, "completed", cliExec["status"], cliExec)
	require.True(t, strings.HasPrefix(readOut("cli"), "auth "+sha("")+"\ntoken "+sha(kvCLISecret)+"\nwho "+sha(kvUserSecret)+"\nurl \nregion eu-west-3\n"), readOut("cli"))
	require.Equal(t, map[string]any{"kind": "identity", "identity": "admin", "identity_id": float64(admin)}, cliExec["requested_by"])

	// A caller cannot hand the worker a sealed value to open: sealed values come from Attune.
	other, err := seal.NewKey()
	require.NoError(t, err)
	others, err := seal.NewKeyring(other)
	require.NoError(t, err)
	foreign, err := others.SealValue(json.RawMessage(`"from-elsewhere"`))
	require.NoError(t, err)
	code, body = api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "keys.show",
		"parameters": map[string]any{"token": foreign, "out": filepath.Join(dir, "foreign")}})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, fmt.Sprint(body), "parameters.token: holds a sealed value")

	// A key sealed under a key this installation lacks: the worker refuses to run the action
	// with it, naming the key, and the action never starts.
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `UPDATE attune.key SET sealed = $1 WHERE name = 'api_token'`, foreign)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	code, body = api.post(t, "/api/v1/webhooks/keys", map[string]any{"out": filepath.Join(dir, "stale")})
	require.Equal(t, http.StatusAccepted, code, body)
	stale := api.waitExecution(t, api.executionOf(t, "keys.on_hook", id(t, data(t, body), "event_id")))
	require.Equal(t, "failed", stale["status"], stale)
	require.Contains(t, stale["reason"], "the action did not start: open the sealed parameters: sealed with an encryption key that is not configured (key id "+other.ID()+")")
	require.NoFileExists(t, filepath.Join(dir, "stale"))

	// The live stream carried every change up to the last execution's end.
	var streamed strings.Builder
	live.next(func(ev streamEvent) bool {
		streamed.WriteString(ev.name + " " + jsonText(t, ev.data) + "\n")
		return executionEvent(int64(stale["id"].(float64)))(ev) && ev.data["status"] == "failed"
	})
	require.Contains(t, streamed.String(), fmt.Sprintf(`"id":%d`, ruleExec))
	require.Contains(t, streamed.String(), `"text":"got [`+pack.Mask+`] [] []\n"`, "the live output carried the echo, scrubbed")

	for _, p := range procs {
		p.stop(t, syscall.SIGTERM, 30*time.Second)
	}
	dump := dumpDatabase(t, dbURL)
	require.Contains(t, dump, seal.Prefix, "the dump holds the sealed values")
	messages := captured.all()
	require.Contains(t, messages, "ExecutionDispatched", "the capture holds the run's messages")
	var logs strings.Builder
	for _, p := range procs {
		logs.WriteString(p.output())
	}
	require.Contains(t, logs.String(), `"msg":"execution finished"`, "the capture holds the roles' debug log")
	for what, text := range map[string]string{"the database": dump, "a message": messages, "a log": logs.String(),
		"the live stream": streamed.String(), "the CLI": stdout + stderr} {
		for _, secret := range kvSecrets {
			// Not require.NotContains: it would print the whole dump.
			require.Falsef(t, strings.Contains(text, secret), "%s holds %s in clear", what, secret)
		}
	}
}
