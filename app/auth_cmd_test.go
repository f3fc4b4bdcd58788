package app_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/attune-go/attune/store/storetest"
)

// An operator's session: log in, keep the tokens in the config file, manage identities and
// API tokens, and be refused what the role does not allow.
func TestCLIAuth(t *testing.T) {
	t.Parallel()
	// Access tokens last a second, so that one expires within the test and the CLI must
	// renew it with the refresh token.
	p := startServe(t, "--database-url="+storetest.NewDatabase(t), "--access-token-ttl=1s")
	apiURL := "http://" + p.addr
	home := t.TempDir()
	cfgPath := filepath.Join(home, "attune", "config.yaml")
	asAdmin := []string{"XDG_CONFIG_HOME=" + home}

	_, stderr, code := runAttuneEnv(t, asAdmin, "execution", "list", "--api-url", apiURL)
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "attune login", "without a token the error says how to get one")

	_, stderr, code = runAttuneWith(t, "wrong-password\n", asAdmin, "login", "admin", "--password-stdin", "--api-url", apiURL)
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "invalid login or password")
	_, err := os.Stat(cfgPath)
	require.ErrorIs(t, err, os.ErrNotExist, "a failed login writes nothing")

	p.authToken(t) // the server makes the first admin after it says it is ready: wait for it
	stdout, stderr, code := runAttuneWith(t, testAdminPassword+"\n", asAdmin, "login", "admin", "--password-stdin", "--api-url", apiURL)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "logged in to "+apiURL+" as admin")
	info, err := os.Stat(cfgPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the file holds tokens")
	var cfg map[string]string
	raw, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	require.Equal(t, apiURL, cfg["api_url"], "the URL logged in to is kept")
	require.NotEmpty(t, cfg["token"])
	require.NotEmpty(t, cfg["refresh_token"])

	// From here on the config file alone says where and who. Once the access token has
	// expired the CLI renews it and writes the new pair back.
	first := cfg["token"]
	require.Eventually(t, func() bool {
		stdout, stderr, code := runAttuneEnv(t, asAdmin, "whoami", "-o", "json")
		require.Equal(t, 0, code, stderr)
		require.JSONEq(t, `{"login": "admin", "role": "admin"}`, stdout)
		raw, err := os.ReadFile(cfgPath)
		require.NoError(t, err)
		require.NoError(t, yaml.Unmarshal(raw, &cfg))
		return cfg["token"] != first
	}, 30*time.Second, 500*time.Millisecond, "the access token was never renewed")

	// Identities: an admin makes a viewer, who may read but not run.
	stdout, stderr, code = runAttuneWith(t, "viewer-password\n", asAdmin, "identity", "create", "vera", "--role", "viewer", "--password-stdin", "-o", "json")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"role": "viewer"`)
	_, stderr, code = runAttuneWith(t, "viewer-password\n", asAdmin, "identity", "create", "vera", "--role", "viewer", "--password-stdin")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "409")
	stdout, stderr, code = runAttuneEnv(t, asAdmin, "identity", "list")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^vera\s+viewer\s`, stdout)

	veraCfg := []string{"ATTUNE_CONFIG=" + filepath.Join(t.TempDir(), "vera.yaml")}
	_, stderr, code = runAttuneWith(t, "viewer-password\n", veraCfg, "login", "vera", "--password-stdin", "--api-url", apiURL)
	require.Equal(t, 0, code, stderr)
	_, stderr, code = runAttuneEnv(t, veraCfg, "execution", "list")
	require.Equal(t, 0, code, stderr)
	_, stderr, code = runAttuneEnv(t, veraCfg, "action", "execute", "core.noop")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "needs the operator role; vera is viewer")
	_, stderr, code = runAttuneEnv(t, veraCfg, "identity", "list")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "403")

	// Vera changes her own password, giving the current one; the sessions before end.
	_, stderr, code = runAttuneWith(t, "wrong-current\nvera-new-password\n", veraCfg, "identity", "update", "vera", "--password-stdin")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "not the current password")
	_, stderr, code = runAttuneWith(t, "viewer-password\nvera-new-password\n", veraCfg, "identity", "update", "vera", "--password-stdin")
	require.Equal(t, 0, code, stderr)
	_, stderr, code = runAttuneEnv(t, veraCfg, "execution", "list")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "log in again")
	_, stderr, code = runAttuneWith(t, "vera-new-password\n", veraCfg, "login", "vera", "--password-stdin", "--api-url", apiURL)
	require.Equal(t, 0, code, stderr)

	// API tokens: the secret is printed once and works from ATTUNE_TOKEN until revoked.
	stdout, stderr, code = runAttuneEnv(t, asAdmin, "token", "create", "--name", "ci", "--role", "operator", "--expires", "720h", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var created map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &created))
	secret := created["token"].(string)
	require.True(t, strings.HasPrefix(secret, "atn_"))
	require.NotNil(t, created["expires_at"])
	withToken := []string{"ATTUNE_TOKEN=" + secret, "ATTUNE_API_URL=" + apiURL}
	stdout, stderr, code = runAttuneEnv(t, withToken, "whoami", "-o", "json")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"role": "operator"`)
	stdout, stderr, code = runAttuneEnv(t, asAdmin, "token", "list")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "ci")
	require.NotContains(t, stdout, secret)
	id := strconv.Itoa(int(created["id"].(float64)))
	_, stderr, code = runAttuneEnv(t, asAdmin, "token", "revoke", id)
	require.Equal(t, 0, code, stderr)
	_, stderr, code = runAttuneEnv(t, withToken, "whoami")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "invalid API token")

	// Deleting vera ends her session at once.
	stdout, stderr, code = runAttuneEnv(t, asAdmin, "identity", "delete", "vera")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "deleted identity vera\n", stdout)
	_, stderr, code = runAttuneEnv(t, veraCfg, "execution", "list")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "401")

	// Without a terminal and without --password-stdin, login refuses rather than hang.
	_, stderr, code = runAttuneWith(t, "", asAdmin, "login", "admin")
	require.Equal(t, 2, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "--password-stdin")
}

// serve --auth=false warns that every request acts as an admin, and asks for no token.
func TestServeAuthDisabled(t *testing.T) {
	t.Parallel()
	p := startServe(t, "--database-url="+storetest.NewDatabase(t), "--auth=false")
	p.waitLog(t, "authentication is OFF: every request acts as an admin; for local experiments only", 10*time.Second)
	stdout, stderr, code := runAttune(t, "whoami", "-o", "json", "--api-url", "http://"+p.addr)
	require.Equal(t, 0, code, stderr)
	require.JSONEq(t, `{"login": "anonymous", "role": "admin"}`, stdout)
}
