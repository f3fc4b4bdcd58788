package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/broker/brokertest"
)

// answerBound is the documented bound on the answers of the pipeline's way in (docs/api.md).
const answerBound = 5 * time.Second

// While RabbitMQ is out of reach, webhooks and execute are answered within their bound and
// accepted: PostgreSQL is the truth. Once RabbitMQ is back, what they asked for runs.
func TestAcceptsThroughABrokerOutage(t *testing.T) {
	t.Parallel()
	proxy, proxied := brokertest.NewURLProxy(t, brokertest.URL(t))
	p := startPipeline(t, []string{"--amqp-url=" + proxied, "--amqp-namespace=" + namespace(t)})

	code, body := p.post(t, "/api/v1/webhooks/demo", map[string]any{"name": "before", "kind": "order"})
	require.Equal(t, http.StatusAccepted, code, body)
	p.waitExecution(t, p.executionOf(t, "demo.on_webhook", id(t, data(t, body), "event_id")))

	proxy.Stop()
	require.Eventually(t, func() bool { return p.readyStatus(t) == http.StatusServiceUnavailable }, 30*time.Second, 20*time.Millisecond,
		"readiness did not notice the broker going")
	var events []int64
	for i := range 10 {
		start := time.Now()
		code, body := p.post(t, "/api/v1/webhooks/demo", map[string]any{"name": fmt.Sprintf("during-%d", i), "kind": "order"})
		took := time.Since(start)
		require.Equal(t, http.StatusAccepted, code, body)
		require.Less(t, took, answerBound, "webhook %d answered after %s", i, took)
		events = append(events, id(t, data(t, body), "event_id"))
	}
	start := time.Now()
	code, body = p.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "core.noop"})
	require.Equal(t, http.StatusCreated, code, body)
	require.Less(t, time.Since(start), answerBound)
	manual := id(t, data(t, body), "id")

	proxy.Start(t)
	back := time.Now()
	for _, ev := range events {
		exec := p.waitExecution(t, p.executionOf(t, "demo.on_webhook", ev))
		require.Equal(t, "completed", exec["status"], exec)
	}
	require.Equal(t, "completed", p.waitExecution(t, manual)["status"])
	t.Logf("everything accepted during the outage ran within %s of the broker's return", time.Since(back))
}
