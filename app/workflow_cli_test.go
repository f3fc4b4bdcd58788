package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/store"
	"github.com/attune-go/attune/store/storetest"
)

// The CLI shows and steers workflows through a real api process. No executor runs: the tests
// write the state a workflow's executor would have left (storetest.FillWorkflow) into the
// process's database, and read what the API and the CLI make of it.

// workflowSecret is the value of the secret parameter token of flows.deploy here.
const workflowSecret = "tok-9876543210"

// startWorkflowAPI runs the api role alone on RabbitMQ, over a database holding flows.deploy,
// a workflow whose parameter token is secret, and flows.step, an action its tasks run; it
// returns the process and a store on its database.
func startWorkflowAPI(t *testing.T) (*process, *store.Store) {
	t.Helper()
	dbURL := storetest.NewDatabase(t)
	p := startServe(t, "--roles=api", "--database-url="+dbURL, "--amqp-url="+brokertest.URL(t), "--amqp-namespace="+namespace(t),
		"--shutdown-timeout=5s")
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.stop(t, syscall.SIGTERM, 30*time.Second)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Open(ctx, store.Config{URL: dbURL, MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	s := store.NewStore(pool)
	_, err = s.PackRegister(ctx, store.PackRegistration{
		Pack: store.Pack{Ref: "flows", Path: "/packs/flows"},
		Actions: []store.Action{
			storetest.WorkflowAction("flows.deploy", `{"token": {"type": "string", "secret": true}}`),
			{Ref: "flows.step", RunnerType: "noop", OutputFormat: "text", TimeoutSeconds: 30, Enabled: true},
		},
	})
	require.NoError(t, err)
	return p, s
}

// `execution show` of a workflow draws its tasks as a tree under the execution's fields: each
// task's status, item progress and executions, the tasks of a workflow a task runs indented
// under it; then the variables, secrets masked. -o json is the API's answer.
func TestCLIWorkflowShow(t *testing.T) {
	t.Parallel()
	p, s := startWorkflowAPI(t)
	w := storetest.FillWorkflow(t, s, storetest.Workflow{
		ActionRef: "flows.deploy", Parameters: `{"token": "` + workflowSecret + `"}`, Secrets: []string{"token"},
		Vars: `{"greeting": "hello", "auth": "Bearer ` + workflowSecret + `"}`,
		Tasks: []storetest.WorkflowTask{
			{Name: "check", Status: store.TaskSucceeded, Children: []storetest.WorkflowChild{{ActionRef: "flows.step", Status: store.ExecutionCompleted}}},
			{Name: "hosts", Items: make([]any, 200), Children: []storetest.WorkflowChild{
				{ActionRef: "flows.step", Item: 0, Status: store.ExecutionCompleted},
				{ActionRef: "flows.step", Item: 1, Status: store.ExecutionRunning},
			}},
			{Name: "inner", Children: []storetest.WorkflowChild{{Nested: &storetest.Workflow{ActionRef: "flows.deploy",
				Tasks: []storetest.WorkflowTask{{Name: "build", Children: []storetest.WorkflowChild{{ActionRef: "flows.step", Status: store.ExecutionRunning}}}}}}}},
			{Name: "check", Status: store.TaskWaiting},
		},
	})
	inner := w.Children[2][0]
	build := w.Nested[inner].Children[0][0]
	id := strconv.FormatInt(w.ID, 10)

	stdout, stderr, code := p.cli(t, "execution", "show", id)
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stdout, workflowSecret)
	tree := stdout[strings.Index(stdout, "TASK "):]
	lines := strings.Split(strings.TrimSpace(tree), "\n")
	want := []string{
		`^TASK\s+STATUS\s+ITEMS\s+EXECUTIONS$`,
		fmt.Sprintf(`^├─ check\s+succeeded\s+%d$`, w.Children[0][0]),
		fmt.Sprintf(`^├─ hosts\s+running\s+1/200\s+%d %d$`, w.Children[1][0], w.Children[1][1]),
		fmt.Sprintf(`^├─ inner\s+running\s+%d$`, inner),
		fmt.Sprintf(`^│  └─ %d flows.deploy\s+running$`, inner),
		fmt.Sprintf(`^│     └─ build\s+running\s+%d$`, build),
		`^└─ check #2\s+waiting$`,
		`^$`,
		`^VAR\s+VALUE$`,
		`^auth\s+Bearer \*{8}$`,
		`^greeting\s+hello$`,
	}
	require.Len(t, lines, len(want), tree)
	for i, re := range want {
		require.Regexp(t, regexp.MustCompile(re), lines[i], tree)
	}
	require.Regexp(t, `(?m)^status\s+running$`, stdout, "the execution's fields come first")

	shown := cliJSON(t, p, 0, "execution", "show", id)
	_, body := p.get(t, "/api/v1/executions/"+id)
	require.Equal(t, data(t, body), shown)

	children := cliJSONList(t, p, "execution", "list", "--parent", id)
	require.Len(t, children, 4, "check, hosts' two and inner; inner's own task is inner's child")
	// The API judges the filter, as it does the other filters of a list.
	_, stderr, code = p.cli(t, "execution", "list", "--parent", "-3")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), `invalid parent "-3"`)
}

// lockedBuffer is the standard error of a command a test reads while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cliJSONList runs a list command with -o json and decodes its items.
func cliJSONList(t *testing.T, p *process, args ...string) []map[string]any {
	t.Helper()
	stdout, stderr, code := p.cli(t, append(args, "-o", "json")...)
	require.Equal(t, 0, code, stderr)
	var out []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)
	return out
}

// `execution pause` and `resume` steer a running workflow and print it; an execution that is
// no workflow is refused in one line, and a bad id is a usage error.
func TestCLIWorkflowPauseResume(t *testing.T) {
	t.Parallel()
	p, s := startWorkflowAPI(t)
	w := storetest.FillWorkflow(t, s, storetest.Workflow{ActionRef: "flows.deploy",
		Tasks: []storetest.WorkflowTask{{Name: "step", Children: []storetest.WorkflowChild{{ActionRef: "flows.step", Status: store.ExecutionRunning}}}}})
	id := strconv.FormatInt(w.ID, 10)

	require.Equal(t, "pausing", cliJSON(t, p, 0, "execution", "pause", id)["status"])
	stdout, stderr, code := p.cli(t, "execution", "resume", id)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^status\s+running$`, stdout)

	_, stderr, code = p.cli(t, "execution", "resume", id)
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "is running: only a pausing or paused workflow can be resumed (409 Conflict)")
	step := strconv.FormatInt(w.Children[0][0], 10)
	_, stderr, code = p.cli(t, "execution", "pause", step)
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "execution "+step+" of flows.step is no workflow")
	_, stderr, code = p.cli(t, "execution", "pause", "0")
	require.Equal(t, 2, code)
	requireOneErrorLine(t, stderr)
}

// `execution tail` of a workflow prints each change of its tasks' executions under its own
// lines, as the live stream carries them, and ends when the workflow does, with its exit
// status: 1 and the reason for one that failed, 0 and its output for one that completed. The
// stream of the workflow carries its task's change, with the workflow's id, and its own
// pausing and running again.
func TestCLIWorkflowTail(t *testing.T) {
	t.Parallel()
	p, s := startWorkflowAPI(t)
	w := storetest.FillWorkflow(t, s, storetest.Workflow{ActionRef: "flows.deploy",
		Tasks: []storetest.WorkflowTask{{Name: "step", Children: []storetest.WorkflowChild{{ActionRef: "flows.step"}}}}})
	step := w.Children[0][0]
	live := p.stream(t, "execution_id="+strconv.FormatInt(w.ID, 10))

	tail := exec.Command(attuneBin, "execution", "tail", strconv.FormatInt(w.ID, 10), "--api-url", "http://"+p.addr)
	tail.Env = childEnv("ATTUNE_TOKEN=" + p.authToken(t))
	out, err := tail.StdoutPipe()
	require.NoError(t, err)
	stderr := &lockedBuffer{}
	tail.Stderr = stderr
	require.NoError(t, tail.Start())
	t.Cleanup(func() { _ = tail.Process.Kill(); _ = tail.Wait() })
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case line, ok := <-lines:
			require.True(t, ok, "tail ended early; stderr: %s", stderr.String())
			return line
		case <-time.After(30 * time.Second):
			t.Fatal("tail printed nothing within 30s")
			return ""
		}
	}

	// The first line comes once the stream is open and the workflow read.
	require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  running$`, next())
	code, body := p.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", step), nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Regexp(t, fmt.Sprintf(`^\d\d:\d\d:\d\d\.\d{3}    %d flows.step  cancelled$`, step), next())
	ev := live.next(executionEvent(step))
	require.Equal(t, "cancelled", ev.data["status"])
	require.EqualValues(t, w.ID, ev.data["workflow"])

	// Pausing and resuming move the workflow to and fro among statuses of one rank: each
	// change shows, in the order it was made.
	for _, verb := range []string{"pause", "resume"} {
		code, body = p.post(t, fmt.Sprintf("/api/v1/executions/%d/%s", w.ID, verb), nil)
		require.Equal(t, http.StatusAccepted, code, body)
		require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  `+data(t, body)["status"].(string)+`$`, next())
	}

	// The workflow ends with no notification (no executor here): the tail's rereads find it.
	_, ok, err := s.ExecutionTransition(context.Background(), store.ExecutionTransition{ID: w.ID, From: []string{store.ExecutionRunning},
		To: store.ExecutionFailed, Reason: "task step ended cancelled"})
	require.NoError(t, err)
	require.True(t, ok)
	require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  failed$`, next())
	_, open := <-lines
	require.False(t, open, "tail printed more: stderr %s", stderr.String())
	var exitErr *exec.ExitError
	require.ErrorAs(t, tail.Wait(), &exitErr)
	require.Equal(t, 1, exitErr.ExitCode())
	require.Equal(t, fmt.Sprintf("execution %d failed: task step ended cancelled\n", w.ID), stderr.String())

	done := storetest.FillWorkflow(t, s, storetest.Workflow{ActionRef: "flows.deploy"})
	_, ok, err = s.ExecutionTransition(context.Background(), store.ExecutionTransition{ID: done.ID, From: []string{store.ExecutionRunning},
		To: store.ExecutionCompleted, Result: json.RawMessage(`{"greeting": "hello"}`)})
	require.NoError(t, err)
	require.True(t, ok)
	stdout, errOut, code := p.cli(t, "execution", "tail", strconv.FormatInt(done.ID, 10))
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `^\d\d:\d\d:\d\d\.\d{3}  completed\n\{"greeting":"hello"\}\n$`, stdout)
}
