package app_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/store/storetest"
)

// workerRoles prepares a database and a broker namespace for an api and executor process and
// worker processes beside it, and returns what starts each, and what stops those still
// running: call it before the test ends, since each process's cleanup deletes the dispatch
// queues all of them share.
func workerRoles(t *testing.T) (start func(roles string, args ...string) *process, stopAll func(), ns string) {
	t.Helper()
	ns = namespace(t)
	var started []*process
	common := []string{
		"--database-url=" + storetest.NewDatabase(t),
		"--amqp-url=" + brokertest.URL(t),
		"--amqp-namespace=" + ns,
		"--worker-heartbeat=200ms",
		"--worker-timeout=1500ms",
	}
	return func(roles string, args ...string) *process {
			p := startServe(t, append(append([]string{"--roles=" + roles}, common...), args...)...)
			t.Cleanup(func() {
				select {
				case <-p.exited:
				default:
					p.stop(t, syscall.SIGTERM, 30*time.Second)
				}
			})
			started = append(started, p)
			return p
		}, func() {
			for _, p := range started {
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
			}
			deadline := time.After(60 * time.Second)
			for _, p := range started {
				select {
				case <-p.exited:
				case <-deadline:
					t.Errorf("attune did not stop within 60s of SIGTERM:\n%s", p.output())
					return
				}
			}
		}, ns
}

// actionTree is a core.local command whose processes try to outlive their worker: a
// background child, a child that cleared its environment, and a grandchild in a session of
// its own that ignores SIGTERM. Each writes its pid into dir.
func actionTree(dir string) string {
	return fmt.Sprintf(`cd %s
sleep 300 & echo $! > child
env -i sleep 300 & echo $! > bare
setsid sh -c 'trap "" TERM; echo $$ > detached.tmp; mv detached.tmp detached; while :; do sleep 0.2; done' &
echo $$ > leader.tmp; mv leader.tmp leader
wait`, dir)
}

// treePIDs waits for the pids of an actionTree and has them killed when the test ends, passed
// or not.
func treePIDs(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	for _, name := range []string{"leader", "child", "bare", "detached"} {
		var pid int
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(filepath.Join(dir, name))
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil && pid > 0
		}, 60*time.Second, 10*time.Millisecond, "the action never wrote %s", name)
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		pids = append(pids, pid)
	}
	return pids
}

// processGone reports whether pid has exited. A zombie has exited too: in a container whose
// PID 1 does not reap, the dead stay zombies for ever.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	_, rest, ok := strings.Cut(string(stat), ") ")
	return ok && strings.HasPrefix(rest, "Z")
}

// runTree starts actionTree on the worker through the API and returns its execution and pids.
// Its command is too large for the environment, so that the worker writes it to a file.
func runTree(t *testing.T, api *process) (int64, []int) {
	t.Helper()
	dir := t.TempDir()
	cmd := actionTree(dir) + "\n# " + strings.Repeat("x", 40<<10)
	code, body := api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "core.local", "parameters": map[string]any{"cmd": cmd}})
	require.Equal(t, http.StatusCreated, code, body)
	return id(t, data(t, body), "id"), treePIDs(t, dir)
}

// workerDirs lists the directories of the processes of worker name (reaper.Marker.Dir), the
// processes started by these tests sharing their temporary directory.
func workerDirs(t *testing.T, name string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "attune-worker-"+name+"-*"))
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
	})
	return dirs
}

// workerDir returns the directory of the one process of worker name, which holds the file of
// the command of a runTree.
func workerDir(t *testing.T, name string) string {
	t.Helper()
	dirs := workerDirs(t, name)
	require.Len(t, dirs, 1)
	files, err := filepath.Glob(filepath.Join(dirs[0], "attune-execution-*", "ATTUNE_PARAM_CMD"))
	require.NoError(t, err)
	require.Len(t, files, 1, "the command is in the worker's directory")
	return dirs[0]
}

func companionPID(t *testing.T, w *process) int {
	t.Helper()
	pid, ok := w.waitLog(t, "worker companion started", 30*time.Second)["pid"].(float64)
	require.True(t, ok)
	return int(pid)
}

// No process of an action outlives its worker: a worker killed with SIGKILL takes down every
// process its action started, through its companion, which also removes the worker's files.
// And when the companion was killed too, the next process of the worker's name ends what was
// left and removes the files before it takes work.
func TestActionsDieWithTheirWorker(t *testing.T) {
	t.Parallel()
	start, stopAll, ns := workerRoles(t)
	defer stopAll()
	name := "w-" + uuid.NewString()[:8]
	t.Cleanup(func() { brokertest.DeleteQueues(t, ns+".attune.worker."+name+".cancel") })
	api := start("api,executor")

	// The worker dies; the companion ends the actions within moments.
	w := start("worker", "--worker-name="+name)
	companion := companionPID(t, w)
	_, pids := runTree(t, api)
	files := workerDir(t, name)
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
	killed := time.Now()
	for _, pid := range pids {
		require.Eventually(t, func() bool { return processGone(pid) }, 30*time.Second, 5*time.Millisecond, "process %d outlived its worker", pid)
	}
	t.Logf("the action's processes ended %s after the worker was killed", time.Since(killed))
	<-w.exited // its stderr stays open until the companion is gone too
	require.True(t, w.hasLog("worker gone; its actions ended"), "the companion did it:\n%s", w.output())
	// Its stderr closes as it exits, a moment before the exit is complete.
	require.Eventually(t, func() bool { return processGone(companion) }, 30*time.Second, 5*time.Millisecond, "the companion lives on")
	require.NoDirExists(t, files, "the companion removed the worker's files")

	// Worker and companion both die; the next process of the worker ends what they left.
	w = start("worker", "--worker-name="+name)
	companion = companionPID(t, w)
	exec, pids := runTree(t, api)
	files = workerDir(t, name)
	require.NoError(t, syscall.Kill(companion, syscall.SIGSTOP)) // so that it cannot act on the worker's death
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
	require.NoError(t, syscall.Kill(companion, syscall.SIGKILL))
	<-w.exited
	for _, pid := range pids {
		require.False(t, processGone(pid), "process %d died with no one to end it", pid)
	}
	require.DirExists(t, files)
	w = start("worker", "--worker-name="+name)
	ended := w.waitLog(t, "ended the actions an earlier process of this worker left", 30*time.Second)
	for _, pid := range pids {
		// The reading finds a process gone once its memory is; its exit completes a moment later.
		require.Eventually(t, func() bool { return processGone(pid) }, 30*time.Second, 5*time.Millisecond, "process %d outlived the restart: %v", pid, ended)
	}
	removed := w.waitLog(t, "removed the files earlier processes of this worker left", 30*time.Second)
	require.Equal(t, []any{files}, removed["dirs"])
	require.NoDirExists(t, files)
	require.False(t, w.hasLog("another process of this worker's name runs on this host: two workers share a name; its actions are left alone"))
	abandoned := api.waitExecution(t, exec)
	require.Equal(t, "abandoned", abandoned["status"])
	require.Equal(t, name, abandoned["worker"])
}

// Two workers started with the same name on one host do not end each other's actions: the
// second to start finds the first alive, says two workers share a name, and leaves its
// actions and files alone.
func TestWorkersSharingANameSpareEachOther(t *testing.T) {
	t.Parallel()
	start, stopAll, ns := workerRoles(t)
	defer stopAll()
	name := "w-" + uuid.NewString()[:8]
	t.Cleanup(func() { brokertest.DeleteQueues(t, ns+".attune.worker."+name+".cancel") })
	api := start("api,executor")

	first := start("worker", "--worker-name="+name)
	companionPID(t, first)
	_, pids := runTree(t, api)
	files := workerDir(t, name)

	second := start("worker", "--worker-name="+name)
	shared := second.waitLog(t, "another process of this worker's name runs on this host: two workers share a name; its actions are left alone", 30*time.Second)
	require.Equal(t, []any{strings.TrimPrefix(filepath.Base(files), "attune-worker-"+name+"-")}, shared["instances"])
	companionPID(t, second) // the start is past ending what earlier processes left
	for _, pid := range pids {
		require.False(t, processGone(pid), "process %d of the first worker was ended by the second", pid)
	}
	require.DirExists(t, files)
	require.False(t, second.hasLog("ended the actions an earlier process of this worker left"))
	require.Len(t, workerDirs(t, name), 2, "each has its own directory")
}

// writePack writes a pack of shell actions under a fresh packs directory: files maps a path
// inside the pack to its content, scripts (*.sh) executable.
func writePack(t *testing.T, name string, files map[string]string) (packsDir, packDir string) {
	t.Helper()
	packsDir = t.TempDir()
	packDir = filepath.Join(packsDir, name)
	files["pack.yaml"] = "ref: " + name + "\nlabel: Test\nversion: \"0.1.0\"\n"
	for path, content := range files {
		full := filepath.Join(packDir, path)
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		mode := os.FileMode(0o644)
		if strings.HasSuffix(path, ".sh") {
			mode = 0o755
		}
		require.NoError(t, os.WriteFile(full, []byte(content), mode))
	}
	return packsDir, packDir
}

// A parameter of 1 MiB, posted through the API, reaches a shell action whole, from the file
// the environment names and on stdin. An action that cannot start says why in the
// execution's reason, which `execution list` shows.
func TestLargeParameterReachesShellAction(t *testing.T) {
	t.Parallel()
	packs, _ := writePack(t, "big", map[string]string{
		"actions/digest.yaml": "ref: big.digest\nrunner_type: shell\nentry_point: digest.sh\nparameters:\n  payload: {type: string, required: true}\n",
		"actions/digest.sh": `#!/bin/sh
set -e
echo "env=${ATTUNE_PARAM_PAYLOAD-unset}"
echo "file=$(sha256sum < "$ATTUNE_PARAM_PAYLOAD_FILE" | cut -d' ' -f1)"
echo "stdin=$(sha256sum | cut -d' ' -f1)"
`,
		"actions/broken.yaml": "ref: big.broken\nrunner_type: shell\nentry_point: broken.sh\n",
		"actions/broken.sh":   "#!/nonexistent/interpreter\necho never\n",
	})
	p := startServe(t, "--database-url="+storetest.NewDatabase(t), "--packs-dir="+packs, "--shutdown-timeout=5s")
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.stop(t, syscall.SIGTERM, 30*time.Second)
		}
	})

	payload := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	code, body := p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "big.digest", "parameters": map[string]any{"payload": payload}})
	require.Equal(t, http.StatusCreated, code, "%.200v", body)
	exec := p.waitExecution(t, id(t, data(t, body), "id"))
	require.Equal(t, "completed", exec["status"], "%.500v", result(t, exec))
	stdin, err := json.Marshal(map[string]any{"payload": payload})
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("env=unset\nfile=%x\nstdin=%x\n", sha256.Sum256([]byte(payload)), sha256.Sum256(stdin)), result(t, exec)["stdout"])

	// A script whose interpreter is missing cannot start. (A script made unexecutable on disk
	// after registering changes nothing now: the worker runs the version registered, from its
	// own cache.)
	code, body = p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "big.broken"})
	require.Equal(t, http.StatusCreated, code, body)
	broken := p.waitExecution(t, id(t, data(t, body), "id"))
	require.Equal(t, "failed", broken["status"], broken)
	reason, _ := broken["reason"].(string)
	require.True(t, strings.HasPrefix(reason, "the action did not start: "), reason)
	require.Contains(t, reason, "broken.sh")
	require.Equal(t, strings.TrimPrefix(reason, "the action did not start: "), result(t, broken)["error"])
	stdout, stderr, code := p.cli(t, "execution", "list", "--status", "failed")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "the action did not start: start script")
}

// A killed worker reads inactive once its heartbeat lapses, and the next worker to start on
// its host deletes its record, since its process is gone, and keeps a live worker's. The
// executions it ran still name it.
func TestDeadWorkerRecords(t *testing.T) {
	t.Parallel()
	start, stopAll, ns := workerRoles(t)
	defer stopAll()
	api := start("api,executor")
	registered := func(w *process) string {
		name := w.waitLog(t, "worker registered", 30*time.Second)["worker"].(string)
		t.Cleanup(func() { brokertest.DeleteQueues(t, ns+".attune.worker."+name+".cancel") })
		return name
	}
	dead := start("worker")
	deadName := registered(dead)
	code, body := api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "core.echo", "parameters": map[string]any{"message": "hi"}})
	require.Equal(t, http.StatusCreated, code, body)
	ran := api.waitExecution(t, id(t, data(t, body), "id"))
	require.Equal(t, deadName, ran["worker"])
	live := start("worker")
	liveName := registered(live)

	require.NoError(t, dead.cmd.Process.Signal(syscall.SIGKILL))
	<-dead.exited
	require.Eventually(t, func() bool {
		_, w := api.get(t, "/api/v1/workers/"+deadName)
		return data(t, w)["status"] == "inactive"
	}, 30*time.Second, 20*time.Millisecond, "a killed worker reads inactive once its heartbeat lapsed")
	_, w := api.get(t, "/api/v1/workers/"+liveName)
	require.Equal(t, "active", data(t, w)["status"])

	next := start("worker")
	deleted := next.waitLog(t, "deleted the records of dead workers", 30*time.Second)
	require.Equal(t, []any{deadName}, deleted["workers"])
	code, _ = api.get(t, "/api/v1/workers/"+deadName)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = api.get(t, "/api/v1/workers/"+liveName)
	require.Equal(t, http.StatusOK, code)
	_, body = api.get(t, fmt.Sprintf("/api/v1/executions/%d", id(t, ran, "id")))
	require.Equal(t, deadName, data(t, body)["worker"], "history keeps the name")
}
