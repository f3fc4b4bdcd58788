package app_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/store/storetest"
)

// End to end on separate processes on RabbitMQ: examples.approval asks an operator; every
// executor is killed and started again while it waits; a viewer's answer is refused (403),
// an answer that breaks the schema too (400, naming the field), and the operator's answer
// through the CLI takes the workflow on down its approved branch. A second one, unanswered,
// times out and takes its timed_out() branch, and a late answer to it is 409.
func TestInquiryAcrossProcesses(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	ns := namespace(t)
	c := newCluster(t, ns, nil, "--database-url="+dbURL, "--amqp-url="+brokertest.URL(t), "--amqp-namespace="+ns,
		"--worker-heartbeat=1s", "--worker-timeout=5s")
	c.start("api", "executor", "executor", "worker")
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	api := c.running("api")[0]
	examples, err := filepath.Abs("../testdata/packs/examples")
	require.NoError(t, err)
	c.mustCall(api, http.StatusOK, http.MethodPost, "/api/v1/packs/register", map[string]any{"path": examples})
	asOperator := identityEnv(t, c, api, "olga", "operator")
	asViewer := identityEnv(t, c, api, "vera", "viewer")

	// inquiryOf waits for the inquiry of the workflow's ask task and returns its id.
	inquiryOf := func(workflow int64) string {
		var id int64
		awaitRow(t, pool, workflowSettle, "the inquiry", func(ctx context.Context) (bool, error) {
			err := pool.QueryRow(ctx, `SELECT id FROM attune.inquiry WHERE workflow = $1`, workflow).Scan(&id)
			return err == nil, err
		})
		return strconv.FormatInt(id, 10)
	}
	respond := func(env []string, id, answer string) (string, string, int) {
		return runAttuneEnv(t, env, "inquiry", "respond", id, "--data", answer, "--api-url", "http://"+api.addr)
	}

	// inquiryEvent waits for the live stream to announce inquiry in status.
	inquiryEvent := func(live *liveStream, inquiry, status string) {
		t.Helper()
		live.next(func(ev streamEvent) bool {
			return ev.name == "inquiry" && fmt.Sprint(ev.data["id"]) == inquiry && ev.data["status"] == status
		})
	}

	t.Run("answered after every executor restarted", func(t *testing.T) {
		live := api.current().stream(t, "")
		id := executeWorkflow(t, c, "examples.approval", map[string]any{"version": "2.0"})
		inquiry := inquiryOf(id)
		inquiryEvent(live, inquiry, "pending")
		for _, m := range c.running("executor") {
			_, err := m.signal(syscall.SIGKILL, 30*time.Second)
			require.NoError(t, err)
		}
		for _, m := range c.all() {
			if m.role == "executor" {
				require.NoError(t, m.restart())
			}
		}

		stdout, stderr, code := runAttuneEnv(t, asViewer, "inquiry", "list", "--status", "pending", "--api-url", "http://"+api.addr)
		require.Zero(t, code, stderr)
		require.Contains(t, stdout, "Deploy 2.0?")

		_, stderr, code = respond(asViewer, inquiry, `{"approved": true}`)
		require.NotZero(t, code)
		require.Contains(t, stderr, "may be answered by roles operator (and admins); vera is viewer")
		_, stderr, code = respond(asOperator, inquiry, `{"approved": "yes"}`)
		require.NotZero(t, code)
		require.Contains(t, stderr, "response.approved: got string, want boolean")

		stdout, stderr, code = respond(asOperator, inquiry, `{"approved": true, "comment": "ship it"}`)
		require.Zero(t, code, stderr)
		require.Contains(t, stdout, "responded")
		inquiryEvent(live, inquiry, "responded")

		status, result, reason := awaitExecution(t, pool, id)
		require.Equal(t, "completed", status, "reason: %s", reason)
		require.Equal(t, map[string]any{"decision": "approved", "comment": "ship it"}, result)
		tasks := map[string]string{}
		for _, ch := range readChildren(t, pool, id) {
			tasks[ch.task] = ch.status
		}
		require.Equal(t, map[string]string{"ask": "completed", "deploy": "completed", "report": "completed"}, tasks)
	})

	t.Run("timed out", func(t *testing.T) {
		id := executeWorkflow(t, c, "examples.approval", map[string]any{"timeout_seconds": 2})
		inquiry := inquiryOf(id)
		status, result, reason := awaitExecution(t, pool, id)
		require.Equal(t, "completed", status, "reason: %s", reason)
		require.Equal(t, "no answer", result["decision"])
		tasks := map[string]string{}
		for _, ch := range readChildren(t, pool, id) {
			tasks[ch.task] = ch.status
		}
		require.Equal(t, map[string]string{"ask": "timeout", "report": "completed"}, tasks, "the deploy never ran")

		_, stderr, code := respond(asOperator, inquiry, `{"approved": true}`)
		require.NotZero(t, code)
		require.Contains(t, stderr, "inquiry "+inquiry+" is already timed_out")
	})
}

// identityEnv creates an identity with role through the API and returns the environment that
// makes the CLI act as it.
func identityEnv(t *testing.T, c *cluster, api *member, login, role string) []string {
	t.Helper()
	password := "pw-" + login + "-long-enough"
	c.mustCall(api, http.StatusCreated, http.MethodPost, "/api/v1/identities",
		map[string]string{"login": login, "password": password, "role": role})
	out := c.mustCall(api, http.StatusOK, http.MethodPost, "/auth/login", map[string]string{"login": login, "password": password})
	token, ok := out["access_token"].(string)
	require.True(t, ok, fmt.Sprintf("no access token in %v", out))
	return []string{"ATTUNE_TOKEN=" + token}
}
