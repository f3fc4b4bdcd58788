package runner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/attune-go/attune/modules/worker/runner"
	"github.com/stretchr/testify/require"
)

// runAsync runs job in the background so that the test can act on it while it runs.
func runAsync(ctx context.Context, r runner.Runner, job runner.Job) <-chan runner.Result {
	out := make(chan runner.Result, 1)
	go func() { out <- r.Run(ctx, job) }()
	return out
}

func awaitResult(t *testing.T, results <-chan runner.Result) runner.Result {
	t.Helper()
	select {
	case res := <-results:
		return res
	case <-time.After(waitLimit):
		t.Fatal("run did not return")
		return runner.Result{}
	}
}

func waitForFile(t *testing.T, path string) string {
	t.Helper()
	var content string
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(path)
		content = strings.TrimSpace(string(data))
		return err == nil && content != ""
	}, waitLimit, 10*time.Millisecond, "%s never written", path)
	return content
}

// readPID reads the pid a script wrote, and makes sure the process dies with the test even
// when an assertion fails first.
func readPID(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(waitForFile(t, path))
	require.NoError(t, err)
	t.Cleanup(func() {
		if !gone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return pid
}

// gone reports whether pid has exited. A zombie has exited too: an orphan is reaped by PID 1,
// and in a container whose PID 1 does not reap, the dead grandchild stays a zombie forever.
func gone(pid int) bool {
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

func TestShellTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := writeScript(t, "sleep 100 &\necho $! > "+pidFile+"\necho started\nwait\n")
	job := scriptJob(script)
	job.Timeout = 300 * time.Millisecond

	start := time.Now()
	res := shell(runner.Config{KillGrace: 200 * time.Millisecond}).Run(t.Context(), job)
	require.Less(t, time.Since(start), waitLimit)

	require.True(t, res.TimedOut)
	require.False(t, res.Cancelled)
	require.False(t, res.Succeeded)
	require.Equal(t, "timed out after 300ms", res.Error)
	require.Equal(t, -1, res.ExitCode)
	require.Equal(t, "started\n", res.Stdout)
	require.GreaterOrEqual(t, res.DurationMS, int64(300))

	child := readPID(t, pidFile)
	require.Eventually(t, func() bool { return gone(child) }, waitLimit, 10*time.Millisecond,
		"background grandchild %d survived the timeout", child)
}

func TestShellCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	pidFile := filepath.Join(dir, "child.pid")
	job := commandJob(t, "sleep 100 & echo $! > "+pidFile+"; echo yes > "+ready+"; wait")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	results := runAsync(ctx, shell(runner.Config{KillGrace: 200 * time.Millisecond}), job)
	waitForFile(t, ready)
	cancel()
	res := awaitResult(t, results)

	require.True(t, res.Cancelled)
	require.False(t, res.TimedOut)
	require.False(t, res.Succeeded)
	require.Equal(t, "cancelled", res.Error)
	child := readPID(t, pidFile)
	require.Eventually(t, func() bool { return gone(child) }, waitLimit, 10*time.Millisecond)
}

func TestShellIgnoredSIGTERMGetsSIGKILL(t *testing.T) {
	t.Parallel()
	ready := filepath.Join(t.TempDir(), "ready")
	job := scriptJob(writeScript(t, `trap 'echo ignoring term >&2' TERM
echo yes > `+ready+`
while :; do sleep 0.05; done
`))
	const grace = 200 * time.Millisecond

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	results := runAsync(ctx, shell(runner.Config{KillGrace: grace}), job)
	waitForFile(t, ready)
	cancelled := time.Now()
	cancel()
	res := awaitResult(t, results)

	require.GreaterOrEqual(t, time.Since(cancelled), grace, "SIGKILL came before the grace period ended")
	require.True(t, res.Cancelled)
	require.False(t, res.Succeeded)
	require.Equal(t, -1, res.ExitCode)
	require.Contains(t, res.Stderr, "ignoring term")
}

func TestShellBackgroundChildDoesNotHoldRunOpen(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	job := commandJob(t, "sleep 100 & echo $! > "+pidFile+"; echo done")

	res := awaitResult(t, runAsync(t.Context(), shell(runner.Config{}), job))
	readPID(t, pidFile)
	require.True(t, res.Succeeded, res.Error)
	require.Equal(t, "done\n", res.Stdout)
	require.False(t, res.TimedOut)
}

func TestShellContextAlreadyCancelled(t *testing.T) {
	t.Parallel()
	marker := filepath.Join(t.TempDir(), "ran")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := shell(runner.Config{}).Run(ctx, commandJob(t, "touch "+marker))
	require.True(t, res.Cancelled)
	require.False(t, res.Succeeded)
	require.NoFileExists(t, marker)
}
