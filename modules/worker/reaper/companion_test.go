package reaper_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/modules/worker/reaper"
)

// testEnv is this process's environment without the variables that choose what the test
// binary does, so that a process it starts does what it is told and nothing else.
func testEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "REAPER_TEST_") })
	return append(env, extra...)
}

// companionCmd is the test binary as the companion of marker, removing dir.
func companionCmd(marker reaper.Marker, dir string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = testEnv(append([]string{"REAPER_TEST_COMPANION_WORKER=" + marker.Worker,
		"REAPER_TEST_COMPANION_INSTANCE=" + marker.Instance, "REAPER_TEST_COMPANION_DIR=" + dir}, extra...)...)
	return cmd
}

// The companion ends the marked processes and removes the worker's directory when the
// worker's end of its pipe closes, and a SIGTERM meant for the worker does not end it first.
func TestCompanion(t *testing.T) {
	t.Parallel()
	marker := reaper.NewMarker("w-" + strconv.Itoa(os.Getpid()) + "-companion")
	tr := startTree(t, marker.Env()...)
	dir := marker.Dir(t.TempDir())
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "attune-execution-1-x"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "attune-execution-1-x", "ATTUNE_PARAM_TOKEN"), []byte("s3cret"), 0o600))

	cmd := companionCmd(marker, dir, "ATTUNE_DATABASE_URL=postgres://u:s3cret@db/x")
	var logs strings.Builder
	cmd.Stderr = &logs
	c, err := reaper.Launch(cmd)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(c.PID(), syscall.SIGKILL) })

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.PID()))
	require.NoError(t, err)
	require.NotContains(t, string(environ), "s3cret", "the companion gets none of the worker's ATTUNE_* settings")
	pgid, err := syscall.Getpgid(c.PID())
	require.NoError(t, err)
	require.Equal(t, c.PID(), pgid, "a process group of its own")

	require.NoError(t, syscall.Kill(c.PID(), syscall.SIGTERM))
	requireAlive(t, tr.pids()...)
	require.DirExists(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, c.Stop(ctx), "it exits 0, not on the SIGTERM: %s", logs.String())
	requireGone(t, tr.pids()...)
	require.NoDirExists(t, dir, "the worker's files go with it")
	require.Contains(t, logs.String(), "worker gone; its actions ended")
}

// A companion removes nothing but its worker's directory: a command line that names another
// is refused before the companion says it is ready.
func TestCompanionRefusesAnotherDirectory(t *testing.T) {
	t.Parallel()
	marker := reaper.NewMarker("w-" + strconv.Itoa(os.Getpid()) + "-refuses")
	other := reaper.NewMarker(marker.Worker)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	tmp := t.TempDir()
	for _, dir := range []string{tmp, "/", other.Dir(tmp), strings.TrimPrefix(marker.Dir(tmp), "/")} {
		var ready strings.Builder
		err := reaper.Serve(strings.NewReader(""), &ready, marker, dir, logger)
		require.ErrorContains(t, err, "is not the directory of worker", dir)
		require.Empty(t, ready.String(), dir)
	}
	require.DirExists(t, tmp)
}

// fakeWorker is a worker process, as far as its companion can tell: it starts one, then an
// action that stays in the worker's process group, and beside it, in that group too, a
// process of no action that blocks SIGTERM, so that a signal sent to the group stays pending
// where a test can read it. It writes their pids into dir and waits to be killed.
func fakeWorker(dir string) error {
	marker := reaper.NewMarker("w-" + strconv.Itoa(os.Getpid()) + "-fake")
	c, err := reaper.Launch(companionCmd(marker, ""))
	if err != nil {
		return err
	}
	action := exec.Command("/bin/sleep", "300")
	action.Env = testEnv(marker.Env()...)
	bystander := exec.Command(os.Args[0])
	bystander.Env = testEnv("REAPER_TEST_BLOCK_TERM=1")
	for _, cmd := range []*exec.Cmd{action, bystander} {
		if err := cmd.Start(); err != nil {
			return err
		}
	}
	for name, pid := range map[string]int{"companion": c.PID(), "action": action.Process.Pid, "bystander": bystander.Process.Pid} {
		if err := os.WriteFile(filepath.Join(dir, name+".tmp"), []byte(strconv.Itoa(pid)), 0o600); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, name+".tmp"), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	select {}
}

// blockTermAndSleep becomes a sleep that blocks SIGTERM: a signal mask survives exec, and
// the thread that calls exec is the one whose mask the new program gets.
func blockTermAndSleep() {
	runtime.LockOSThread()
	set := uint64(1) << (syscall.SIGTERM - 1)
	const sigBlock = 0
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, sigBlock, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0); errno != 0 {
		fmt.Fprintln(os.Stderr, "block SIGTERM:", errno)
		os.Exit(1)
	}
	err := syscall.Exec("/bin/sleep", []string{"sleep", "300"}, testEnv())
	fmt.Fprintln(os.Stderr, "exec sleep:", err)
	os.Exit(1)
}

// hasTerm reports whether process pid has SIGTERM in one of the signal sets of its status
// (SigBlk: blocked; SigPnd and ShdPnd: pending, as a blocked one stays).
func hasTerm(t *testing.T, pid int, sets ...string) bool {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(status), "\n") {
		key, value, _ := strings.Cut(line, ":")
		if !slices.Contains(sets, key) {
			continue
		}
		set, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		require.NoError(t, err, line)
		if set&(1<<(syscall.SIGTERM-1)) != 0 {
			return true
		}
	}
	return false
}

// When its worker dies, the companion ends an action that stayed in the worker's process
// group, but signals that group no more than the worker's clean stop would: it holds other
// processes (the shell that started the worker, a pipeline's other end). It reads which group
// that is before the worker dies; after, its parent is whatever adopted it.
func TestCompanionSparesItsWorkersGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	worker := exec.Command(os.Args[0])
	worker.Env = testEnv("REAPER_TEST_WORKER_DIR=" + dir)
	var logs strings.Builder
	worker.Stderr = &logs
	worker.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, worker.Start())
	t.Cleanup(func() { _ = worker.Process.Kill(); _ = worker.Wait() })
	companion, action, bystander := readPID(t, filepath.Join(dir, "companion")), readPID(t, filepath.Join(dir, "action")), readPID(t, filepath.Join(dir, "bystander"))
	for _, pid := range []int{action, bystander} {
		pgid, err := syscall.Getpgid(pid)
		require.NoError(t, err)
		require.Equal(t, worker.Process.Pid, pgid, "in the worker's process group")
	}
	// Its pid is known from its start, before it blocks the signal and execs.
	require.Eventually(t, func() bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", bystander))
		return err == nil && string(comm) == "sleep\n"
	}, waitLimit, 5*time.Millisecond, "the bystander never became a sleep")
	require.True(t, hasTerm(t, bystander, "SigBlk"), "the bystander blocks SIGTERM")
	require.False(t, hasTerm(t, bystander, "SigPnd", "ShdPnd"))

	require.NoError(t, worker.Process.Kill())
	_ = worker.Wait()
	requireGone(t, action)
	requireGone(t, companion) // done with its reap
	requireAlive(t, bystander)
	require.False(t, hasTerm(t, bystander, "SigPnd", "ShdPnd"), "the companion signalled its worker's process group\n%s", logs.String())
}
