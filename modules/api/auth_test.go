package api_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker"
	"github.com/attune-go/attune/broker/membroker"
	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/modules/pack"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// newIdentity creates an identity through the API and logs it in.
func (s server) newIdentity(login, role string) string {
	s.t.Helper()
	s.data(http.StatusCreated, http.MethodPost, "/identities",
		`{"login": "`+login+`", "password": "pw-`+login+`-long", "role": "`+role+`"}`)
	return s.login(login, "pw-"+login+"-long")
}

func TestLogin(t *testing.T) {
	t.Parallel()
	s := newServer(t)

	status, out := s.raw(http.MethodPost, s.root+"/auth/login", "", `{"login": "admin", "password": "`+adminPassword+`"}`)
	require.Equal(t, http.StatusOK, status, out)
	require.Equal(t, "Bearer", out["token_type"])
	require.EqualValues(t, 3600, out["expires_in"])
	require.NotEmpty(t, out["refresh_token"])

	for name, body := range map[string]string{
		"wrong password": `{"login": "admin", "password": "not-the-password"}`,
		"unknown login":  `{"login": "nobody", "password": "` + adminPassword + `"}`,
	} {
		status, out := s.raw(http.MethodPost, s.root+"/auth/login", "", body)
		require.Equal(t, http.StatusUnauthorized, status, name)
		require.Equal(t, "invalid login or password", out["error"].(map[string]any)["message"], name, "the same answer, so logins cannot be guessed")
	}
	status, out = s.raw(http.MethodPost, s.root+"/auth/login", "", `{"login": "admin"}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, out["error"].(map[string]any)["message"], "password")

	// The access token works; a refresh token does not stand in for it.
	require.Equal(t, "admin", s.as(out2(t, s, "access_token")).data(http.StatusOK, http.MethodGet, "/whoami", "")["login"])
	s.as(out2(t, s, "refresh_token")).fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/whoami", "")
}

// out2 logs in as the admin and returns one field of the answer.
func out2(t *testing.T, s server, field string) string {
	t.Helper()
	status, out := s.raw(http.MethodPost, s.root+"/auth/login", "", `{"login": "admin", "password": "`+adminPassword+`"}`)
	require.Equal(t, http.StatusOK, status, out)
	return out[field].(string)
}

// registerCore adds the built-in core pack, whose core.webhook trigger webhooks fire.
func registerCore(t *testing.T, s server) {
	t.Helper()
	core, err := pack.Core()
	require.NoError(t, err)
	_, err = pack.Register(context.Background(), s.s, core)
	require.NoError(t, err)
}

func TestNoTokenIsUnauthorized(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	registerCore(t, s)
	req, err := http.NewRequest(http.MethodGet, s.base+"/packs", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, `Bearer realm="attune"`, resp.Header.Get("WWW-Authenticate"))

	s.as("").fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/executions", "")
	s.as("not.a.jwt").fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/executions", "")
	s.as("atn_unknown").fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/executions", "")
	// Open routes stay open.
	status, _ := s.as("").do(http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, status)
	listenOn(t, s, "anything")
	status, _ = s.as("").do(http.MethodPost, "/webhooks/anything", `{}`)
	require.Equal(t, http.StatusAccepted, status)
}

// An expired access token says so, so that a client knows to refresh; the refresh token buys
// a new pair.
func TestExpiredAccessToken(t *testing.T) {
	t.Parallel()
	s := startAPI(t, storetest.NewStore(t), membroker.New(broker.Options{}), api.Config{AccessTTL: -time.Minute})
	s.fail(http.StatusUnauthorized, "token_expired", http.MethodGet, "/whoami", "")
	status, out := s.raw(http.MethodPost, s.root+"/auth/refresh", "", `{"refresh_token": "`+out2(t, s, "refresh_token")+`"}`)
	require.Equal(t, http.StatusOK, status, out)
	require.NotEmpty(t, out["access_token"])
	status, _ = s.raw(http.MethodPost, s.root+"/auth/refresh", "", `{"refresh_token": "`+out2(t, s, "access_token")+`"}`)
	require.Equal(t, http.StatusUnauthorized, status, "an access token is no refresh token")
}

// Each role may do what the roles below it may, and no more: 403 says which role a route
// needs.
func TestRoles(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	viewer := s.as(s.newIdentity("vera", "viewer"))
	operator := s.as(s.newIdentity("otto", "operator"))

	viewer.data(http.StatusOK, http.MethodGet, "/actions/demo.free", "")
	msg := viewer.fail(http.StatusForbidden, "forbidden", http.MethodPost, "/executions/execute", `{"action_ref": "demo.free"}`)
	require.Equal(t, "POST /api/v1/executions/execute needs the operator role; vera is viewer", msg)

	exec := operator.data(http.StatusCreated, http.MethodPost, "/executions/execute", `{"action_ref": "demo.free"}`)
	operator.data(http.StatusOK, http.MethodPost, "/executions/"+strconv.Itoa(int(exec["id"].(float64)))+"/cancel", "")
	operator.fail(http.StatusForbidden, "forbidden", http.MethodPost, "/policies", `{"ref": "demo.p", "action_ref": "demo.free", "concurrency": {"limit": 1}}`)
	operator.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/identities", "")
	s.data(http.StatusCreated, http.MethodPost, "/policies", `{"ref": "demo.p", "action_ref": "demo.free", "concurrency": {"limit": 1}}`)

	// A role taken away applies to tokens already issued.
	s.data(http.StatusOK, http.MethodPut, "/identities/otto", `{"role": "viewer"}`)
	operator.fail(http.StatusForbidden, "forbidden", http.MethodPost, "/executions/execute", `{"action_ref": "demo.free"}`)
}

func TestIdentities(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/identities", `{"login": "bad login", "password": "long-enough", "role": "viewer"}`)
	require.Contains(t, s.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/identities", `{"login": "ann", "password": "short", "role": "viewer"}`), "password")
	require.Contains(t, s.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/identities", `{"login": "ann", "password": "long-enough", "role": "root"}`), "role")
	s.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/identities", `{"login": "ann", "password": "long-enough", "role": "viewer", "extra": 1}`)

	ann := s.data(http.StatusCreated, http.MethodPost, "/identities", `{"login": "ann", "password": "long-enough", "role": "viewer"}`)
	require.Equal(t, map[string]any{"id": ann["id"], "login": "ann", "role": "viewer", "created": ann["created"], "updated": ann["updated"]}, ann,
		"no password hash in the answer")
	s.fail(http.StatusConflict, "conflict", http.MethodPost, "/identities", `{"login": "ann", "password": "long-enough", "role": "viewer"}`)
	status, list := s.do(http.MethodGet, "/identities", "")
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 2, list["pagination"].(map[string]any)["total_items"])
	s.fail(http.StatusNotFound, "not_found", http.MethodGet, "/identities/nobody", "")
	s.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/identities/nobody", "")

	// Everyone changes their own password, which ends the tokens issued before; nobody but
	// an admin changes anyone else or a role.
	annToken := s.login("ann", "long-enough")
	s.as(annToken).fail(http.StatusForbidden, "forbidden", http.MethodPut, "/identities/ann", `{"role": "admin"}`)
	s.as(annToken).fail(http.StatusForbidden, "forbidden", http.MethodPut, "/identities/admin", `{"password": "taken-over-now"}`)
	s.as(annToken).data(http.StatusOK, http.MethodPut, "/identities/ann", `{"password": "a-new-password", "current_password": "long-enough"}`)
	s.as(annToken).fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/whoami", "")
	status, _ = s.raw(http.MethodPost, s.root+"/auth/login", "", `{"login": "ann", "password": "long-enough"}`)
	require.Equal(t, http.StatusUnauthorized, status)
	annToken = s.login("ann", "a-new-password")

	// The last admin stays one.
	require.Contains(t, s.fail(http.StatusConflict, "conflict", http.MethodDelete, "/identities/admin", ""), "last admin")
	require.Contains(t, s.fail(http.StatusConflict, "conflict", http.MethodPut, "/identities/admin", `{"role": "operator"}`), "last admin")

	// A deleted identity's tokens stop at once.
	s.data(http.StatusOK, http.MethodGet, "/whoami", "")
	status, _ = s.do(http.MethodDelete, "/identities/ann", "")
	require.Equal(t, http.StatusNoContent, status)
	s.as(annToken).fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/whoami", "")
}

func TestAPITokens(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	created := s.data(http.StatusCreated, http.MethodPost, "/tokens", `{"name": "ci"}`)
	secret := created["token"].(string)
	require.True(t, strings.HasPrefix(secret, "atn_"), secret)
	require.Equal(t, "admin", s.as(secret).data(http.StatusOK, http.MethodGet, "/whoami", "")["role"])

	status, list := s.do(http.MethodGet, "/tokens", "")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list["data"], 1)
	require.NotContains(t, list["data"].([]any)[0], "token", "the secret is shown once only")
	require.NotContains(t, mustJSON(t, list), secret)

	// A token makes no tokens, lest it outlive itself, and revokes none but itself.
	s.as(secret).fail(http.StatusForbidden, "forbidden", http.MethodPost, "/tokens", `{"name": "child"}`)

	// A token acts with a smaller role when asked, never a larger one.
	readOnly := s.data(http.StatusCreated, http.MethodPost, "/tokens", `{"name": "dash", "role": "viewer"}`)["token"].(string)
	status, _ = s.as(readOnly).do(http.MethodGet, "/executions", "")
	require.Equal(t, http.StatusOK, status)
	s.as(readOnly).fail(http.StatusForbidden, "forbidden", http.MethodPost, "/executions/execute", `{"action_ref": "demo.free"}`)
	s.as(readOnly).fail(http.StatusForbidden, "forbidden", http.MethodDelete, "/tokens/"+strconv.Itoa(int(created["id"].(float64))), "")
	// A viewer-scoped token of the admin cannot take the admin over by changing the password.
	require.Contains(t, s.as(readOnly).fail(http.StatusBadRequest, "bad_request", http.MethodPut, "/identities/admin", `{"password": "taken-over-now"}`),
		"current_password")
	s.as(readOnly).fail(http.StatusForbidden, "forbidden", http.MethodPut, "/identities/admin", `{"password": "taken-over-now", "current_password": "a-guess-at-it"}`)
	vera := s.as(s.newIdentity("vera", "viewer"))
	require.Contains(t, vera.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/tokens", `{"role": "admin"}`), "more than your own role")
	s.fail(http.StatusBadRequest, "bad_request", http.MethodPost, "/tokens", `{"expires_at": "2001-01-01T00:00:00Z"}`)

	// People see and revoke only their own; an admin revokes anyone's.
	veraToken := vera.data(http.StatusCreated, http.MethodPost, "/tokens", `{"name": "mine"}`)
	veraID := strconv.Itoa(int(veraToken["id"].(float64)))
	vera.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/tokens/"+strconv.Itoa(int(created["id"].(float64))), "")
	vera.fail(http.StatusForbidden, "forbidden", http.MethodGet, "/tokens?all=true", "")
	status, all := s.do(http.MethodGet, "/tokens?all=true", "")
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 3, all["pagination"].(map[string]any)["total_items"])
	revoked := s.data(http.StatusOK, http.MethodDelete, "/tokens/"+veraID, "")
	require.NotNil(t, revoked["revoked_at"])
	s.as(veraToken["token"].(string)).fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/whoami", "")
	s.data(http.StatusOK, http.MethodDelete, "/tokens/"+veraID, "") // again: nothing changes
	s.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/tokens/999999", "")

	// An expired token is refused like a revoked one.
	raw := "atn_expired-token-for-the-test"
	sum := sha256.Sum256([]byte(raw))
	past := time.Now().Add(-time.Minute)
	_, err := s.s.TokenInsert(context.Background(), store.TokenInsertParams{IdentityID: 1, Prefix: raw[:10], SecretSHA256: sum[:], ExpiresAt: &past})
	require.NoError(t, err)
	s.as(raw).fail(http.StatusUnauthorized, "unauthorized", http.MethodGet, "/whoami", "")
}

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// A webhook url with a secret takes only bodies signed with it.
func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	registerCore(t, s)
	const secret = "a-webhook-secret-of-enough-length"
	body := `{"kind": "push"}`
	post := func(signature string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, s.base+"/webhooks/github", strings.NewReader(body))
		require.NoError(t, err)
		if signature != "" {
			req.Header.Set("X-Hub-Signature-256", signature)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	listenOn(t, s, "github")
	status, _ := post("")
	require.Equal(t, http.StatusAccepted, status, "no secret: open")

	s.fail(http.StatusBadRequest, "bad_request", http.MethodPut, "/webhook-secrets/github", `{"secret": "short"}`)
	s.data(http.StatusCreated, http.MethodPut, "/webhook-secrets/github", `{"secret": "`+secret+`"}`)
	s.data(http.StatusOK, http.MethodPut, "/webhook-secrets/github", `{"secret": "`+secret+`"}`)
	status, list := s.do(http.MethodGet, "/webhook-secrets", "")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, mustJSON(t, list), secret)
	require.Equal(t, "github", list["data"].([]any)[0].(map[string]any)["url"])

	for name, sig := range map[string]string{
		"unsigned":       "",
		"another secret": sign("another-secret-entirely", body),
		"not hex":        "sha256=zz",
		"another scheme": "sha1=" + strings.TrimPrefix(sign(secret, body), "sha256="),
		"another body":   sign(secret, `{"kind": "tag"}`),
	} {
		status, out := post(sig)
		require.Equal(t, http.StatusUnauthorized, status, name)
		require.Equal(t, "invalid_signature", out["error"].(map[string]any)["code"], name)
	}
	status, out := post(sign(secret, body))
	require.Equal(t, http.StatusAccepted, status, out)
	ev := s.data(http.StatusOK, http.MethodGet, "/events/"+strconv.Itoa(int(out["data"].(map[string]any)["event_id"].(float64))), "")
	require.NotContains(t, mustJSON(t, ev), "X-Hub-Signature-256", "the signature is not kept with the event")

	status, _ = s.do(http.MethodDelete, "/webhook-secrets/github", "")
	require.Equal(t, http.StatusNoContent, status)
	status, _ = post("")
	require.Equal(t, http.StatusAccepted, status, "secret gone: open again")
	s.fail(http.StatusNotFound, "not_found", http.MethodDelete, "/webhook-secrets/github", "")
}

// With no identity and no ATTUNE_ADMIN_PASSWORD, the first start makes an admin with a
// generated password and logs it once, however many replicas start together.
func TestBootstrapGeneratedPassword(t *testing.T) {
	t.Parallel()
	st := storetest.NewStore(t)
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		m, err := api.New(api.Config{}, api.Deps{Logger: logger, Store: st, Broker: membroker.New(broker.Options{}), Keyring: storetest.Keyring(t),
			Routes: echo.New().Group("/api/v1"), Auth: echo.New().Group("/auth")})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, m.Run(ctx))
		}()
	}
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "generated password") }, 10*time.Second, 10*time.Millisecond)
	cancel()
	wg.Wait()
	require.Equal(t, 1, strings.Count(logs.String(), "generated password"), logs.String())

	var password string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "generated password") {
			var entry map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &entry))
			password = entry["password"].(string)
		}
	}
	require.GreaterOrEqual(t, len(password), 16)
	s := startAPI(t, st, membroker.New(broker.Options{}), api.Config{AdminPassword: password})
	require.Equal(t, "admin", s.data(http.StatusOK, http.MethodGet, "/whoami", "")["role"])
}

// With authentication off every request acts as an admin, and nothing needs a token.
func TestAuthDisabled(t *testing.T) {
	t.Parallel()
	s := startAPI(t, storetest.NewStore(t), membroker.New(broker.Options{}), api.Config{AuthDisabled: true})
	require.Equal(t, map[string]any{"login": "anonymous", "role": "admin"}, s.data(http.StatusOK, http.MethodGet, "/whoami", ""))
	status, _ := s.do(http.MethodGet, "/packs", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, s.fail(http.StatusConflict, "conflict", http.MethodPost, "/tokens", `{}`), "authentication is off")
}
