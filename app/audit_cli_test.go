package app_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store/storetest"
)

// The audit through the binary: packs registered at serve are the system's, an execution
// requested with the CLI is the caller's and found by execution list --requested-by, and
// attune identity reset-password, which changes the database directly, is the cli's.
func TestAuditCLI(t *testing.T) {
	t.Parallel()
	db := storetest.NewDatabase(t)
	packs := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(packs, "mini", "actions"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(packs, "mini", "pack.yaml"), []byte("ref: mini\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(packs, "mini", "actions", "run.yaml"), []byte("ref: mini.run\nrunner_type: noop\n"), 0o644))
	p := startServe(t, "--database-url="+db, "--packs-dir="+packs)

	registered := map[any]any{}
	for _, e := range cliList(t, p, "audit", "list", "--kind", "pack") {
		registered[e["object"]] = e["actor"]
	}
	require.Equal(t, "system", registered["mini"], registered)

	exec := cliJSON(t, p, 0, "action", "execute", "mini.run")
	id := int64(exec["id"].(float64))
	require.Equal(t, "admin", exec["requested_by"].(map[string]any)["identity"])
	require.Equal(t, []int64{id}, idsOf(t, cliList(t, p, "execution", "list", "--requested-by", "admin")))
	_, stderr, code := p.cli(t, "execution", "list", "--requested-by", "colour:red")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), `unknown kind "colour"`)
	_, stderr, code = p.cli(t, "execution", "list", "--requested-by", "bob")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), `no identity has login "bob"`)
	_, stderr, code = p.cli(t, "execution", "list", "--requested-by", "rule:mini.none")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), `no rule is or was called "mini.none"`)

	requests := cliList(t, p, "audit", "list", "--since", "1h", "--actor", "admin", "--kind", "execution")
	require.Len(t, requests, 1)
	require.Equal(t, "execution.request", requests[0]["kind"])
	require.Equal(t, strconv.FormatInt(id, 10), requests[0]["object"])
	stdout, stderr, code := p.cli(t, "audit", "list", "--kind", "execution")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^ID +CREATED +ACTOR +TOKEN +KIND +OBJECT +DETAIL\n\d+ +\S+ +admin +\S* *execution\.request +`+strconv.FormatInt(id, 10), stdout)

	_, stderr, code = runAttuneEnv(t, nil, "identity", "reset-password", "admin", "--generate", "--database-url", db)
	require.Equal(t, 0, code, stderr)
	require.True(t, queryOne[bool](t, db, `SELECT detail = '{"password_changed": true, "role": "admin"}'::jsonb
		FROM attune.audit WHERE actor = 'cli' AND kind = 'identity.update' AND object = 'admin'`))
}
