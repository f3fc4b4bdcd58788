package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/api"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/seal"
)

// adminPassword is the first admin's password in every test server.
const adminPassword = "test-admin-password"

// server is the API over real HTTP on a database of its own, called as the first admin
// unless a test says otherwise.
type server struct {
	t     *testing.T
	base  string
	root  string
	s     *store.Store
	token string
	// keys is the keyring the module seals with, for a test to open what it sealed.
	keys *seal.Keyring
}

// startAPI serves the API with authentication on, runs the module (which creates the
// admin) and logs in as that admin.
func startAPI(t *testing.T, st *store.Store, br api.Broker, cfg api.Config) server {
	t.Helper()
	return startAPILogged(t, st, br, cfg, slog.New(slog.DiscardHandler))
}

// startAPILogged is startAPI with the module and the error handler logging to logger.
func startAPILogged(t *testing.T, st *store.Store, br api.Broker, cfg api.Config, logger *slog.Logger) server {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = api.ErrorHandler(logger)
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = adminPassword
	}
	m, err := api.New(cfg, api.Deps{Logger: logger, Store: st, Broker: br, Routes: e.Group("/api/v1"), Auth: e.Group("/auth"),
		Keyring: testKeyring})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	s := server{t: t, base: srv.URL + "/api/v1", root: srv.URL, s: st, keys: testKeyring}
	if !cfg.AuthDisabled {
		s.token = s.login("admin", cfg.AdminPassword)
	}
	return s
}

// login logs in and returns the access token, waiting first for the identity to exist (the
// module creates the first admin as it starts, an Argon2id hash that a loaded machine takes
// its time over), then for a password check slot.
func (s server) login(login, password string) string {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		_, err := s.s.IdentityGetByLogin(context.Background(), login)
		return err == nil
	}, 2*time.Minute, 20*time.Millisecond, "identity %s never appeared", login)
	body := `{"login": ` + mustJSON(s.t, login) + `, "password": ` + mustJSON(s.t, password) + `}`
	deadline := time.Now().Add(time.Minute)
	for {
		status, out := s.raw(http.MethodPost, s.root+"/auth/login", "", body)
		if status == http.StatusOK {
			return out["access_token"].(string)
		}
		require.True(s.t, time.Now().Before(deadline), "log in as %s: %d %v", login, status, out)
		time.Sleep(20 * time.Millisecond)
	}
}

// as returns the server called with another token ("" for none).
func (s server) as(token string) server {
	s.token = token
	return s
}

// do sends body (JSON, or nothing when empty) under /api/v1 and returns the status and the
// decoded answer.
func (s server) do(method, path, body string) (int, map[string]any) {
	s.t.Helper()
	return s.raw(method, s.base+path, s.token, body)
}

func (s server) raw(method, url, token, body string) (int, map[string]any) {
	s.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out
}

// data returns the answer's data object after checking the status.
func (s server) data(wantStatus int, method, path, body string) map[string]any {
	s.t.Helper()
	status, out := s.do(method, path, body)
	require.Equal(s.t, wantStatus, status, out)
	data, ok := out["data"].(map[string]any)
	require.True(s.t, ok, "no data object in %v", out)
	return data
}

// fail checks that the request is refused in the error shape and returns its message.
func (s server) fail(wantStatus int, wantCode, method, path, body string) string {
	s.t.Helper()
	status, out := s.do(method, path, body)
	require.Equal(s.t, wantStatus, status, out)
	detail, ok := out["error"].(map[string]any)
	require.True(s.t, ok, "no error object in %v", out)
	require.Equal(s.t, wantCode, detail["code"])
	return detail["message"].(string)
}
