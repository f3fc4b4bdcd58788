package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// backgroundCLI is an attune command a test watches while it runs.
type backgroundCLI struct {
	stdout, stderr lockedBuffer
	done           chan struct{}
	code           int
}

// startCLI starts an attune command against p's API as the first admin, without waiting for
// it; it is killed when the test ends.
func (p *process) startCLI(t *testing.T, args ...string) *backgroundCLI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, attuneBin, append(args, "--api-url", "http://"+p.addr)...)
	cmd.Env = childEnv("ATTUNE_TOKEN=" + p.authToken(t))
	c := &backgroundCLI{done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &c.stdout, &c.stderr
	require.NoError(t, cmd.Start())
	go func() {
		defer close(c.done)
		var exitErr *exec.ExitError
		if err := cmd.Wait(); errors.As(err, &exitErr) {
			c.code = exitErr.ExitCode()
		} else if err != nil {
			c.code = -1
		}
	}()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// waitOutput waits until the command's standard output holds want.
func (c *backgroundCLI) waitOutput(t *testing.T, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(c.stdout.String(), want) }, time.Minute, 10*time.Millisecond,
		"no %q in the output: %s\nstderr: %s", want, c.stdout.String(), c.stderr.String())
}

// wait waits for the command to end and returns its exit code.
func (c *backgroundCLI) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
		return c.code
	case <-time.After(time.Minute):
		t.Fatalf("the command did not end; output so far: %s\nstderr: %s", c.stdout.String(), c.stderr.String())
		return 0
	}
}

// The test: every role in its own process on RabbitMQ, two api replicas. What a
// running action prints reaches `attune execution tail` through either replica while the
// action still runs: a tail that began before the line was printed sees it as it comes, one
// that began after sees it from what its replica kept. When the test lets the action end,
// both end with its status (failed: exit 1), its standard error on theirs and the line once.
func TestTailShowsOutputWhileRunning(t *testing.T) {
	t.Parallel()
	start := splitRoles(t)
	apiA, apiB := start("api"), start("api")
	start("executor")
	start("worker")

	dir := t.TempDir()
	goFile, releaseFile := filepath.Join(dir, "go"), filepath.Join(dir, "release")
	cmd := fmt.Sprintf(`until [ -e %[1]s ]; do sleep 0.02; done; echo printed while running; until [ -e %[2]s ]; do sleep 0.02; done;`+
		` echo at the end >&2; exit 3`, goFile, releaseFile)
	code, body := apiA.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "core.local", "parameters": map[string]any{"cmd": cmd}})
	require.Equal(t, http.StatusCreated, code, body)
	execID := id(t, data(t, body), "id")
	status := func() string {
		_, body := apiA.get(t, fmt.Sprintf("/api/v1/executions/%d", execID))
		return data(t, body)["status"].(string)
	}

	early := apiB.startCLI(t, "execution", "tail", fmt.Sprint(execID))
	early.waitOutput(t, "  running\n")
	require.NoError(t, os.WriteFile(goFile, nil, 0o600))
	early.waitOutput(t, "printed while running\n")
	late := apiA.startCLI(t, "execution", "tail", fmt.Sprint(execID))
	late.waitOutput(t, "printed while running\n")
	require.Equal(t, "running", status(), "the action waits for the test")

	require.NoError(t, os.WriteFile(releaseFile, nil, 0o600))
	for _, tail := range []*backgroundCLI{early, late} {
		require.Equal(t, 1, tail.wait(t), "stdout: %s\nstderr: %s", tail.stdout.String(), tail.stderr.String())
		require.Equal(t, 1, strings.Count(tail.stdout.String(), "printed while running"), tail.stdout.String())
		require.Contains(t, tail.stderr.String(), "at the end\n")
		require.Contains(t, tail.stderr.String(), fmt.Sprintf("execution %d failed: exit status 3", execID))
		require.NotContains(t, tail.stderr.String(), "incomplete")
	}
	require.Contains(t, early.stdout.String(), "  failed\n")

	// An execution that ended before tail began: its stored output, the same way.
	stdout, stderr, code := apiB.cli(t, "execution", "tail", fmt.Sprint(execID))
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stdout, "printed while running\n")
	require.Contains(t, stderr, "at the end\n")

	_, stderr, code = apiB.cli(t, "execution", "tail", "999999")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "999999")
	require.Contains(t, stderr, "not found")
}
