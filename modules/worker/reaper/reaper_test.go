package reaper_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/worker/reaper"
)

// waitLimit bounds every wait: far above what a loaded two-core machine needs, so that
// reaching it means a hang, not slowness.
const waitLimit = 20 * time.Second

// The test binary doubles as the processes these tests need, as attune does through its
// hidden `internal reaper` command: a companion, a worker that starts one, and an action that
// blocks SIGTERM.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv("REAPER_TEST_COMPANION_WORKER") != "":
		logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
		marker := reaper.Marker{Worker: os.Getenv("REAPER_TEST_COMPANION_WORKER"), Instance: os.Getenv("REAPER_TEST_COMPANION_INSTANCE")}
		if err := reaper.Serve(os.Stdin, os.Stdout, marker, os.Getenv("REAPER_TEST_COMPANION_DIR"), logger); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case os.Getenv("REAPER_TEST_WORKER_DIR") != "":
		if err := fakeWorker(os.Getenv("REAPER_TEST_WORKER_DIR")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case os.Getenv("REAPER_TEST_BLOCK_TERM") != "":
		blockTermAndSleep()
	}
	os.Exit(m.Run())
}

// tree is an action's processes: a shell in a process group of its own, as the shell runner
// starts it, with a background child, a child that cleared its environment (found through its
// process group), and a grandchild in a session of its own that ignores SIGTERM.
type tree struct {
	leader, child, bare, detached int
}

func (tr tree) pids() []int { return []int{tr.leader, tr.child, tr.bare, tr.detached} }

func startTree(t *testing.T, env ...string) tree {
	t.Helper()
	dir := t.TempDir()
	script := `
sleep 300 & echo $! > child
env -i sleep 300 & echo $! > bare
setsid sh -c 'trap "" TERM; echo $$ > detached.tmp; mv detached.tmp detached; while :; do sleep 0.2; done' &
echo $$ > leader.tmp; mv leader.tmp leader
wait
`
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait() }() // reaps the leader, so that it does not stay a zombie
	var tr tree
	for name, pid := range map[string]*int{"leader": &tr.leader, "child": &tr.child, "bare": &tr.bare, "detached": &tr.detached} {
		*pid = readPID(t, filepath.Join(dir, name))
	}
	return tr
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	}, waitLimit, 10*time.Millisecond, "%s never written", path)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// gone reports whether pid has exited. A zombie has exited too: an orphan is reaped by PID 1,
// and in a container whose PID 1 does not reap, the dead stays a zombie for ever.
func gone(pid int) bool {
	_, alive, err := reaper.Age(pid)
	return err == nil && !alive
}

func requireAlive(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		require.False(t, gone(pid), "process %d died", pid)
	}
}

func requireGone(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		require.Eventually(t, func() bool { return gone(pid) }, waitLimit, 10*time.Millisecond, "process %d lives on", pid)
	}
}

// standIn starts a process that stands in for a worker process, and returns its marker and
// what plays the worker's death: the process is killed and waited for, so that it is gone,
// not a zombie.
func standIn(t *testing.T, worker string) (reaper.Marker, func()) {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "300")
	require.NoError(t, cmd.Start())
	die := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	t.Cleanup(die)
	m, err := reaper.MarkerOf(worker, cmd.Process.Pid)
	require.NoError(t, err)
	return m, die
}

// Reap ends every process of a marked action, whatever it did to get away (a new session, an
// ignored SIGTERM, a cleared environment in the action's group), and only those: another
// process of the same worker is an earlier one's to end, and only once that one is gone.
func TestReap(t *testing.T) {
	t.Parallel()
	worker := "w-" + strconv.Itoa(os.Getpid()) + "-reap"
	earlier, die := standIn(t, worker)
	mine, other := reaper.NewMarker(worker), reaper.NewMarker(worker+"-other")
	ours := startTree(t, mine.Env()...)
	old := startTree(t, earlier.Env()...)
	theirs := startTree(t, other.Env()...)

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	r, err := reaper.Reap(ctx, mine.Mine, reaper.Options{Grace: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Empty(t, r.Left)
	require.Subset(t, r.PIDs, []int{ours.leader, ours.child, ours.detached}, "the marked ones are found; the bare one went with its group")
	requireGone(t, ours.pids()...)
	requireAlive(t, old.pids()...)
	requireAlive(t, theirs.pids()...)

	// A new process of the worker leaves alone the actions of an earlier one that still runs
	// (two processes share the name)...
	next := reaper.NewMarker(worker)
	r, err = reaper.Reap(ctx, next.Earlier, reaper.Options{})
	require.NoError(t, err)
	require.Empty(t, r.PIDs, "the earlier worker process lives")
	requireAlive(t, old.pids()...)

	// ...and ends what it left once it is gone.
	die()
	r, err = reaper.Reap(ctx, next.Earlier, reaper.Options{})
	require.NoError(t, err)
	require.Subset(t, r.PIDs, []int{old.leader, old.child, old.detached})
	requireGone(t, old.pids()...)
	requireAlive(t, theirs.pids()...)

	r, err = reaper.Reap(ctx, mine.Mine, reaper.Options{})
	require.NoError(t, err)
	require.Empty(t, r.PIDs, "nothing is left to end")
}

// Age tells a live process from a gone one, and its age from the clock since boot.
func TestAge(t *testing.T) {
	t.Parallel()
	age, alive, err := reaper.Age(os.Getpid())
	require.NoError(t, err)
	require.True(t, alive)
	require.Positive(t, age)

	cmd := exec.Command("/bin/true")
	require.NoError(t, cmd.Run())
	_, alive, err = reaper.Age(cmd.Process.Pid)
	require.NoError(t, err)
	require.False(t, alive)

	child := exec.Command("/bin/sleep", "300")
	require.NoError(t, child.Start())
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	young, alive, err := reaper.Age(child.Process.Pid)
	require.NoError(t, err)
	require.True(t, alive)
	require.Less(t, young, age, "started after this test")
	require.False(t, errors.Is(err, os.ErrNotExist))
}
