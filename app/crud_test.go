package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store/storetest"
)

// These tests change what a running server knows through the API and the CLI, and check that
// its rule matcher and timers follow at once.

// startBare runs every role with only the core pack, plus a pack "hooks" of its own registered
// from an empty directory through the CLI: what rules created through the API join.
func startBare(t *testing.T) *process {
	t.Helper()
	return startBareOn(t, storetest.NewDatabase(t))
}

// startBareOn is startBare on the database at dbURL, which the test may also reach into.
func startBareOn(t *testing.T, dbURL string) *process {
	t.Helper()
	p := startServe(t, "--database-url="+dbURL, "--shutdown-timeout=5s")
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.stop(t, syscall.SIGTERM, 30*time.Second)
		}
	})
	p.registerHooks(t)
	return p
}

// registerHooks registers an empty pack, hooks, for a test's rules made through the API.
func (p *process) registerHooks(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pack.yaml"), []byte("ref: hooks\n"), 0o644))
	stdout, stderr, code := p.cli(t, "pack", "register", dir)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "registered pack hooks")
}

// webhookRefused posts to the webhook url, which no enabled rule listens on: 404, naming it.
func (p *process) webhookRefused(t *testing.T, url string) {
	t.Helper()
	status, out := p.post(t, "/api/v1/webhooks/"+url, map[string]any{})
	require.Equal(t, http.StatusNotFound, status, out)
	require.Contains(t, out["error"].(map[string]any)["message"], "webhook "+url+": no enabled rule listens on it")
}

// webhook posts body to the webhook url and waits until the rule matcher has evaluated the
// event, whatever it decided; it returns the event's id.
func (p *process) webhook(t *testing.T, url string, body any) int64 {
	t.Helper()
	status, out := p.post(t, "/api/v1/webhooks/"+url, body)
	require.Equal(t, http.StatusAccepted, status, out)
	eventID := id(t, data(t, out), "event_id")
	require.Eventually(t, func() bool {
		_, ev := p.get(t, fmt.Sprintf("/api/v1/events/%d", eventID))
		return data(t, ev)["rules_evaluated_at"] != nil
	}, 30*time.Second, 20*time.Millisecond, "event %d was not evaluated", eventID)
	return eventID
}

// enforcedEvents lists the events rule has enforcements for.
func (p *process) enforcedEvents(t *testing.T, rule string) []int64 {
	t.Helper()
	status, body := p.get(t, "/api/v1/enforcements?per_page=100&rule_ref="+rule)
	require.Equal(t, http.StatusOK, status, body)
	var events []int64
	for _, e := range body["data"].([]any) {
		events = append(events, int64(e.(map[string]any)["event_id"].(float64)))
	}
	return events
}

func TestCLIRuleLifecycle(t *testing.T) {
	t.Parallel()
	p := startBare(t)
	dir := t.TempDir()
	ruleFile := filepath.Join(dir, "on_ping.yaml")
	require.NoError(t, os.WriteFile(ruleFile, []byte(`name: on_ping
label: Ping
trigger_ref: core.webhook
trigger_params:
  url: ping
conditions:
  field: body.kind
  operator: equals
  value: ping
action_ref: core.echo
action_params:
  message: "{{ event.payload.body.kind }}"
`), 0o644))

	// A name alone needs --pack; a rule the server refuses says why, in one line.
	_, stderr, code := p.cli(t, "rule", "create", "-f", ruleFile)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, requireOneErrorLine(t, stderr), "--pack")
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("ref: hooks.bad\ntrigger_ref: core.webhook\naction_ref: core.noop\n"), 0o644))
	stdout, stderr, code := p.cli(t, "rule", "create", "-f", bad)
	require.Equal(t, 1, code, stderr)
	require.Empty(t, stdout)
	require.Contains(t, requireOneErrorLine(t, stderr), "trigger_params.url: required (400 Bad Request)")
	require.NoError(t, os.WriteFile(bad, []byte("ref: hooks.bad\ntrigger_ref: core.crontimer\ntrigger_params: {expression: '0 9 * * *', timezone: Mars/Olympus}\naction_ref: core.noop\n"), 0o644))
	_, stderr, code = p.cli(t, "rule", "create", "-f", bad)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, requireOneErrorLine(t, stderr), `trigger_params.timezone: unknown time zone "Mars/Olympus"`)

	created := cliJSON(t, p, 0, "rule", "create", "-f", ruleFile, "--pack", "hooks")
	require.Equal(t, "hooks.on_ping", created["ref"])
	require.Equal(t, true, created["enabled"])
	require.Equal(t, "Ping", created["label"])
	listed, stderr, code := p.cli(t, "rule", "list", "--pack", "hooks", "-o", "json")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, listed, `"hooks.on_ping"`)

	// Created: the next webhook fires it.
	first := p.webhook(t, "ping", map[string]any{"kind": "ping"})
	exec := p.waitExecution(t, p.executionOf(t, "hooks.on_ping", first))
	require.Equal(t, "completed", exec["status"])
	require.Contains(t, result(t, exec)["stdout"], "ping")

	// Disabled: no rule listens on the url any more, and the next webhook is refused at once.
	disabled := cliJSON(t, p, 0, "rule", "disable", "hooks.on_ping")
	require.Equal(t, false, disabled["enabled"])
	p.webhookRefused(t, "ping")
	require.Equal(t, []int64{first}, p.enforcedEvents(t, "hooks.on_ping"))

	// Enabled again: it fires again.
	require.Equal(t, true, cliJSON(t, p, 0, "rule", "enable", "hooks.on_ping")["enabled"])
	third := p.webhook(t, "ping", map[string]any{"kind": "ping"})
	require.Equal(t, "completed", p.waitExecution(t, p.executionOf(t, "hooks.on_ping", third))["status"])

	// Deleted: gone, and the next webhook fires nothing; what it did stays on record.
	stdout, stderr, code = p.cli(t, "rule", "delete", "hooks.on_ping")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "deleted rule hooks.on_ping\n", stdout)
	_, stderr, code = p.cli(t, "rule", "show", "hooks.on_ping")
	require.Equal(t, 1, code)
	require.Equal(t, "attune: no rule \"hooks.on_ping\" (404 Not Found)\n", requireOneErrorLine(t, stderr))
	p.webhookRefused(t, "ping")
	require.ElementsMatch(t, []int64{first, third}, p.enforcedEvents(t, "hooks.on_ping"))
	_, stderr, code = p.cli(t, "rule", "delete", "hooks.on_ping")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "404 Not Found")

	// The pack goes whole; core stays.
	require.Equal(t, "hooks.on_ping", cliJSON(t, p, 0, "rule", "create", "-f", ruleFile, "--pack", "hooks")["ref"])
	stdout, stderr, code = p.cli(t, "pack", "delete", "hooks")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "deleted pack hooks\n", stdout)
	for _, path := range []string{"/api/v1/packs/hooks", "/api/v1/rules/hooks.on_ping"} {
		status, _ := p.get(t, path)
		require.Equal(t, http.StatusNotFound, status, path)
	}
	status, _ := p.get(t, fmt.Sprintf("/api/v1/executions/%d", id(t, exec, "id")))
	require.Equal(t, http.StatusOK, status, "executions stay")
	_, stderr, code = p.cli(t, "pack", "delete", "core")
	require.Equal(t, 1, code)
	require.Contains(t, requireOneErrorLine(t, stderr), "the built-in core pack cannot be deleted")
	_, stderr, code = p.cli(t, "pack", "delete")
	require.Equal(t, 2, code, stderr)
}

// The read commands show one of each noun by its ref, name or id.
func TestCLIShowCommands(t *testing.T) {
	t.Parallel()
	p := startBare(t)
	status, out := p.post(t, "/api/v1/events", map[string]any{"trigger_ref": "core.webhook", "payload": map[string]any{"url": "nothing"}})
	require.Equal(t, http.StatusAccepted, status, out)
	ev := id(t, data(t, out), "event_id")
	workerName := func() string {
		stdout, stderr, code := p.cli(t, "worker", "list", "-o", "json")
		require.Equal(t, 0, code, stderr)
		var workers []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &workers))
		require.Len(t, workers, 1)
		return workers[0]["name"].(string)
	}()
	for _, args := range [][]string{
		{"trigger", "show", "core.webhook"},
		{"event", "show", strconv.FormatInt(ev, 10)},
		{"worker", "show", workerName},
	} {
		out := cliJSON(t, p, 0, args...)
		require.NotEmpty(t, out, args)
	}
	stdout, stderr, code := p.cli(t, "trigger", "show", "core.webhook")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "FIELD")
	_, stderr, code = p.cli(t, "event", "show", "999999")
	require.Equal(t, 1, code)
	require.Equal(t, "attune: no event 999999 (404 Not Found)\n", requireOneErrorLine(t, stderr))
	_, stderr, code = p.cli(t, "enforcement", "show", "x")
	require.Equal(t, 2, code, stderr)
	_, stderr, code = p.cli(t, "policy", "show", "hooks.none")
	require.Equal(t, 1, code)
	require.Equal(t, "attune: no policy \"hooks.none\" (404 Not Found)\n", requireOneErrorLine(t, stderr))
}

// waitLogOf waits for the nth (from 1) record whose msg is msg and whose rule is rule.
func (p *process) waitLogOf(t *testing.T, msg, rule string, nth int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		seen := 0
		for _, rec := range p.logs {
			if rec["msg"] == msg && rec["rule"] == rule {
				seen++
			}
		}
		update := p.update
		p.mu.Unlock()
		if seen >= nth {
			return
		}
		select {
		case <-update:
		case <-p.exited:
			t.Fatalf("attune exited before logging %q for %s:\n%s", msg, rule, p.output())
		case <-deadline:
			t.Fatalf("attune did not log %q for %s %d times within %s:\n%s", msg, rule, nth, timeout, p.output())
		}
	}
}

// timerEvents counts the timer events fired for each rule so far.
func (p *process) timerEvents(t *testing.T) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for page := 1; ; page++ {
		status, body := p.get(t, fmt.Sprintf("/api/v1/events?trigger_ref=core.intervaltimer&per_page=100&page=%d", page))
		require.Equal(t, http.StatusOK, status, body)
		for _, e := range body["data"].([]any) {
			if rule, ok := e.(map[string]any)["rule_ref"].(string); ok {
				counts[rule]++
			}
		}
		if page >= int(body["pagination"].(map[string]any)["total_pages"].(float64)) {
			return counts
		}
	}
}

// An interval timer rule created through the API starts firing, stops when disabled, starts
// again when enabled and stops when deleted, without a restart. "Stops" is shown against a
// second timer rule of the same interval that keeps firing meanwhile.
func TestAPITimerRuleFollowsChanges(t *testing.T) {
	t.Parallel()
	p := startBare(t)
	for _, ref := range []string{"hooks.control", "hooks.tick"} {
		status, body := p.post(t, "/api/v1/rules", map[string]any{"ref": ref, "trigger_ref": "core.intervaltimer",
			"trigger_params": map[string]any{"interval": 1}, "action_ref": "core.noop"})
		require.Equal(t, http.StatusCreated, status, body)
	}
	p.waitLogOf(t, "timer started", "hooks.tick", 1, 30*time.Second)
	require.Eventually(t, func() bool { return p.timerEvents(t)["hooks.tick"] > 0 }, 30*time.Second, 50*time.Millisecond,
		"the new timer rule does not fire")
	require.Eventually(t, func() bool { return len(p.enforcedEvents(t, "hooks.tick")) > 0 }, 30*time.Second, 50*time.Millisecond,
		"the rule matcher does not enforce the new rule")

	// stoppedBy changes the rule with the CLI and shows that its timer stops: once the sensor
	// says so (after its last tick), the control timer fires twice more and the rule's does not.
	stoppedBy := func(stops int, args ...string) {
		t.Helper()
		_, stderr, code := p.cli(t, args...)
		require.Equal(t, 0, code, stderr)
		p.waitLogOf(t, "timer stopped", "hooks.tick", stops, 30*time.Second)
		before := p.timerEvents(t)
		require.Eventually(t, func() bool { return p.timerEvents(t)["hooks.control"] >= before["hooks.control"]+2 },
			30*time.Second, 50*time.Millisecond, "the control timer stopped too")
		require.Equal(t, before["hooks.tick"], p.timerEvents(t)["hooks.tick"], "the timer fired after %v", args)
	}
	stoppedBy(1, "rule", "disable", "hooks.tick")

	_, stderr, code := p.cli(t, "rule", "enable", "hooks.tick")
	require.Equal(t, 0, code, stderr)
	p.waitLogOf(t, "timer started", "hooks.tick", 2, 30*time.Second)
	fired := p.timerEvents(t)["hooks.tick"]
	require.Eventually(t, func() bool { return p.timerEvents(t)["hooks.tick"] > fired }, 30*time.Second, 50*time.Millisecond,
		"the enabled timer rule does not fire again")

	stoppedBy(2, "rule", "delete", "hooks.tick")
}
