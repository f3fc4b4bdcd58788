package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store/storetest"
)

// A worker whose name is generated for its process (<host>-<pid>) keeps its pack cache in a
// directory no later process finds again; the process removes it when it stops, so that
// restarts (every `make run`) leave nothing behind. It fails without that removal: the
// cache holds the version the action ran from.
func TestGeneratedWorkerNameLeavesNoPackCache(t *testing.T) {
	t.Parallel()
	cacheHome := t.TempDir()
	packs := filepath.Join(t.TempDir(), "packs")
	writeFiles(t, packs, map[string]string{
		"tiny/pack.yaml":       "ref: tiny\n",
		"tiny/actions/hi.yaml": "ref: tiny.hi\nrunner_type: shell\nentry_point: hi.sh\noutput_format: text\ntimeout_seconds: 30\n",
		"tiny/actions/hi.sh":   "#!/bin/sh\necho hi\n",
	})
	require.NoError(t, os.Chmod(filepath.Join(packs, "tiny/actions/hi.sh"), 0o755))

	// No --worker-name: spawnServe, not startServe, which names every test's worker.
	p, err := spawnServe([]string{"XDG_CACHE_HOME=" + cacheHome}, "--http-addr=127.0.0.1:0", "--database-url="+storetest.NewDatabase(t),
		"--packs-dir="+packs, "--shutdown-timeout=5s")
	require.NoError(t, err)
	t.Cleanup(p.kill)
	p.ready(t)

	code, body := p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "tiny.hi"})
	require.Equal(t, http.StatusCreated, code, body)
	exec := p.waitExecution(t, id(t, data(t, body), "id"))
	require.Equal(t, "completed", exec["status"], exec)
	cached, err := filepath.Glob(filepath.Join(cacheHome, "attune", "packs", "*", "*", "actions", "hi.sh"))
	require.NoError(t, err)
	require.Len(t, cached, 1, "the action ran from the worker's cache")

	code, _ = p.stop(t, syscall.SIGTERM, 30*time.Second)
	require.Zero(t, code)
	left, err := os.ReadDir(filepath.Join(cacheHome, "attune", "packs"))
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	require.Empty(t, left, "the process's own cache went with it")
}
