package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
)

// attuneBin is the binary under test, built once by TestMain: these tests run attune the way
// operators do, as a process that gets signals and exits with a code.
var attuneBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "attune-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	attuneBin = filepath.Join(dir, "attune")
	build := exec.Command("go", "build", "-o", attuneBin, "github.com/attune-go/attune")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build attune:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// childEnv is the test's environment without ATTUNE_* settings, so that only what a test
// passes configures the child.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ATTUNE_") && !strings.HasPrefix(kv, "ATTUNE_TEST_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// runAttune runs a short attune command and returns its output and exit code.
func runAttune(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runAttuneWith(t, "", nil, args...)
}

// runAttuneEnv is runAttune with ATTUNE_* settings in the child's environment.
func runAttuneEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runAttuneWith(t, "", env, args...)
}

// runAttuneWith is runAttune with stdin and ATTUNE_* settings in the child's environment.
func runAttuneWith(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, attuneBin, args...)
	cmd.Env = childEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		var exitErr *exec.ExitError
		require.ErrorAs(t, err, &exitErr, "run attune %v", args)
		return out.String(), errb.String(), exitErr.ExitCode()
	}
	return out.String(), errb.String(), 0
}

// process is a running `attune serve`.
type process struct {
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	logs   []map[string]any
	raw    bytes.Buffer
	update chan struct{}
	exited chan struct{}
	code   int
	// token is the first admin's access token, once a request needed it.
	token string
}

// testAdminPassword is the password of the admin every test server creates, so that tests
// can log in as it.
const testAdminPassword = "attune-test-admin"

// authToken logs in as the first admin, once, and returns the access token. The process
// creates the admin as it starts, so a login refused at first is tried again for a while.
func (p *process) authToken(t *testing.T) string {
	t.Helper()
	p.mu.Lock()
	token := p.token
	p.mu.Unlock()
	if token != "" {
		return token
	}
	body, err := json.Marshal(map[string]string{"login": "admin", "password": testAdminPassword})
	require.NoError(t, err)
	var out map[string]any
	require.Eventually(t, func() bool {
		resp, err := http.Post("http://"+p.addr+"/auth/login", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		out = nil
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode == http.StatusOK
	}, 2*time.Minute, 20*time.Millisecond, "log in to %s as admin: %v", p.addr, out)
	token, _ = out["access_token"].(string)
	p.mu.Lock()
	p.token = token
	p.mu.Unlock()
	return token
}

// request sends an API request as the first admin.
func (p *process) request(t *testing.T, method, path string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.addr+path, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(path, "/api/") {
		req.Header.Set("Authorization", "Bearer "+p.authToken(t))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

// cli runs an attune command against this process's API as the first admin.
func (p *process) cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runAttuneEnv(t, []string{"ATTUNE_TOKEN=" + p.authToken(t)}, append(args, "--api-url", "http://"+p.addr)...)
}

// startServe starts `attune serve` with JSON logs and waits until it says it is ready.
func startServe(t *testing.T, args ...string) *process {
	t.Helper()
	p := startServeNoWait(t, args...)
	p.ready(t)
	return p
}

// ready waits until p says it is ready, and notes its address.
func (p *process) ready(t *testing.T) {
	t.Helper()
	rec := p.waitLog(t, "attune ready", 60*time.Second)
	addr, _ := rec["http_addr"].(string)
	p.addr = strings.Replace(addr, "[::]", "127.0.0.1", 1)
}

func startServeNoWait(t *testing.T, args ...string) *process {
	t.Helper()
	return startServeEnv(t, nil, args...)
}

// startServeEnv is startServeNoWait with env in the process's environment.
func startServeEnv(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	return startServeIn(t, "", env, args...)
}

// startServeIn is startServeEnv with dir as the process's working directory.
func startServeIn(t *testing.T, dir string, env []string, args ...string) *process {
	t.Helper()
	worker := "w-" + uuid.NewString()[:8]
	full := append([]string{"--http-addr=127.0.0.1:0", "--worker-name=" + worker}, args...)
	for _, a := range args {
		if ns, ok := strings.CutPrefix(a, "--amqp-namespace="); ok {
			// Runs after the process is gone (cleanups run last-in first-out): the worker's
			// cancel queue and the runners' dispatch queues were declared by the processes,
			// and no test broker knows to delete them.
			t.Cleanup(func() { deleteWorkerQueues(t, ns, worker) })
		}
	}
	// The pack caches of a test's processes go with the test, not into the user's cache.
	p, err := spawnServeIn(dir, append([]string{"XDG_CACHE_HOME=" + t.TempDir()}, env...), full...)
	require.NoError(t, err)
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("attune serve output:\n%s", p.output())
		}
	})
	return p
}

// deleteWorkerQueues deletes, on the shared test broker, the queues a worker of namespace ns
// declared that no test broker knows about.
func deleteWorkerQueues(t *testing.T, ns, worker string) {
	brokertest.DeleteQueues(t, ns+".attune.worker."+worker+".cancel", ns+".attune.workers.shell.dispatch",
		ns+".attune.workers.http.dispatch", ns+".attune.workers.noop.dispatch")
}

// spawnServe starts `attune serve` with JSON logs, the test admin's password and env in its
// environment, and returns without waiting for it; nothing stops it but the caller.
func spawnServe(env []string, args ...string) (*process, error) {
	return spawnServeIn("", env, args...)
}

// spawnServeIn is spawnServe with dir as the process's working directory ("" for the test's).
func spawnServeIn(dir string, env []string, args ...string) (*process, error) {
	cmd := exec.Command(attuneBin, append([]string{"serve", "--log-format=json"}, args...)...)
	cmd.Dir = dir
	cmd.Env = childEnv(append([]string{"ATTUNE_ADMIN_PASSWORD=" + testAdminPassword}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start attune serve: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start attune serve: %w", err)
	}
	p := &process{cmd: cmd, update: make(chan struct{}), exited: make(chan struct{})}
	go p.read(stderr)
	return p, nil
}

// kill ends the process with SIGKILL unless it has exited, and waits until it has.
func (p *process) kill() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *process) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var rec map[string]any
		_ = json.Unmarshal(line, &rec)
		p.mu.Lock()
		p.raw.Write(line)
		p.raw.WriteByte('\n')
		if rec != nil {
			p.logs = append(p.logs, rec)
		}
		close(p.update)
		p.update = make(chan struct{})
		p.mu.Unlock()
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.code = p.cmd.ProcessState.ExitCode()
	_ = err
	p.mu.Unlock()
	close(p.exited)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// waitLog waits for a log record whose msg is msg.
func (p *process) waitLog(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	rec, err := p.awaitLog(context.Background(), msg, timeout)
	if err != nil {
		t.Fatalf("%v:\n%s", err, p.output())
	}
	return rec
}

// awaitLog is waitLog for callers that may not fail the test, such as other goroutines; it
// gives up when ctx ends.
func (p *process) awaitLog(ctx context.Context, msg string, timeout time.Duration) (map[string]any, error) {
	deadline := time.After(timeout)
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.logs); i++ {
			if p.logs[i]["msg"] == msg {
				rec := p.logs[i]
				p.mu.Unlock()
				return rec, nil
			}
		}
		update := p.update
		p.mu.Unlock()
		select {
		case <-update:
		case <-p.exited:
			return nil, fmt.Errorf("attune exited (code %d) before logging %q", p.exitCode(), msg)
		case <-deadline:
			return nil, fmt.Errorf("attune did not log %q within %s", msg, timeout)
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %q: %w", msg, ctx.Err())
		}
	}
}

// hasLog reports whether the process has logged msg so far.
func (p *process) hasLog(msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, rec := range p.logs {
		if rec["msg"] == msg {
			return true
		}
	}
	return false
}

func (p *process) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}

// stop sends sig and returns the exit code and how long the process took to exit.
func (p *process) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(sig))
	select {
	case <-p.exited:
		return p.exitCode(), time.Since(start)
	case <-time.After(timeout):
		t.Fatalf("attune did not exit within %s of %s", timeout, sig)
		return -1, 0
	}
}

func (p *process) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	resp := p.request(t, http.MethodGet, path, nil)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func (p *process) readyStatus(t *testing.T) int {
	t.Helper()
	code, _ := p.get(t, "/readyz")
	return code
}
