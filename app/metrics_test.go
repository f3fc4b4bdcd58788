package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// scrape reads p's /metrics, parsed by the client library's own parser (which refuses what
// Prometheus would), and returns the text too.
func (p *process) scrape(t *testing.T) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "parse /metrics of %s", p.addr)
	return string(body), families
}

// metricValue sums the samples of family name whose labels include want: a counter's or a
// gauge's value, a histogram's count of observations.
func metricValue(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := families[name]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		labels := make(map[string]string)
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// moved is how far a metric went between two scrapes.
func moved(before, after map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	return metricValue(after, name, labels) - metricValue(before, name, labels)
}

// promtoolCheck lints a scrape with `promtool check metrics`: skipped without promtool,
// except under CI=true, where .ci/run installs it.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian package prometheus); CI=true needs it")
		}
		t.Skip("promtool is not installed (Debian package prometheus)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}

// Every process serves /metrics whatever its roles; the figures move as executions run, with
// the labels they should have: started and finished executions by action, runner and status,
// each stage's latency, the policy queues, the messages by type and queue, the worker's slots,
// the pool, the batches and the HTTP routes. promtool finds nothing to say about the text,
// and every metric the Grafana dashboard in docs/ queries is there, with the labels it uses.
func TestMetricsMoveAsExecutionsRun(t *testing.T) {
	t.Parallel()
	start := splitRoles(t)
	api := start("api,sensor,executor")
	wk := start("worker")
	_, apiBefore := api.scrape(t)
	_, wkBefore := wk.scrape(t)

	// Three executions of demo.slow under a limit of one: one runs, two wait in its queue.
	code, body := api.post(t, "/api/v1/policies", map[string]any{"ref": "demo.one_slow", "action_ref": "demo.slow", "concurrency": map[string]any{"limit": 1}})
	require.Equal(t, http.StatusCreated, code, body)
	var slow []int64
	for range 3 {
		_, body := api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.slow", "parameters": map[string]any{"seconds": 60}})
		slow = append(slow, id(t, data(t, body), "id"))
		api.waitDecided(t, slow[len(slow)-1])
	}
	queued := func(families map[string]*dto.MetricFamily) float64 {
		return metricValue(families, "attune_policy_queue_length", map[string]string{"action": "demo.slow"})
	}
	var apiText string
	var apiAfter map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		apiText, apiAfter = api.scrape(t)
		return queued(apiAfter) == 2
	}, 30*time.Second, 50*time.Millisecond, "the queue of demo.slow never showed its 2 waiters")
	require.Greater(t, metricValue(apiAfter, "attune_policy_queue_oldest_wait_seconds", map[string]string{"action": "demo.slow"}), 0.0)

	// Five executions of core.noop through the API, one through the demo webhook's rule.
	const runs = 5
	for range runs {
		code, body := api.post(t, "/api/v1/executions/execute", map[string]any{"action_ref": "core.noop"})
		require.Equal(t, http.StatusCreated, code, body)
	}
	code, body = api.post(t, "/api/v1/webhooks/demo", map[string]any{"name": "Ada", "kind": "order"})
	require.Equal(t, http.StatusAccepted, code, body)
	api.waitExecution(t, api.executionOf(t, "demo.on_webhook", id(t, data(t, body), "event_id")))

	noop := map[string]string{"action": "core.noop", "runner": "noop"}
	var wkText string
	var wkAfter map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		wkText, wkAfter = wk.scrape(t)
		// An ending is counted once recorded, its message once the broker took it.
		return moved(wkBefore, wkAfter, "attune_executions_finished_total", map[string]string{"action": "core.noop", "runner": "noop", "status": "completed"}) == runs &&
			moved(wkBefore, wkAfter, "attune_messages_published_total", map[string]string{"type": "ExecutionCompleted"}) == runs+1
	}, 60*time.Second, 50*time.Millisecond, "the worker never counted its %d core.noop executions finished and announced", runs)
	require.Equal(t, float64(runs), moved(wkBefore, wkAfter, "attune_executions_started_total", noop))
	require.Equal(t, 1.0, moved(wkBefore, wkAfter, "attune_executions_finished_total", map[string]string{"action": "core.echo", "runner": "shell", "status": "completed"}))
	require.Equal(t, 1.0, metricValue(wkAfter, "attune_executions_started_total", map[string]string{"action": "demo.slow", "runner": "shell"}))
	for _, stage := range []string{"admitted", "started", "finished"} {
		require.GreaterOrEqual(t, moved(wkBefore, wkAfter, "attune_execution_stage_seconds", map[string]string{"stage": stage}), float64(runs+1), stage)
	}
	require.GreaterOrEqual(t, moved(wkBefore, wkAfter, "attune_messages_consumed_total", map[string]string{"queue": "attune.workers.noop.dispatch"}), float64(runs))
	require.Equal(t, 8.0, metricValue(wkAfter, "attune_worker_slots", nil))
	require.Contains(t, wkAfter, "attune_live_output_dropped_bytes_total")
	require.Contains(t, wkAfter, "attune_live_output_cut_total")
	require.Eventually(t, func() bool {
		_, fams := wk.scrape(t)
		return metricValue(fams, "attune_worker_slots_busy", nil) == 1
	}, 30*time.Second, 50*time.Millisecond, "demo.slow alone should hold a slot")
	require.Greater(t, metricValue(wkAfter, "attune_store_batch_size", map[string]string{"statement": "execution_claim"}), 0.0)

	// The executor hears of the last completions after the worker has counted them.
	require.Eventually(t, func() bool {
		_, apiAfter = api.scrape(t)
		return moved(apiBefore, apiAfter, "attune_messages_consumed_total", map[string]string{"queue": "attune.executor.completions"}) >= runs+1
	}, 30*time.Second, 50*time.Millisecond, "the executor never consumed the completions")
	for _, stage := range []string{"enforced", "created"} {
		require.Equal(t, 1.0, moved(apiBefore, apiAfter, "attune_execution_stage_seconds", map[string]string{"stage": stage}), stage)
	}
	require.Equal(t, 0.0, metricValue(apiAfter, "attune_worker_slots", nil), "no worker role here")
	require.GreaterOrEqual(t, moved(apiBefore, apiAfter, "attune_messages_published_total", map[string]string{"type": "ExecutionDispatched"}), float64(runs+1))
	require.Equal(t, 1.0, moved(apiBefore, apiAfter, "attune_messages_consumed_total", map[string]string{"queue": "attune.rules.events"}))
	require.Equal(t, float64(runs+3), moved(apiBefore, apiAfter, "attune_http_requests_total",
		map[string]string{"route": "/api/v1/executions/execute", "method": "POST", "code": "201"}))
	require.Equal(t, 1.0, moved(apiBefore, apiAfter, "attune_http_requests_total", map[string]string{"route": "/api/v1/webhooks/:url", "code": "202"}))
	require.Greater(t, metricValue(apiAfter, "attune_db_pool_max_connections", nil), 0.0)
	require.Greater(t, metricValue(apiAfter, "attune_db_pool_acquires_total", nil), 0.0)
	require.Greater(t, metricValue(apiAfter, "go_goroutines", nil), 0.0)

	// A path no route takes is counted as unmatched, never by its path: under /api/ the web
	// UI's catch-all takes none either. Any other path is the UI's page.
	resp, err := http.Get("http://" + api.addr + "/api/v1/no/such/path/12345")
	require.NoError(t, err)
	resp.Body.Close()
	resp, err = http.Get("http://" + api.addr + "/no/such/page/12345")
	require.NoError(t, err)
	resp.Body.Close()
	_, apiAfter = api.scrape(t)
	require.Equal(t, 1.0, metricValue(apiAfter, "attune_http_requests_total", map[string]string{"route": "unmatched", "code": "404"}))
	require.Equal(t, 1.0, metricValue(apiAfter, "attune_http_requests_total", map[string]string{"route": "/*", "code": "200"}))
	for _, f := range apiAfter["attune_http_requests_total"].GetMetric() {
		for _, l := range f.GetLabel() {
			require.NotContains(t, l.GetValue(), "12345")
		}
	}

	t.Run("promtool", func(t *testing.T) {
		promtoolCheck(t, apiText)
		promtoolCheck(t, wkText)
	})
	t.Run("dashboard", func(t *testing.T) {
		// Each metric's labels, as the scrapes show them.
		labels := make(map[string]map[string]bool)
		for _, fams := range []map[string]*dto.MetricFamily{apiAfter, wkAfter} {
			for name, f := range fams {
				if labels[name] == nil {
					labels[name] = make(map[string]bool)
				}
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						labels[name][l.GetName()] = true
					}
				}
			}
		}
		exprs := dashboardQueries(t)
		require.NotEmpty(t, exprs)
		for _, expr := range exprs {
			var names []string
			for _, name := range metricName.FindAllString(expr, -1) {
				base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(name, "")
				if labels[name] == nil {
					name = base
				}
				require.NotNil(t, labels[name], "docs/grafana-dashboard.json queries %s, which no scrape has", name)
				names = append(names, name)
			}
			// Every label the query groups by or matches on is a label of a metric it reads:
			// Prometheus answers a misspelt one with nothing, not with an error.
			for _, label := range queryLabels(expr) {
				has := false
				for _, name := range names {
					has = has || labels[name][label]
				}
				require.True(t, has, "docs/grafana-dashboard.json: %s uses label %q, which none of %v has", expr, label, names)
			}
		}
	})

	for _, id := range slow {
		code, body := api.post(t, fmt.Sprintf("/api/v1/executions/%d/cancel", id), nil)
		require.Contains(t, []int{http.StatusOK, http.StatusAccepted}, code, body)
	}
}

// metricName finds the names of the metrics a query reads.
var metricName = regexp.MustCompile(`\b(attune|go|process)_[a-z0-9_]+`)

// queryLabels lists the labels a query groups by or matches on, but those Prometheus adds
// (instance, job) and a histogram's le.
func queryLabels(expr string) []string {
	var out []string
	add := func(list string, name *regexp.Regexp) {
		for _, m := range name.FindAllStringSubmatch(list, -1) {
			if l := m[1]; l != "le" && l != "instance" && l != "job" {
				out = append(out, l)
			}
		}
	}
	for _, by := range regexp.MustCompile(`\bby \(([^)]*)\)`).FindAllStringSubmatch(expr, -1) {
		add(by[1], regexp.MustCompile(`([a-z_]+)`))
	}
	for _, sel := range regexp.MustCompile(`\{([^}]*)\}`).FindAllStringSubmatch(expr, -1) {
		add(sel[1], regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)`))
	}
	return out
}

// dashboardQueries lists the queries (expr) of docs/grafana-dashboard.json.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../docs/grafana-dashboard.json")
	require.NoError(t, err)
	var doc any
	require.NoError(t, json.Unmarshal(raw, &doc), "docs/grafana-dashboard.json is not JSON")
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	return exprs
}

// With --metrics=false there is nothing at /metrics, and the rest is served as before.
func TestMetricsOff(t *testing.T) {
	t.Parallel()
	p := startPipeline(t, nil)
	resp, err := http.Get("http://" + p.addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "on by default")

	off := startPipeline(t, []string{"--metrics=false"})
	resp, err = http.Get("http://" + off.addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Equal(t, http.StatusOK, off.readyStatus(t))
}
