package app_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store/seal"
	"github.com/attune-go/attune/store/storetest"
)

const generatedKeyWarning = "secret values are sealed with the encryption key Attune generated in PostgreSQL, beside the data it protects; " +
	"set ATTUNE_ENCRYPTION_KEY or --encryption-key-file, then run `attune key rotate`"

// Processes started together on a fresh database without a configured key generate one key
// between them, all use it, and each warns that it sits beside the data. A key configured
// later seals what is written from then on, while the generated one still opens what it
// sealed before.
func TestKeyringGeneratedOnceThenConfigured(t *testing.T) {
	t.Parallel()
	dbURL := storetest.UnusedDatabaseURL(t)
	db := "--database-url=" + dbURL
	var procs []*process
	for range 3 {
		procs = append(procs, startServeEnv(t, nil, db))
	}
	var ids []string
	for _, p := range procs {
		p.ready(t)
		ids = append(ids, p.waitLog(t, generatedKeyWarning, time.Second)["key_id"].(string))
	}
	require.Equal(t, []string{ids[0], ids[0], ids[0]}, ids, "one key for all")
	require.Equal(t, ids[0], queryOne[string](t, dbURL, `SELECT id FROM attune.generated_key`))
	created := 0
	for _, p := range procs {
		if p.hasLog("generated an encryption key and stored it in PostgreSQL") {
			created++
		}
	}
	require.Equal(t, 1, created, "one process made it")

	put := func(p *process, name, value string) {
		t.Helper()
		resp := p.request(t, http.MethodPut, "/api/v1/keys/system/"+name, strings.NewReader(`{"value": "`+value+`", "secret": true}`))
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
	}
	decrypted := func(p *process, name string) any {
		t.Helper()
		code, body := p.get(t, "/api/v1/keys/system/"+name+"?decrypt=true")
		require.Equal(t, http.StatusOK, code, body)
		return body["data"].(map[string]any)["value"]
	}
	put(procs[0], "before", "sealed by the generated key")
	for _, p := range procs {
		code, _ := p.stop(t, syscall.SIGTERM, 15*time.Second)
		require.Equal(t, 0, code)
	}

	configured, err := seal.NewKey()
	require.NoError(t, err)
	p := startServeEnv(t, []string{"ATTUNE_ENCRYPTION_KEY=" + configured.String()}, db)
	p.ready(t)
	require.False(t, p.hasLog(generatedKeyWarning), "a configured key ends the warning")
	loaded := p.waitLog(t, "encryption keys loaded", time.Second)
	require.Equal(t, configured.ID(), loaded["current_key_id"])
	put(p, "after", "sealed by the configured key")
	require.Equal(t, "sealed by the generated key", decrypted(p, "before"))
	require.Equal(t, "sealed by the configured key", decrypted(p, "after"))
	for name, id := range map[string]string{"before": ids[0], "after": configured.ID()} {
		sealed := queryOne[string](t, dbURL, `SELECT sealed FROM attune.key WHERE name = $1`, name)
		require.Equal(t, []string{id}, seal.KeyIDs(sealed), name)
	}
	require.NotContains(t, p.output(), "sealed by the", "no value in the log")
	code, keys := p.get(t, "/api/v1/keys")
	require.Equal(t, http.StatusOK, code)
	b, err := json.Marshal(keys)
	require.NoError(t, err)
	require.NotContains(t, string(b), "sealed by the")
}

// A bad key is a usage error in one line that says what a key looks like, before anything is
// opened.
func TestKeyringBadKeyIsUsageError(t *testing.T) {
	t.Parallel()
	k, err := seal.NewKey()
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(file, []byte(k.String()+"\n"), 0o600))
	for _, env := range [][]string{
		{"ATTUNE_ENCRYPTION_KEY=s3cret-but-short"},
		{"ATTUNE_ENCRYPTION_OLD_KEYS=" + strings.Repeat("a", 64)},
		// Older keys beside a key file would be ignored: a value they sealed would not open.
		{"ATTUNE_ENCRYPTION_KEY_FILE=" + file, "ATTUNE_ENCRYPTION_OLD_KEYS=" + strings.Repeat("a", 64)},
	} {
		_, stderr, code := runAttuneEnv(t, env, "serve", "--log-level=error", "--http-addr=127.0.0.1:0", "--database-url=postgres://127.0.0.1:1/none")
		require.Equal(t, 2, code, stderr)
		line := requireOneErrorLine(t, stderr)
		require.Contains(t, line, "ATTUNE_ENCRYPTION_")
		require.NotContains(t, line, "s3cret", "the key is not repeated")
	}
}
