package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
	"github.com/attune-go/attune/store/storetest"
)

// brokers are the two ways the pipeline runs: every role in one process on the in-process
// broker, and on RabbitMQ.
var brokers = []struct {
	name string
	args func(t *testing.T) []string
}{
	{"inprocess", func(*testing.T) []string { return nil }},
	{"rabbitmq", func(t *testing.T) []string {
		return []string{"--amqp-url=" + brokertest.URL(t), "--amqp-namespace=" + namespace(t)}
	}},
}

func packsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../testdata/packs")
	require.NoError(t, err)
	return dir
}

// startPipeline runs every role with the test packs registered.
func startPipeline(t *testing.T, brokerArgs []string) *process {
	t.Helper()
	args := append([]string{"--database-url=" + storetest.NewDatabase(t), "--packs-dir=" + packsDir(t), "--shutdown-timeout=5s"}, brokerArgs...)
	p := startServe(t, args...)
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.stop(t, syscall.SIGTERM, 30*time.Second)
		}
	})
	return p
}

func (p *process) post(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp := p.request(t, http.MethodPost, path, bytes.NewReader(b))
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func data(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	d, ok := body["data"].(map[string]any)
	require.True(t, ok, "no data object in %v", body)
	return d
}

func id(t *testing.T, obj map[string]any, key string) int64 {
	t.Helper()
	v, ok := obj[key].(float64)
	require.True(t, ok, "no %s in %v", key, obj)
	return int64(v)
}

// waitExecution waits until execution id reaches a terminal status and returns it.
func (p *process) waitExecution(t *testing.T, execID int64) map[string]any {
	t.Helper()
	var exec map[string]any
	require.Eventually(t, func() bool {
		_, body := p.get(t, fmt.Sprintf("/api/v1/executions/%d", execID))
		exec, _ = body["data"].(map[string]any)
		switch exec["status"] {
		case "completed", "failed", "cancelled", "timeout", "abandoned":
			return true
		}
		return false
	}, 60*time.Second, 20*time.Millisecond, "execution %d did not finish: %v", execID, exec)
	return exec
}

// executionOf waits for the execution that event's enforcement of rule created.
func (p *process) executionOf(t *testing.T, rule string, eventID int64) int64 {
	t.Helper()
	var execID int64
	require.Eventually(t, func() bool {
		_, body := p.get(t, "/api/v1/enforcements?rule_ref="+rule)
		for _, e := range body["data"].([]any) {
			enf := e.(map[string]any)
			if int64(enf["event_id"].(float64)) != eventID || enf["status"] != "processed" {
				continue
			}
			_, execs := p.get(t, "/api/v1/executions?per_page=100")
			for _, x := range execs["data"].([]any) {
				ex := x.(map[string]any)
				if ef, ok := ex["enforcement_id"].(float64); ok && int64(ef) == int64(enf["id"].(float64)) {
					execID = int64(ex["id"].(float64))
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no execution for rule %s and event %d", rule, eventID)
	return execID
}

func result(t *testing.T, exec map[string]any) map[string]any {
	t.Helper()
	r, ok := exec["result"].(map[string]any)
	require.True(t, ok, "no result in %v", exec)
	return r
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			p := startPipeline(t, b.args(t))

			t.Run("WebhookMatchesNestedConditions", func(t *testing.T) {
				code, body := p.post(t, "/api/v1/webhooks/demo", map[string]any{"name": "Ada", "kind": "refund"})
				require.Equal(t, http.StatusAccepted, code, body)
				exec := p.waitExecution(t, p.executionOf(t, "demo.on_webhook", id(t, data(t, body), "event_id")))
				require.Equal(t, "completed", exec["status"], exec)
				require.Equal(t, "core.echo", exec["action_ref"])
				require.Equal(t, "Ada\n", result(t, exec)["stdout"])
				require.Equal(t, map[string]any{"message": "Ada"}, exec["parameters"])
			})

			t.Run("WebhookNotMatching", func(t *testing.T) {
				// kind fails the any-branch, test=true trips the not-branch, and a webhook of
				// a url no rule listens on is refused at the door.
				code, body := p.post(t, "/api/v1/webhooks/other", map[string]any{"name": "Bob", "kind": "order"})
				require.Equal(t, http.StatusNotFound, code, body)
				require.Contains(t, body["error"].(map[string]any)["message"], "webhook other: no enabled rule listens on it")
				var events []int64
				for _, post := range []struct {
					url  string
					body map[string]any
				}{
					{"demo", map[string]any{"name": "Bob", "kind": "query"}},
					{"demo", map[string]any{"name": "Bob", "kind": "order", "test": true}},
				} {
					code, body := p.post(t, "/api/v1/webhooks/"+post.url, post.body)
					require.Equal(t, http.StatusAccepted, code)
					events = append(events, id(t, data(t, body), "event_id"))
				}
				// A matching event posted after them is enforced; by then the rules have seen
				// the earlier ones too (one queue, in order), so their absence is final.
				code, body = p.post(t, "/api/v1/webhooks/demo", map[string]any{"name": "Cy", "kind": "order"})
				require.Equal(t, http.StatusAccepted, code)
				p.executionOf(t, "demo.on_webhook", id(t, data(t, body), "event_id"))
				for _, ev := range events {
					require.Eventually(t, func() bool {
						_, e := p.get(t, fmt.Sprintf("/api/v1/events/%d", ev))
						return data(t, e)["rules_evaluated_at"] != nil
					}, 30*time.Second, 20*time.Millisecond)
				}
				_, enfs := p.get(t, "/api/v1/enforcements?rule_ref=demo.on_webhook&per_page=100")
				for _, e := range enfs["data"].([]any) {
					require.NotContains(t, events, int64(e.(map[string]any)["event_id"].(float64)), "a non-matching event was enforced")
				}
			})

			t.Run("TemplatesKeepTypes", func(t *testing.T) {
				code, body := p.post(t, "/api/v1/webhooks/typed", map[string]any{"name": "x", "count": 3})
				require.Equal(t, http.StatusAccepted, code)
				exec := p.waitExecution(t, p.executionOf(t, "demo.on_typed", id(t, data(t, body), "event_id")))
				require.Equal(t, "completed", exec["status"], exec)
				require.Equal(t, map[string]any{"name": "n-x", "count": 3.0}, exec["parameters"])
				require.Equal(t, map[string]any{"name": "n-x", "count": 3.0}, result(t, exec)["data"])
			})

			t.Run("BadParameterFailsTheExecution", func(t *testing.T) {
				code, body := p.post(t, "/api/v1/webhooks/typed", map[string]any{"name": "x", "count": "many"})
				require.Equal(t, http.StatusAccepted, code)
				exec := p.waitExecution(t, p.executionOf(t, "demo.on_typed", id(t, data(t, body), "event_id")))
				require.Equal(t, "failed", exec["status"])
				require.Contains(t, exec["reason"], `parameter "count"`)
				require.Nil(t, exec["started_at"], "it never ran")
			})

			t.Run("RenderFailureFailsTheExecution", func(t *testing.T) {
				// The rule matched; its parameters cannot be rendered. That is a failure before
				// the run, answered as one whose parameters do not fit: a failed execution with
				// the reason, found where failed executions are listed.
				code, body := p.post(t, "/api/v1/webhooks/broken", map[string]any{"n": "not a number"})
				require.Equal(t, http.StatusAccepted, code)
				exec := p.waitExecution(t, p.executionOf(t, "demo.on_broken", id(t, data(t, body), "event_id")))
				require.Equal(t, "failed", exec["status"], exec)
				require.Contains(t, exec["reason"], "render action_params")
				require.Nil(t, exec["started_at"], "it never ran")
				_, failed := p.get(t, "/api/v1/executions?status=failed&rule_ref=demo.on_broken")
				var listed []float64
				for _, e := range failed["data"].([]any) {
					listed = append(listed, e.(map[string]any)["id"].(float64))
				}
				require.Contains(t, listed, exec["id"])
				_, enfBody := p.get(t, fmt.Sprintf("/api/v1/enforcements/%d", int64(exec["enforcement_id"].(float64))))
				enf := data(t, enfBody)
				require.Equal(t, "processed", enf["status"])
				require.Contains(t, enf["reason"], "render action_params")
				// A number renders fine and runs.
				code, body = p.post(t, "/api/v1/webhooks/broken", map[string]any{"n": 21})
				require.Equal(t, http.StatusAccepted, code)
				exec = p.waitExecution(t, p.executionOf(t, "demo.on_broken", id(t, data(t, body), "event_id")))
				require.Equal(t, "completed", exec["status"], exec)
				require.Equal(t, 42.0, result(t, exec)["data"].(map[string]any)["count"])
			})

			t.Run("ManualExecute", func(t *testing.T) {
				code, body := p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.hello", "parameters": map[string]any{"name": "you"}})
				require.Equal(t, http.StatusCreated, code, body)
				require.Equal(t, "scheduled", data(t, body)["status"], "admitted as it was created: no policy applies")
				exec := p.waitExecution(t, id(t, data(t, body), "id"))
				require.Equal(t, "completed", exec["status"], exec)
				require.Equal(t, "Hello, you!\n", result(t, exec)["stdout"])
				require.NotNil(t, exec["started_at"])
				require.NotNil(t, exec["finished_at"])
				require.NotNil(t, exec["worker"])

				code, body = p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.hello", "parameters": map[string]any{"name": 5}})
				require.Equal(t, http.StatusBadRequest, code)
				require.Contains(t, body["error"].(map[string]any)["message"], `parameter "name"`)
				code, _ = p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.nope"})
				require.Equal(t, http.StatusNotFound, code)
			})

			t.Run("FailingAction", func(t *testing.T) {
				_, body := p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.fail"})
				exec := p.waitExecution(t, id(t, data(t, body), "id"))
				require.Equal(t, "failed", exec["status"])
				r := result(t, exec)
				require.Equal(t, 3.0, r["exit_code"])
				require.Equal(t, "failing on purpose\n", r["stderr"])
				require.Equal(t, false, r["succeeded"])
			})

			t.Run("Timeout", func(t *testing.T) {
				_, body := p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.nap"})
				exec := p.waitExecution(t, id(t, data(t, body), "id"))
				require.Equal(t, "timeout", exec["status"])
				require.Equal(t, true, result(t, exec)["timed_out"])
			})

			t.Run("CancelWhileRunning", func(t *testing.T) {
				_, body := p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.slow", "parameters": map[string]any{"seconds": 60}})
				execID := id(t, data(t, body), "id")
				require.Eventually(t, func() bool {
					_, e := p.get(t, fmt.Sprintf("/api/v1/executions/%d", execID))
					return data(t, e)["status"] == "running"
				}, 30*time.Second, 20*time.Millisecond)
				code, body := p.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", execID), nil)
				require.Equal(t, http.StatusAccepted, code, body)
				require.Equal(t, "canceling", data(t, body)["status"])
				exec := p.waitExecution(t, execID)
				require.Equal(t, "cancelled", exec["status"])
				require.Equal(t, true, result(t, exec)["cancelled"])

				code, _ = p.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", execID), nil)
				require.Equal(t, http.StatusConflict, code, "a finished execution cannot be cancelled")
			})

			t.Run("IntervalTimerRunsCoreLocal", func(t *testing.T) {
				// demo.every_second, shipped disabled, fires core.local "echo tick" once a
				// second once enabled.
				code, body := p.post(t, "/api/v1/rules/demo.every_second/enable", nil)
				require.Equal(t, http.StatusOK, code, body)
				t.Cleanup(func() { p.post(t, "/api/v1/rules/demo.every_second/disable", nil) })
				var exec map[string]any
				require.Eventually(t, func() bool {
					_, body := p.get(t, "/api/v1/executions?action_ref=core.local&status=completed&per_page=1")
					list := body["data"].([]any)
					if len(list) == 0 {
						return false
					}
					exec = list[0].(map[string]any)
					return true
				}, 30*time.Second, 50*time.Millisecond, "no timer execution completed")
				require.Equal(t, "tick\n", result(t, exec)["stdout"])
				require.Equal(t, map[string]any{"cmd": "echo tick"}, exec["parameters"])
				_, body = p.get(t, "/api/v1/events?trigger_ref=core.intervaltimer&per_page=1")
				ev := body["data"].([]any)[0].(map[string]any)
				require.Equal(t, "demo.every_second", ev["rule_ref"], "a timer's event is for its rule")
				require.Equal(t, "interval", ev["payload"].(map[string]any)["type"])
			})

			t.Run("EventsAPIValidatesPayload", func(t *testing.T) {
				code, body := p.post(t, "/api/v1/events", map[string]any{"trigger_ref": "demo.order", "payload": map[string]any{"id": "seven"}})
				require.Equal(t, http.StatusBadRequest, code)
				require.Contains(t, body["error"].(map[string]any)["message"], `field "id"`)
				code, _ = p.post(t, "/api/v1/events", map[string]any{"trigger_ref": "demo.order", "payload": map[string]any{"customer": "x"}})
				require.Equal(t, http.StatusBadRequest, code, "id is required")
				code, _ = p.post(t, "/api/v1/events", map[string]any{"trigger_ref": "demo.nope", "payload": map[string]any{}})
				require.Equal(t, http.StatusBadRequest, code)
				code, body = p.post(t, "/api/v1/events", map[string]any{"trigger_ref": "demo.order", "payload": map[string]any{"id": 7, "total": 9.5, "note": "extra fields are fine"}})
				require.Equal(t, http.StatusAccepted, code, body)
				_, ev := p.get(t, fmt.Sprintf("/api/v1/events/%d", id(t, data(t, body), "event_id")))
				require.Equal(t, "demo.order", data(t, ev)["trigger_ref"])
				require.Equal(t, "api", data(t, ev)["source"])
			})

			t.Run("ListsPaginate", func(t *testing.T) {
				code, body := p.get(t, "/api/v1/actions?per_page=2&page=2")
				require.Equal(t, http.StatusOK, code)
				pg := body["pagination"].(map[string]any)
				require.Equal(t, 2.0, pg["page"])
				require.Equal(t, 2.0, pg["page_size"])
				require.Len(t, body["data"], 2)
				require.Greater(t, pg["total_items"].(float64), 4.0)
				code, body = p.get(t, "/api/v1/executions/999999")
				require.Equal(t, http.StatusNotFound, code)
				require.Equal(t, "not_found", body["error"].(map[string]any)["code"])
				code, _ = p.get(t, "/api/v1/executions?status=bogus")
				require.Equal(t, http.StatusBadRequest, code)
			})

			t.Run("RuleRegisteredWhileRunningMatchesAtOnce", func(t *testing.T) {
				// The matcher has cached core.webhook's rules by now; registering a pack must
				// reach it without a restart. Before, no rule listens on the url: refused.
				code, body := p.post(t, "/api/v1/webhooks/late", map[string]any{"n": 1})
				require.Equal(t, http.StatusNotFound, code, body)
				dir, err := filepath.Abs("../testdata/late/late")
				require.NoError(t, err)
				code, body = p.post(t, "/api/v1/packs/register", map[string]any{"path": dir})
				require.Equal(t, http.StatusOK, code, body)
				code, body = p.post(t, "/api/v1/webhooks/late", map[string]any{"n": 2})
				require.Equal(t, http.StatusAccepted, code)
				exec := p.waitExecution(t, p.executionOf(t, "late.on_late", id(t, data(t, body), "event_id")))
				require.Equal(t, "late 2\n", result(t, exec)["stdout"])
			})

			t.Run("BrokenPackRefusedWhole", func(t *testing.T) {
				code, body := p.post(t, "/api/v1/packs/register", map[string]any{"path": filepath.Join(packsDir(t), "broken", "wrong_default")})
				require.Equal(t, http.StatusBadRequest, code)
				msg := body["error"].(map[string]any)["message"].(string)
				require.Contains(t, msg, "actions/count.yaml")
				require.Contains(t, msg, "default")
				code, _ = p.get(t, "/api/v1/actions/demo.count")
				require.Equal(t, http.StatusNotFound, code, "nothing of the broken pack was written")
			})
		})
	}
}

// An execution cancelled before it runs ends cancelled at once and never runs: the worker,
// busy with another action, gets its dispatch later and its claim finds nothing to claim.
func TestCancelBeforeRun(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			p := startPipeline(t, append(b.args(t), "--worker-concurrency=1"))
			_, body := p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.slow", "parameters": map[string]any{"seconds": 60}})
			busy := id(t, data(t, body), "id")
			require.Eventually(t, func() bool {
				_, e := p.get(t, fmt.Sprintf("/api/v1/executions/%d", busy))
				return data(t, e)["status"] == "running"
			}, 30*time.Second, 20*time.Millisecond)

			_, body = p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.hello"})
			waiting := id(t, data(t, body), "id")
			code, body := p.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", waiting), nil)
			require.Equal(t, http.StatusOK, code, body)
			require.Equal(t, "cancelled", data(t, body)["status"])

			code, _ = p.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", busy), nil)
			require.Equal(t, http.StatusAccepted, code)
			require.Equal(t, "cancelled", p.waitExecution(t, busy)["status"])
			// The worker is free now and has seen the dispatch of the cancelled one; it must
			// not have run it. A later execution completing proves the worker moved past it.
			_, body = p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.hello"})
			require.Equal(t, "completed", p.waitExecution(t, id(t, data(t, body), "id"))["status"])
			_, e := p.get(t, fmt.Sprintf("/api/v1/executions/%d", waiting))
			require.Equal(t, "cancelled", data(t, e)["status"])
			require.Nil(t, data(t, e)["started_at"], "the cancelled execution never started")
		})
	}
}
