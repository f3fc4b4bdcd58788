package app_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// textIs waits until the first element matching the CSS selector shows exactly text.
func textIs(selector, text string) browserStep {
	return until(fmt.Sprintf(`document.querySelector(%q)?.innerText.trim() === %q`, selector, text))
}

// The dashboard and the policies page follow executions started after they were loaded,
// without a reload: the hour's counts by status, the failure linking to its execution, the
// queue's length linking to its action; the policies page shows the queue and its change.
// What runs waits at a gate (uiexec.gated) until the test opens it, however slow the machine.
func TestUIDashboard(t *testing.T) {
	t.Parallel()
	s := startUIServer(t)
	s.registerUIPack(t)
	// One uiexec.gated at a time: the second waits.
	s.apiCall(t, http.MethodPost, "/api/v1/policies", map[string]any{
		"ref": "uiexec.gated_one", "action_ref": "uiexec.gated", "concurrency": map[string]any{"limit": 1},
	}, http.StatusCreated)
	gates := [2]string{filepath.Join(t.TempDir(), "first"), filepath.Join(t.TempDir(), "second")}
	for _, g := range gates {
		require.NoError(t, syscall.Mkfifo(g, 0o600))
	}
	tab := newBrowser(t)
	s.logIn(t, tab, "admin", testAdminPassword)
	browse(t, tab,
		waitText(`[aria-label="Last hour"]`, "No executions"),
		textIs(`[data-figure="Running now"]`, "0"),
		waitText(`[aria-label="Recent failures"]`, "No execution created in the last day failed"),
		waitText(`[aria-label="Queues"]`, "No execution waits"),
		// The server's own worker heartbeats; no sensor runs (no rule uses one).
		textIs(`[data-figure="Workers alive"]`, "1"),
		chromedp.WaitVisible(chromedp.CSS(`.live-state.on`)),
		// A reload would forget this: the figures below must come through the stream.
		run(`window.notReloaded = true`),
	)

	failed := s.execute(t, "demo.fail", map[string]any{})
	for _, name := range []string{"ann", "bob", "cy"} {
		s.execute(t, "demo.hello", map[string]any{"name": name})
	}
	running := s.execute(t, "uiexec.gated", map[string]any{"name": "first", "gate": gates[0]})
	s.execute(t, "uiexec.gated", map[string]any{"name": "second", "gate": gates[1]})

	browse(t, tab,
		textIs(`[aria-label="Last hour"] [data-count="completed"]`, "3"),
		textIs(`[aria-label="Last hour"] [data-count="failed"]`, "1"),
		textIs(`[aria-label="Last hour"] [data-count="running"]`, "1"),
		textIs(`[aria-label="Last hour"] [data-count="requested"]`, "1"),
		textIs(`[aria-label="Last hour"] [data-total]`, "6"),
		textIs(`[aria-label="Last day"] [data-total]`, "6"),
		textIs(`[data-figure="Running now"]`, "1"),
		textIs(`[data-figure="Failed, last day"]`, "1"),
		textIs(`[data-figure="Waiting in queues"]`, "1"),
		until(fmt.Sprintf(`!!document.querySelector('[aria-label="Recent failures"] a[href="/executions/%d"]')`, failed)),
		waitText(`[aria-label="Recent failures"] thead`, "Reason"),
		textIs(`[data-queued="uiexec.gated"]`, "1"),
		until(`!!document.querySelector('[aria-label="Queues"] a[href="/actions/uiexec.gated"]')`),
		until(`window.notReloaded === true`),
	)
	require.Equal(t, fmt.Sprintf("#%d", failed), evaluate[string](t, tab, `document.querySelector('[aria-label="Recent failures"] tbody a').innerText`))
	screen(t, tab, "dashboard")
	screen(t, tab, "dashboard-phone")
	screen(t, tab, "dashboard-dark")

	// The day's failed count opens the list of them.
	browse(t, tab,
		run(`document.querySelector('[data-figure="Failed, last day"]').closest('a').click()`),
		until(`location.pathname === '/executions' && new URLSearchParams(location.search).get('status') === 'failed' &&
			Date.now() - new Date(new URLSearchParams(location.search).get('since')) > 86000000`),
		until(fmt.Sprintf(`!!document.querySelector('tbody a[href="/executions/%d"]')`, failed)),
	)

	browse(t, tab,
		s.open("/policies"),
		waitText(`table`, "uiexec.gated_one"),
		waitText(`table`, "1 at once; queues the rest"),
		textIs(`[data-queue="uiexec.gated"] [data-active]`, "1"),
		textIs(`[data-queue="uiexec.gated"] [data-queued]`, "1"),
		textIs(`[data-queue="demo.hello"] [data-queued]`, "0"),
		chromedp.WaitVisible(chromedp.CSS(`[aria-label="Queues"] .live-state.on`)),
	)
	screen(t, tab, "policies")
	screen(t, tab, "policies-phone")

	// Cancelling the running one admits the waiter: the queue empties, live.
	s.apiCall(t, http.MethodPost, fmt.Sprintf("/api/v1/executions/%d/cancel", running), map[string]any{}, http.StatusAccepted)
	browse(t, tab,
		textIs(`[data-queue="uiexec.gated"] [data-queued]`, "0"),
		textIs(`[data-queue="uiexec.gated"] [data-active]`, "1"),
		clickText(`a`, "uiexec.gated_one"),
		waitText(`h1`, "Policy uiexec.gated_one"),
		waitText(`.props`, "1 at once; queues the rest"),
		textIs(`[data-queue="uiexec.gated"] [data-queued]`, "0"),
		s.open("/"),
		textIs(`[aria-label="Last hour"] [data-total]`, "6"),
		textIs(`[data-figure="Waiting in queues"]`, "0"),
		waitText(`[aria-label="Queues"]`, "No execution waits"),
		waitGone(`[aria-label="Queues"]`, "uiexec.gated"),
		until(`window.notReloaded === true`),
	)
	release(t, gates[1])
	browse(t, tab, textIs(`[data-figure="Running now"]`, "0"))
}
