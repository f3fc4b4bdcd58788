package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
	"github.com/attune-go/attune/store/storetest"
)

// testKeyring seals the secret keys of every test server.
var testKeyring = func() *seal.Keyring {
	k, err := seal.NewKey()
	if err != nil {
		panic(err)
	}
	r, err := seal.NewKeyring(k)
	if err != nil {
		panic(err)
	}
	return r
}()

const keySecret = "s3cret-datastore-value"

// newKeyServer is the API logging at debug level into the returned buffer, with a viewer
// (vera), an operator (otto) and another viewer (walt), and a secret and a plain key in the
// scopes system and pack.demo.
func newKeyServer(t *testing.T, cfg api.Config) (s server, logs *syncBuffer, vera, otto, walt string) {
	t.Helper()
	st := storetest.NewStore(t)
	logs = &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s = startAPILogged(t, st, membroker.New(broker.Options{}), cfg, logger)
	vera, otto, walt = s.newIdentity("vera", "viewer"), s.newIdentity("otto", "operator"), s.newIdentity("walt", "viewer")
	for _, scope := range []string{"system", "pack.demo"} {
		s.data(http.StatusCreated, http.MethodPut, "/keys/"+scope+"/token", `{"value": "`+keySecret+`", "secret": true}`)
		s.data(http.StatusCreated, http.MethodPut, "/keys/"+scope+"/limit", `{"value": {"n": 3}}`)
	}
	return s, logs, vera, otto, walt
}

// Who may read, write and decrypt what: every role reads system and pack keys, a secret one
// masked; operators and admins write them; everyone reads and writes their own user keys and
// never another's; only admins decrypt system and pack secrets, and owners their user keys.
func TestKeyRoles(t *testing.T) {
	t.Parallel()
	s, logs, vera, otto, walt := newKeyServer(t, api.Config{})
	for _, who := range []string{s.token, otto, vera} {
		as := s.as(who)
		for _, scope := range []string{"system", "pack.demo"} {
			k := as.data(http.StatusOK, http.MethodGet, "/keys/"+scope+"/token", "")
			require.Equal(t, "********", k["value"])
			require.Equal(t, true, k["secret"])
			require.Equal(t, map[string]any{"n": 3.0}, as.data(http.StatusOK, http.MethodGet, "/keys/"+scope+"/limit", "")["value"])
			plain := as.data(http.StatusOK, http.MethodGet, "/keys/"+scope+"/limit?decrypt=true", "")
			require.Equal(t, map[string]any{"n": 3.0}, plain["value"], "decrypt of a plain key is a plain read")
		}
		_, out := as.do(http.MethodGet, "/keys", "")
		requireNoSecret(t, out)
	}

	// Decrypting system and pack secrets is the admins'.
	for _, scope := range []string{"system", "pack.demo"} {
		require.Equal(t, keySecret, s.data(http.StatusOK, http.MethodGet, "/keys/"+scope+"/token?decrypt=true", "")["value"])
		msg := s.as(otto).fail(http.StatusForbidden, "forbidden", http.MethodGet, "/keys/"+scope+"/token?decrypt=true", "")
		require.Contains(t, msg, "needs the admin role")
		require.Contains(t, msg, "otto is operator")
		s.as(vera).fail(http.StatusForbidden, "forbidden", http.MethodGet, "/keys/"+scope+"/token?decrypt=true", "")
	}
	// Every decrypt is in the log with who and which key, never the value.
	require.Contains(t, logs.String(), `"msg":"secret key decrypted","scope":"pack.demo","name":"token","by":"admin"`)
	require.NotContains(t, logs.String(), keySecret)

	// Writes of system and pack keys are the operators' and admins'.
	s.as(otto).data(http.StatusOK, http.MethodPut, "/keys/system/limit", `{"value": 4}`)
	msg := s.as(vera).fail(http.StatusForbidden, "forbidden", http.MethodPut, "/keys/pack.demo/limit", `{"value": 5}`)
	require.Contains(t, msg, "needs the operator role")
	s.as(vera).fail(http.StatusForbidden, "forbidden", http.MethodDelete, "/keys/system/limit", "")

	// User keys: the caller's own, whoever asks.
	s.as(vera).data(http.StatusCreated, http.MethodPut, "/keys/user/mine", `{"value": "vera's `+keySecret+`", "secret": true}`)
	s.as(walt).data(http.StatusCreated, http.MethodPut, "/keys/user/mine", `{"value": "walt's"}`)
	require.Equal(t, "********", s.as(vera).data(http.StatusOK, http.MethodGet, "/keys/user/mine", "")["value"])
	require.Equal(t, "vera's "+keySecret, s.as(vera).data(http.StatusOK, http.MethodGet, "/keys/user/mine?decrypt=true", "")["value"])
	require.Equal(t, "walt's", s.as(walt).data(http.StatusOK, http.MethodGet, "/keys/user/mine?decrypt=true", "")["value"])
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/keys/user/mine", "")
	list := s.as(vera).do
	_, out := list(http.MethodGet, "/keys?scope=user", "")
	require.Len(t, out["data"], 1, "vera's own key alone: %v", out)
	_, out = list(http.MethodGet, "/keys", "")
	require.Len(t, out["data"], 5, "system's and pack.demo's two each, and vera's own: %v", out)
	requireNoSecret(t, out)
	s.as(walt).data(http.StatusOK, http.MethodPut, "/keys/user/mine", `{"value": "walt's again"}`)
	require.Equal(t, "********", s.as(vera).data(http.StatusOK, http.MethodGet, "/keys/user/mine", "")["value"], "walt's write is his own key")
	status, _ := s.as(vera).do(http.MethodDelete, "/keys/user/mine", "")
	require.Equal(t, http.StatusNoContent, status)
	require.Equal(t, "walt's again", s.as(walt).data(http.StatusOK, http.MethodGet, "/keys/user/mine", "")["value"])
}

// requireNoSecret fails when an answer holds a secret value or a seal token.
func requireNoSecret(t *testing.T, out map[string]any) {
	t.Helper()
	b, err := json.Marshal(out)
	require.NoError(t, err)
	require.NotContains(t, string(b), keySecret)
	require.NotContains(t, string(b), seal.Prefix)
}

// Bad input is 400 naming the field; a missing key 404; a list keeps to the prefix and pages.
func TestKeyValidation(t *testing.T) {
	t.Parallel()
	s, _, _, _, _ := newKeyServer(t, api.Config{})
	for _, c := range []struct{ path, body, field string }{
		{"/keys/global/x", `{"value": 1}`, "scope:"},
		{"/keys/pack.Demo/x", `{"value": 1}`, "scope:"},
		{"/keys/system/9lives", `{"value": 1}`, "name:"},
		{"/keys/system/" + strings.Repeat("x", 129), `{"value": 1}`, "name:"},
		{"/keys/system/x", `{}`, "value:"},
		{"/keys/system/x", `{"value": null}`, "value:"},
		{"/keys/system/x", `{"value": 1, "ttl": "soon"}`, "ttl:"},
		{"/keys/system/x", `{"value": 1, "ttl": "-1h"}`, "ttl:"},
		{"/keys/system/x", `{"value": 1, "ttl_seconds": 5}`, "ttl_seconds"},
		{"/keys/system/x", `{"value": {"a": ["\u0061ttune:sealed:v1:k0123456789ab:c2VhbGVk~"]}}`, "value: holds a sealed value"},
		{"/keys/system/x", `{"value": "attune:sealed:v1:k0123456789ab:c2VhbGVk~", "secret": true}`, "value: holds a sealed value"},
	} {
		msg := s.fail(http.StatusBadRequest, "bad_request", http.MethodPut, c.path, c.body)
		require.Contains(t, msg, c.field, c.path+" "+c.body)
	}
	s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/keys?scope=nope", "")
	s.fail(http.StatusBadRequest, "bad_request", http.MethodGet, "/keys/system/token?decrypt=perhaps", "")
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/keys/system/nope", "")
	s.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/keys/system/nope", "")

	_, out := s.do(http.MethodGet, "/keys?scope=system&prefix=lim", "")
	require.Len(t, out["data"], 1, "%v", out)
	_, out = s.do(http.MethodGet, "/keys?per_page=3&page=2", "")
	require.Len(t, out["data"], 1, "%v", out)
	require.Equal(t, 4.0, out["pagination"].(map[string]any)["total_items"])
}

// A key with a ttl expires then and is gone at once for every read; the sweep deletes it.
func TestKeyTTL(t *testing.T) {
	t.Parallel()
	s, _, _, _, _ := newKeyServer(t, api.Config{KeySweepInterval: 50 * time.Millisecond})
	before := time.Now()
	k := s.data(http.StatusCreated, http.MethodPut, "/keys/system/hourly", `{"value": 1, "ttl": "1h"}`)
	expires, err := time.Parse(time.RFC3339Nano, k["expires"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, before.Add(time.Hour), expires, time.Minute)
	k = s.data(http.StatusOK, http.MethodPut, "/keys/system/hourly", `{"value": 2}`)
	require.Nil(t, k["expires"], "a write without ttl keeps the key")

	s.data(http.StatusCreated, http.MethodPut, "/keys/system/brief", `{"value": 1, "ttl": "200ms"}`)
	require.Eventually(t, func() bool {
		status, _ := s.do(http.MethodGet, "/keys/system/brief", "")
		return status == http.StatusNotFound
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, s.s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM attune.key WHERE name = 'brief'`).Scan(&n))
		return n == 0
	}, 10*time.Second, 20*time.Millisecond, "the sweep deletes it")
}

// A secret sealed under a key this server lacks is a clear error naming the key id, never
// garbage; the masked read still works.
func TestKeyDecryptWithoutItsKey(t *testing.T) {
	t.Parallel()
	s, _, _, _, _ := newKeyServer(t, api.Config{})
	other, err := seal.NewKey()
	require.NoError(t, err)
	ring, err := seal.NewKeyring(other)
	require.NoError(t, err)
	sealed, err := ring.SealValue(json.RawMessage(`"elsewhere"`))
	require.NoError(t, err)
	_, _, err = s.s.KeySet(context.Background(), store.KeySetParams{KeyRef: store.KeyRef{Scope: "system", Name: "foreign"}, Secret: true, Sealed: sealed})
	require.NoError(t, err)
	require.Equal(t, "********", s.data(http.StatusOK, http.MethodGet, "/keys/system/foreign", "")["value"])
	msg := s.fail(http.StatusInternalServerError, "encryption_key", http.MethodGet, "/keys/system/foreign?decrypt=true", "")
	require.Contains(t, msg, other.ID())
	require.Contains(t, msg, "foreign")
}

// A running action's token reads and writes its own pack's keys (in clear too) and reads
// system's, and nothing else: other scopes and every other route are 403, and once its
// execution has ended the token is refused.
func TestKeyExecutionToken(t *testing.T) {
	t.Parallel()
	s, logs, _, _, _ := newKeyServer(t, api.Config{})
	ctx := context.Background()
	_, err := s.s.PackRegister(ctx, store.PackRegistration{Pack: store.Pack{Ref: "demo"},
		Actions: []store.Action{{Ref: "demo.run", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 5, Enabled: true}}})
	require.NoError(t, err)
	exec, err := s.s.ExecutionInsert(ctx, store.ExecutionInsertParams{ActionRef: "demo.run"})
	require.NoError(t, err)
	_, _, err = s.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"requested"}, To: "running"})
	require.NoError(t, err)
	token, err := s.s.ExecutionTokenIssue(ctx, exec.ID, time.Hour)
	require.NoError(t, err)
	action := s.as(token)

	require.Equal(t, keySecret, action.data(http.StatusOK, http.MethodGet, "/keys/pack.demo/token?decrypt=true", "")["value"])
	action.data(http.StatusCreated, http.MethodPut, "/keys/pack.demo/cursor", `{"value": 42}`)
	action.data(http.StatusOK, http.MethodPut, "/keys/pack.demo/cursor", `{"value": 43, "secret": true}`)
	require.Equal(t, 43.0, s.data(http.StatusOK, http.MethodGet, "/keys/pack.demo/cursor?decrypt=true", "")["value"])
	require.Equal(t, map[string]any{"n": 3.0}, action.data(http.StatusOK, http.MethodGet, "/keys/system/limit", "")["value"])
	require.Equal(t, "********", action.data(http.StatusOK, http.MethodGet, "/keys/system/token", "")["value"])
	msg := action.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/keys/system/token?decrypt=true", "")
	require.Contains(t, msg, "execution "+strconv.FormatInt(exec.ID, 10)+" of pack demo")
	action.fail(http.StatusForbidden, "forbidden", http.MethodPut, "/keys/system/limit", `{"value": 1}`)
	action.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/keys/pack.other/x", "")
	action.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/keys/user/x", "")
	action.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/keys?scope=pack.other", "")
	_, out := action.do(http.MethodGet, "/keys", "")
	require.Len(t, out["data"], 5, "pack.demo's three and system's two: %v", out)
	msg = action.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/executions", "")
	require.Contains(t, msg, "good for /api/v1/keys only")
	action.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/whoami", "")
	require.Contains(t, logs.String(), `"by":"execution `+strconv.FormatInt(exec.ID, 10)+` of pack demo"`)

	_, _, err = s.s.ExecutionTransition(ctx, store.ExecutionTransition{ID: exec.ID, From: []string{"running"}, To: "completed"})
	require.NoError(t, err)
	action.fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/keys/pack.demo/cursor", "")
	action.as("atx_unknown").fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/keys", "")
}

// A running sensor's token reads and writes its own pack's keys, like a running action's, and
// nothing else; once its replica gave the lease back the token is refused.
func TestKeySensorToken(t *testing.T) {
	t.Parallel()
	s, _, _, _, _ := newKeyServer(t, api.Config{})
	ctx := context.Background()
	_, err := s.s.PackRegister(ctx, store.PackRegistration{Pack: store.Pack{Ref: "watch"},
		Sensors: []store.Sensor{{Ref: "watch.poll", EntryPoint: "poll.sh", TriggerRefs: []string{"core.webhook"}, Enabled: true}}})
	require.NoError(t, err)
	token, ok, err := s.s.SensorLeaseTake(ctx, "watch.poll", "replica-1", time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	sensor := s.as(token)

	sensor.data(http.StatusCreated, http.MethodPut, "/keys/pack.watch/cursor", `{"value": 42}`)
	require.Equal(t, 42.0, sensor.data(http.StatusOK, http.MethodGet, "/keys/pack.watch/cursor", "")["value"])
	msg := sensor.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/keys/pack.other/x", "")
	require.Contains(t, msg, "sensor watch.poll of pack watch")
	sensor.fail(http.StatusForbidden, "forbidden", http.MethodPut, "/keys/system/x", `{"value": 1}`)
	sensor.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/sensors", "")

	require.NoError(t, s.s.SensorLeaseRelease(ctx, "watch.poll", "replica-1"))
	sensor.fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/keys/pack.watch/cursor", "")
}
