package app_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/store/storetest"
)

// Packs travel as content: two worker processes with working and temporary directories and
// pack caches of their own, and no pack directory anywhere they could share, run the actions
// of a pack uploaded from a directory deleted since and of one installed from a git
// repository removed since. A second version of a pack takes over for new executions while
// one running on the first finishes on it.
func TestPacksTravelAsContent(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	common := []string{"--database-url=" + storetest.NewDatabase(t), "--amqp-url=" + brokertest.URL(t), "--amqp-namespace=" + ns,
		"--worker-heartbeat=200ms", "--worker-timeout=1500ms"}
	api := startServe(t, append([]string{"--roles=api,executor"}, common...)...)
	var workers []*process
	var caches []string
	for range 2 {
		home := t.TempDir()
		for _, d := range []string{"cwd", "tmp", "cache"} {
			require.NoError(t, os.Mkdir(filepath.Join(home, d), 0o755))
		}
		caches = append(caches, filepath.Join(home, "cache"))
		w := startServeIn(t, filepath.Join(home, "cwd"), []string{"TMPDIR=" + filepath.Join(home, "tmp")},
			append([]string{"--roles=worker", "--worker-pack-cache=" + filepath.Join(home, "cache")}, common...)...)
		t.Cleanup(func() { w.stop(t, syscall.SIGTERM, 30*time.Second) })
		workers = append(workers, w)
	}
	names := map[string]bool{}
	for _, w := range workers {
		names[w.waitLog(t, "worker registered", 30*time.Second)["worker"].(string)] = true
	}

	gate := filepath.Join(t.TempDir(), "gate")
	uploaded := func(version string) string {
		_, dir := writePack(t, "travel", map[string]string{
			"actions/where.yaml": "ref: travel.where\nrunner_type: shell\nentry_point: where.sh\n",
			"actions/where.sh":   "#!/bin/sh\necho \"travel " + version + " in $PWD\"\n",
			"actions/long.yaml":  "ref: travel.long\nrunner_type: shell\nentry_point: long.sh\nparameters:\n  gate: {type: string, required: true}\n",
			"actions/long.sh":    "#!/bin/sh\nwhile [ ! -e \"$ATTUNE_PARAM_GATE\" ]; do sleep 0.05; done\necho \"long " + version + "\"\n",
		})
		stdout, stderr, code := api.cli(t, "pack", "upload", dir)
		require.Equal(t, 0, code, stderr)
		require.NoError(t, os.RemoveAll(dir), "no path of the pack is left to share")
		return stdout
	}
	require.Contains(t, uploaded("v1"), "registered pack travel")

	repo := t.TempDir()
	writePackFile(t, repo, "pack.yaml", "ref: fromgit\nlabel: From git\nversion: \"1.0.0\"\n")
	writePackFile(t, repo, "actions/hello.yaml", "ref: fromgit.hello\nrunner_type: shell\nentry_point: hello.sh\n")
	require.NoError(t, os.WriteFile(filepath.Join(repo, "actions/hello.sh"), []byte("#!/bin/sh\necho hello from git\n"), 0o755))
	for _, args := range [][]string{{"init", "--quiet", "--initial-branch=main"}, {"add", "."},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "pack"}} {
		out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
	}
	_, stderr, code := api.cli(t, "pack", "install", "file://"+repo+"@main")
	require.Equal(t, 0, code, stderr)
	require.NoError(t, os.RemoveAll(repo))

	execute := func(ref string, params map[string]any) int64 {
		t.Helper()
		code, body := api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": ref, "parameters": params})
		require.Equal(t, 201, code, body)
		return id(t, data(t, body), "id")
	}
	stdoutOf := func(exec map[string]any) string {
		require.Equal(t, "completed", exec["status"], "%v", exec)
		return exec["result"].(map[string]any)["stdout"].(string)
	}
	// Both actions on both workers: run them until each worker ran each.
	for _, ref := range []string{"travel.where", "fromgit.hello"} {
		ranOn := map[string]bool{}
		for i := 0; len(ranOn) < 2; i++ {
			require.Less(t, i, 40, "%s ran on %v only", ref, ranOn)
			exec := api.waitExecution(t, execute(ref, nil))
			out := stdoutOf(exec)
			if ref == "travel.where" {
				require.Contains(t, out, "travel v1 in ")
			} else {
				require.Equal(t, "hello from git\n", out)
			}
			ranOn[exec["worker"].(string)] = true
		}
		require.Equal(t, names, ranOn)
	}
	_, body := api.get(t, "/api/v1/packs/travel")
	v1 := data(t, body)["current_version"].(string)
	require.Len(t, v1, 64)
	for _, cache := range caches {
		require.DirExists(t, filepath.Join(cache, v1), "each worker keeps its own copy")
	}

	// Version 2 while an execution of version 1 runs: that one finishes on version 1, new ones
	// run version 2.
	long := execute("travel.long", map[string]any{"gate": gate})
	require.Eventually(t, func() bool {
		_, body := api.get(t, fmt.Sprintf("/api/v1/executions/%d", long))
		return data(t, body)["status"] == "running"
	}, 30*time.Second, 20*time.Millisecond)
	require.Contains(t, uploaded("v2"), "updated")
	require.Contains(t, stdoutOf(api.waitExecution(t, execute("travel.where", nil))), "travel v2 in ")
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	require.Equal(t, "long v1\n", stdoutOf(api.waitExecution(t, long)))
	require.Equal(t, "long v2\n", stdoutOf(api.waitExecution(t, execute("travel.long", map[string]any{"gate": gate}))))

	stdout, stderr, code := api.cli(t, "pack", "show", "travel")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, v1)
	lines := strings.Split(strings.TrimSpace(stdout[strings.Index(stdout, "VERSION"):]), "\n")
	require.Len(t, lines, 3, stdout)
	require.True(t, strings.HasSuffix(strings.TrimSpace(lines[1]), "yes"), "the newest is current: %s", stdout)
	require.NotContains(t, lines[2], "yes")
}

// A custom sensor of a pack uploaded from a directory deleted since runs from the sensor
// process's own cache of the pack's version, and its events fire its rule; a new version of
// the pack restarts it from that version.
func TestSensorsRunFromUploadedPack(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	common := []string{"--database-url=" + storetest.NewDatabase(t), "--amqp-url=" + brokertest.URL(t), "--amqp-namespace=" + ns}
	api := startServe(t, append([]string{"--roles=api,executor,worker"}, common...)...)
	cache := filepath.Join(t.TempDir(), "cache")
	sensors := startServe(t, append([]string{"--roles=sensor", "--sensor-pack-cache=" + cache}, common...)...)
	t.Cleanup(func() { sensors.stop(t, syscall.SIGTERM, 30*time.Second) })

	upload := func(version string) string {
		_, dir := writePack(t, "watch", map[string]string{
			"triggers/seen.yaml": "name: seen\n",
			"rules/on_seen.yaml": "name: on_seen\ntrigger_ref: watch.seen\naction_ref: core.noop\n",
			"sensors/eye.yaml":   "name: eye\nentry_point: eye.sh\ntrigger_refs: [watch.seen]\n",
			"sensors/eye.sh":     "#!/bin/sh\necho '{\"trigger\": \"watch.seen\", \"payload\": {\"version\": \"" + version + "\"}}'\nwhile :; do sleep 1; done\n",
		})
		_, stderr, code := api.cli(t, "pack", "upload", dir)
		require.Equal(t, 0, code, stderr)
		require.NoError(t, os.RemoveAll(dir), "no path of the pack is left to share")
		_, body := api.get(t, "/api/v1/packs/watch")
		return data(t, body)["current_version"].(string)
	}
	runningFrom := func(hash string, not int) int {
		t.Helper()
		s := waitSensor(t, api, "watch.eye", func(s map[string]any) bool {
			return s["status"] == "running" && s["pid"] != nil && int(s["pid"].(float64)) != not
		})
		pid := int(s["pid"].(float64))
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		require.NoError(t, err)
		require.Contains(t, string(cmdline), filepath.Join(cache, hash, "sensors", "eye.sh"), "the sensor runs from the cache")
		return pid
	}

	v1 := upload("v1")
	pid1 := runningFrom(v1, 0)
	requireEnforced(t, api, "watch.on_seen")

	v2 := upload("v2")
	require.NotEqual(t, v1, v2)
	runningFrom(v2, pid1)
	require.Eventually(t, func() bool {
		_, body := api.get(t, "/api/v1/events?trigger_ref=watch.seen&per_page=100")
		for _, e := range body["data"].([]any) {
			if e.(map[string]any)["payload"].(map[string]any)["version"] == "v2" {
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "the sensor of version 2 emitted")
}
