package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// The secret values of the tests below: each must never appear in an answer or a log line.
const (
	execToken   = "exec-token-5f1c9e"
	defaultKey  = "default-key-77ab01"
	goldTier    = "gold-tier-3e8d2a"
	silverTier  = "silver-tier-91c4f0"
	ruleToken   = "rule-token-c0ffee"
	configToken = "config-token-b3a7d9"
)

var allSecrets = []string{execToken, defaultKey, goldTier, silverTier, ruleToken, configToken}

// vaultParameters is the schema of vault.deploy: token, api_key (with a default) and tier
// (with an enum) are secret, host is not.
const vaultParameters = `{
	"token": {"type": "string", "required": true, "secret": true},
	"api_key": {"type": "string", "default": "` + defaultKey + `", "secret": true},
	"tier": {"type": "string", "enum": ["` + goldTier + `", "` + silverTier + `"], "secret": true},
	"host": {"type": "string"}}`

// newVaultServer is the API over real HTTP, logging at debug level into the returned buffer,
// on a database holding the pack vault: the action vault.deploy (vaultParameters) under the
// policy vault.one_per_token, which groups by the secret token, and the rule vault.on_hook,
// whose literal action_params give token ruleToken.
func newVaultServer(t *testing.T) (server, *syncBuffer) {
	t.Helper()
	st := storetest.NewStore(t)
	_, err := st.PackRegister(context.Background(), store.PackRegistration{
		Pack:     store.Pack{Ref: "vault", Path: "/packs/vault"},
		Triggers: []store.Trigger{{Ref: "vault.hook", Enabled: true}},
		Actions: []store.Action{{Ref: "vault.deploy", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: true,
			Parameters: json.RawMessage(vaultParameters)}},
		Rules: []store.Rule{{Ref: "vault.on_hook", TriggerRef: "vault.hook", ActionRef: "vault.deploy", Enabled: true,
			ActionParams: json.RawMessage(`{"token": "` + ruleToken + `", "host": "rule-host"}`)}},
		Policies: []store.Policy{{Ref: "vault.one_per_token", ActionRef: ptr("vault.deploy"), Enabled: true,
			ConcurrencyLimit: ptr(1), ConcurrencyParameters: []string{"token"}}},
	})
	require.NoError(t, err)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return startAPILogged(t, st, membroker.New(broker.Options{}), api.Config{}, logger), logs
}

// requireHidden fails when any secret value appears anywhere in v, as JSON.
func requireHidden(t *testing.T, what string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	for _, secret := range allSecrets {
		require.NotContains(t, string(b), secret, "%s shows a secret", what)
	}
}

// requireMasked checks that each of names in obj (an object of an answer) is the mask.
func requireMasked(t *testing.T, what string, obj any, names ...string) {
	t.Helper()
	m, ok := obj.(map[string]any)
	require.True(t, ok, "%s: not an object: %v", what, obj)
	for _, name := range names {
		require.Equal(t, pack.Mask, m[name], "%s: %s", what, name)
	}
}

// Every answer that carries a secret parameter's value shows it masked, to every role: an
// execution (execute, get, list, cancel), an action's default and enum values, a rule's
// literal action_params, an enforcement's rendered config and the queue a policy groups by
// a secret; errors about a secret value do not quote it; nothing is logged in clear. The
// execution's row holds its secret values sealed, for the worker to open.
func TestSecretsMaskedForEveryRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, logs := newVaultServer(t)
	operator := admin.as(admin.newIdentity("opal", "operator"))
	viewer := admin.as(admin.newIdentity("vic", "viewer"))

	exec := operator.data(http.StatusCreated, http.MethodPost, "/executions/execute",
		`{"action_ref": "vault.deploy", "parameters": {"token": "`+execToken+`", "tier": "`+goldTier+`", "host": "h1"}}`)
	requireHidden(t, "the answer of execute", exec)
	requireMasked(t, "the answer of execute", exec["parameters"], "token", "api_key", "tier")
	require.Equal(t, "h1", exec["parameters"].(map[string]any)["host"], "what is not secret is shown")

	id := int64(exec["id"].(float64))
	row, err := admin.s.ExecutionGet(ctx, id)
	require.NoError(t, err)
	requireHidden(t, "the execution's row", row.Parameters)
	opened, _, err := admin.keys.OpenJSON(row.Parameters)
	require.NoError(t, err)
	require.JSONEq(t, `{"token": "`+execToken+`", "api_key": "`+defaultKey+`", "tier": "`+goldTier+`", "host": "h1"}`, string(opened),
		"the row holds the values sealed, which the worker opens for the action")
	require.Equal(t, []string{"api_key", "tier", "token"}, row.Secrets)

	require.Equal(t, store.ExecutionScheduled, row.Status, "admitted as it was created, into a queue keyed by the token")

	ev, err := admin.s.EventInsert(ctx, store.EventInsertParams{TriggerRef: "vault.hook", Payload: json.RawMessage(`{}`)})
	require.NoError(t, err)
	enf, _, err := admin.s.EnforcementInsert(ctx, store.EnforcementInsertParams{RuleRef: "vault.on_hook", TriggerRef: "vault.hook",
		EventID: ev.ID, Config: json.RawMessage(`{"token": "` + configToken + `", "host": "h2"}`), Secrets: []string{"token"}})
	require.NoError(t, err)

	for name, s := range map[string]server{"admin": admin, "operator": operator, "viewer": viewer} {
		got := s.data(http.StatusOK, http.MethodGet, fmt.Sprintf("/executions/%d", id), "")
		requireHidden(t, name+": GET /executions/{id}", got)
		requireMasked(t, name+": GET /executions/{id}", got["parameters"], "token", "api_key", "tier")

		status, list := s.do(http.MethodGet, "/executions", "")
		require.Equal(t, http.StatusOK, status)
		requireHidden(t, name+": GET /executions", list)
		requireMasked(t, name+": GET /executions", list["data"].([]any)[0].(map[string]any)["parameters"], "token")

		action := s.data(http.StatusOK, http.MethodGet, "/actions/vault.deploy", "")
		requireHidden(t, name+": GET /actions/{ref}", action)
		params := action["parameters"].(map[string]any)
		require.Equal(t, pack.Mask, params["api_key"].(map[string]any)["default"], name)
		require.Equal(t, []any{pack.Mask, pack.Mask}, params["tier"].(map[string]any)["enum"], name)
		require.Equal(t, map[string]any{"type": "string"}, params["host"], name)
		status, list = s.do(http.MethodGet, "/actions", "")
		require.Equal(t, http.StatusOK, status)
		requireHidden(t, name+": GET /actions", list)

		rule := s.data(http.StatusOK, http.MethodGet, "/rules/vault.on_hook", "")
		requireHidden(t, name+": GET /rules/{ref}", rule)
		require.Equal(t, map[string]any{"token": pack.Mask, "host": "rule-host"}, rule["action_params"], name)
		status, list = s.do(http.MethodGet, "/rules", "")
		require.Equal(t, http.StatusOK, status)
		requireHidden(t, name+": GET /rules", list)

		got = s.data(http.StatusOK, http.MethodGet, fmt.Sprintf("/enforcements/%d", enf.ID), "")
		requireHidden(t, name+": GET /enforcements/{id}", got)
		require.Equal(t, map[string]any{"token": pack.Mask, "host": "h2"}, got["config"], name)
		status, list = s.do(http.MethodGet, "/enforcements", "")
		require.Equal(t, http.StatusOK, status)
		requireHidden(t, name+": GET /enforcements", list)

		stats := s.data(http.StatusOK, http.MethodGet, "/actions/vault.deploy/queue-stats", "")
		requireHidden(t, name+": GET /actions/{ref}/queue-stats", stats)
		require.Equal(t, `["`+pack.Mask+`"]`, stats["groups"].([]any)[0].(map[string]any)["key"], name)
	}

	// The answers of the writes an admin or an operator makes are masked too.
	rule := admin.data(http.StatusOK, http.MethodPost, "/rules/vault.on_hook/disable", "")
	requireHidden(t, "the answer of disable", rule)
	cancelled := operator.data(http.StatusOK, http.MethodPost, fmt.Sprintf("/executions/%d/cancel", id), "")
	requireHidden(t, "the answer of cancel", cancelled)
	requireMasked(t, "the answer of cancel", cancelled["parameters"], "token")

	// A value refused by the schema is not quoted back, whether its type or its value is wrong.
	for _, params := range []string{`{"token": 4242424242}`, `{"token": "t", "tier": "platinum-tier-55aa"}`} {
		msg := operator.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/executions/execute",
			`{"action_ref": "vault.deploy", "parameters": `+params+`}`)
		require.NotContains(t, msg, "4242424242")
		require.NotContains(t, msg, "platinum-tier-55aa")
	}

	out := logs.String()
	require.Contains(t, out, "rule enabled set", "the capture holds the server's log")
	for _, secret := range append(allSecrets, "4242424242", "platinum-tier-55aa") {
		require.NotContains(t, out, secret, "the log shows a secret")
	}
}

// A rerun copies the original's secret values without the caller seeing them, keeps one the
// caller sends back as the mask, and keeps them masked even when the action no longer calls
// them secret: an execution is masked by the names recorded when it was created.
func TestRerunKeepsSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, logs := newVaultServer(t)
	operator := admin.as(admin.newIdentity("opal", "operator"))
	viewer := admin.as(admin.newIdentity("vic", "viewer"))

	orig := operator.data(http.StatusCreated, http.MethodPost, "/executions/execute",
		`{"action_ref": "vault.deploy", "parameters": {"token": "`+execToken+`", "host": "h1"}}`)
	rerun := func(body string) store.Execution {
		t.Helper()
		got := operator.data(http.StatusCreated, http.MethodPost, executionPath(orig["id"], "/rerun"), body)
		requireHidden(t, "the answer of rerun", got)
		requireMasked(t, "the answer of rerun", got["parameters"], "token", "api_key")
		row, err := admin.s.ExecutionGet(ctx, int64(got["id"].(float64)))
		require.NoError(t, err)
		require.Contains(t, row.Secrets, "token")
		return row
	}
	token := func(e store.Execution) any {
		requireHidden(t, "a rerun's row", e.Parameters)
		opened, _, err := admin.keys.OpenJSON(e.Parameters)
		require.NoError(t, err)
		var params map[string]any
		require.NoError(t, json.Unmarshal(opened, &params))
		return params["token"]
	}

	require.Equal(t, execToken, token(rerun("")), "the original's secret, unseen")
	require.Equal(t, execToken, token(rerun(`{"parameters": {"token": "`+pack.Mask+`"}}`)), "the mask sent back keeps it")
	require.Equal(t, "new-token-0a0b0c", token(rerun(`{"parameters": {"token": "new-token-0a0b0c"}}`)), "a new value replaces it")

	// The action stops calling token secret: the original, recorded with it secret, stays
	// masked, and so does a rerun that copies its value.
	admin.data(http.StatusOK, http.MethodPut, "/actions/vault.deploy",
		`{"runner_type": "noop", "parameters": {"token": {"type": "string"}, "host": {"type": "string"}, "api_key": {"type": "string"}}}`)
	got := viewer.data(http.StatusOK, http.MethodGet, executionPath(orig["id"], ""), "")
	requireMasked(t, "the original after its action changed", got["parameters"], "token", "api_key")
	require.Equal(t, execToken, token(rerun("")))

	// Nor does an error about a value given anew quote it when the action no longer takes it
	// as it was. (The rule's literal token would no longer fit either: it goes first.) The
	// copied value is sealed, known only to the worker, and not checked here.
	code, _ := admin.do(http.MethodDelete, "/rules/vault.on_hook", "")
	require.Equal(t, http.StatusNoContent, code)
	admin.data(http.StatusOK, http.MethodPut, "/actions/vault.deploy",
		`{"runner_type": "noop", "parameters": {"token": {"type": "integer"}, "host": {"type": "string"}, "api_key": {"type": "string"}}}`)
	msg := operator.fail(http.StatusBadRequest, "bad_request", http.MethodPost, executionPath(orig["id"], "/rerun"),
		`{"parameters": {"token": "`+execToken+`"}}`)
	require.Contains(t, msg, `parameter "token"`)
	require.NotContains(t, msg, execToken)

	for _, secret := range []string{execToken, "new-token-0a0b0c"} {
		require.NotContains(t, logs.String(), secret)
	}
}

// A rule or an action read through the API and written back as shown keeps its secret
// values: the mask stands for "unchanged".
func TestMaskWrittenBackKeepsSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin, _ := newVaultServer(t)

	rule := admin.data(http.StatusOK, http.MethodGet, "/rules/vault.on_hook", "")
	body, err := json.Marshal(map[string]any{"trigger_ref": rule["trigger_ref"], "action_ref": rule["action_ref"],
		"action_params": rule["action_params"], "label": "relabelled"})
	require.NoError(t, err)
	updated := admin.data(http.StatusOK, http.MethodPut, "/rules/vault.on_hook", string(body))
	requireHidden(t, "the answer of a rule update", updated)
	stored, err := admin.s.RuleGetByRef(ctx, "vault.on_hook")
	require.NoError(t, err)
	require.JSONEq(t, `{"token": "`+ruleToken+`", "host": "rule-host"}`, string(stored.ActionParams))
	require.Equal(t, "relabelled", stored.Label)

	action := admin.data(http.StatusOK, http.MethodGet, "/actions/vault.deploy", "")
	body, err = json.Marshal(map[string]any{"runner_type": action["runner_type"], "parameters": action["parameters"],
		"description": "redescribed"})
	require.NoError(t, err)
	updated = admin.data(http.StatusOK, http.MethodPut, "/actions/vault.deploy", string(body))
	requireHidden(t, "the answer of an action update", updated)
	a, err := admin.s.ActionGetByRef(ctx, "vault.deploy")
	require.NoError(t, err)
	require.JSONEq(t, vaultParameters, string(a.Parameters))
	require.Equal(t, "redescribed", a.Description)

	// A new value is taken as it is.
	updated = admin.data(http.StatusOK, http.MethodPut, "/rules/vault.on_hook",
		`{"trigger_ref": "vault.hook", "action_ref": "vault.deploy", "action_params": {"token": "other-token-1234"}}`)
	require.Equal(t, map[string]any{"token": pack.Mask}, updated["action_params"])
	stored, err = admin.s.RuleGetByRef(ctx, "vault.on_hook")
	require.NoError(t, err)
	require.True(t, strings.Contains(string(stored.ActionParams), "other-token-1234"))
}
