package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The workflow page and the inquiries: a workflow that asks is answered through the
// inquiry's form in one tab while its page, opened before, follows it to the end in another;
// pause, resume and cancel from the page.

// startApproval starts examples.approval through the API and answers its execution's id.
func (s *uiServer) startApproval(t *testing.T, version string) int64 {
	t.Helper()
	return s.execute(t, "examples.approval", map[string]any{"version": version})
}

// taskIs waits until the graph's node for task shows status ("" for not reached).
func taskIs(task, status string) browserStep {
	return until(fmt.Sprintf(`document.querySelector('.wf-graph svg [data-task=%q]')?.dataset.status === %q`, task, status))
}

// workflowIs waits until the workflow page shows the workflow's status.
func workflowIs(status string) browserStep {
	return until(fmt.Sprintf(`document.querySelector('.wf-status .status')?.innerText === %q`, status))
}

// hasButton answers whether the page offers a button showing text.
func hasButton(t *testing.T, tab context.Context, text string) bool {
	t.Helper()
	return evaluate[bool](t, tab, fmt.Sprintf(`[...document.querySelectorAll('button')].some(b => b.innerText.trim() === %q)`, text))
}

// openAsking opens workflow id's page and waits until its ask task runs.
func (s *uiServer) openAsking(id int64) browserStep {
	return chromedp.Steps(s.open(fmt.Sprintf("/workflows/%d", id)), taskIs("ask", "running"))
}

func TestUIInquiryContinuesWorkflow(t *testing.T) {
	t.Parallel()
	s, tab := adminUI(t)
	id := s.startApproval(t, "2.5")
	s.explainFailure(t, tab, &[]int64{id})

	// The page is open, and marked, before anyone answers: the marker survives only if the
	// page never reloads, so what it shows later came live.
	browse(t, tab,
		s.openAsking(id),
		taskIs("deploy", ""),
		taskIs("report", ""),
		workflowIs("running"),
		waitText(`.wf-asking`, "Deploy 2.5?"),
		until(`[...document.querySelectorAll('.wf-graph .wf-edge-label')].some(e => e.textContent.startsWith('succeeded() && result.approved'))`),
		run(`window.openedBefore = true`),
	)
	require.True(t, hasButton(t, tab, "Pause"))
	require.False(t, hasButton(t, tab, "Resume"), "resume is offered only to a pausing or paused workflow")
	screen(t, tab, "workflow")
	screen(t, tab, "workflow-dark")

	// A task is a button: Enter on it shows its executions and result. Focused, selected and
	// running each look their own: the running task keeps its colour when selected, the
	// selection is a tint, the focus a ring of another colour.
	browse(t, tab,
		waitText(`.page-actions .live-state`, "Live"),
		run(`document.querySelector('.wf-graph [data-task=ask]').focus()`),
		chromedp.KeyEvent("\r"),
		waitText(`.wf-detail`, "Arrival 1"),
		waitText(`.wf-detail`, "core.ask"),
	)
	looks := evaluate[map[string]string](t, tab, `(() => {
		const st = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
		const info = getComputedStyle(document.querySelector('.wf-graph')).getPropertyValue('--info').trim();
		const probe = document.createElement('span');
		probe.style.color = info;
		document.body.append(probe);
		const running = getComputedStyle(probe).color;
		probe.remove();
		return {
			running,
			askStroke: st('[data-task=ask] .wf-box', 'stroke'),
			askFill: st('[data-task=ask] .wf-box', 'fill'),
			plainFill: st('[data-task=deploy] .wf-box', 'fill'),
			ring: st('[data-task=ask] .wf-ring', 'stroke'),
			plainRing: st('[data-task=deploy] .wf-ring', 'stroke'),
		};
	})()`)
	require.Equal(t, looks["running"], looks["askStroke"], "a selected running task keeps its colour: %v", looks)
	require.NotEqual(t, looks["plainFill"], looks["askFill"], "the selection tints the node: %v", looks)
	require.NotEqual(t, "none", looks["ring"], "the focused node has its ring: %v", looks)
	require.Equal(t, "none", looks["plainRing"], "an unfocused node has none: %v", looks)
	require.NotEqual(t, looks["running"], looks["ring"], "the focus ring is not the running colour: %v", looks)

	// Chosen in the table below, a task's details come into view with the focus.
	browse(t, tab,
		clickText(`main table button.linkish`, "deploy"),
		until(`document.activeElement?.matches('.wf-detail h2') && document.activeElement.innerText === 'Task deploy'`),
	)

	// Another tab answers, from the list of pending inquiries, through the schema's form.
	answerer, cancel := chromedp.NewContext(tab)
	t.Cleanup(cancel)
	// The first Do opens the tab, for as long as answerer lives: no timeout on it.
	require.NoError(t, chromedp.Do(answerer), "open a second tab")
	browse(t, answerer,
		chromedp.Navigate(s.base+"/inquiries"),
		waitText(`main table`, "Deploy 2.5?"),
		waitText(`main table`, fmt.Sprintf("workflow %d", id)),
		waitText(`main table`, "roles operator, and admins"),
		clickText(`main table a`, "Answer"),
		chromedp.WaitVisible(chromedp.CSS(`form[aria-label=Answer] #answer-approved[type=checkbox]`)),
		// A required checkbox is always given: no star.
		until(`document.querySelector('label[for=answer-approved]').innerText === 'approved'`),
		chromedp.Click(chromedp.CSS(`#answer-approved`)),
		fill(`#answer-comment`, "ship it"),
	)
	screen(t, answerer, "inquiry")
	screen(t, answerer, "inquiry-phone")
	browse(t, answerer,
		clickText(`form[aria-label=Answer] button`, "Send the answer"),
		waitText(`main .status`, "responded"),
		waitText(`main pre.json`, "ship it"),
		waitGone(`main`, "Send the answer"),
	)

	browse(t, tab,
		taskIs("ask", "succeeded"),
		taskIs("deploy", "succeeded"),
		taskIs("report", "succeeded"),
		workflowIs("completed"),
		waitText(`main pre.json`, `"decision": "approved"`),
		until(`window.openedBefore === true`),
	)
	require.False(t, hasButton(t, tab, "Pause"), "an ended workflow offers no pause")
	require.False(t, hasButton(t, tab, "Cancel"), "an ended workflow offers no cancel")

	// At a phone's width the page does not scroll sideways: the graph scrolls in its box.
	browse(t, tab,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		until(`document.documentElement.scrollWidth <= innerWidth && document.querySelector('.wf-graph').clientWidth <= innerWidth`),
		// Every edge label shows whole, within the drawing.
		until(`(() => {
			const svg = document.querySelector('.wf-graph svg');
			const [x, y, w, h] = svg.getAttribute('viewBox').split(' ').map(Number);
			const labels = [...svg.querySelectorAll('.wf-edge-label')];
			return labels.length > 0 && labels.every((l) => { const b = l.getBBox(); return b.x >= x && b.y >= y && b.x + b.width <= x + w && b.y + b.height <= y + h; }) &&
				labels.some((l) => l.textContent.endsWith('…'));
		})()`),
		chromedp.ResetViewport(),
	)
	screen(t, tab, "workflow-phone")
}

func TestUIWorkflowPauseResumeCancel(t *testing.T) {
	t.Parallel()
	s, tab := adminUI(t)
	var watched []int64
	s.explainFailure(t, tab, &watched)

	// Paused while ask waits, the workflow stays pausing until the answer ends ask, then
	// pauses without starting deploy; resumed, it goes on.
	id := s.startApproval(t, "paused")
	watched = append(watched, id)
	browse(t, tab,
		s.openAsking(id),
		clickText(`.page-actions button`, "Pause"),
		workflowIs("pausing"),
		clickText(`.page-actions button`, "Resume"),
		workflowIs("running"),
		clickText(`.page-actions button`, "Pause"),
		workflowIs("pausing"),
	)
	require.False(t, hasButton(t, tab, "Pause"), "a pausing workflow offers no pause")
	inquiries := apiData[[]struct{ ID int64 }](t, s, http.MethodGet, fmt.Sprintf("/api/v1/inquiries?workflow_id=%d", id), nil, http.StatusOK)
	require.Len(t, inquiries, 1)

	// A viewer, whom the inquiry does not name, is offered neither its form nor the
	// workflow's controls.
	s.apiCall(t, http.MethodPost, "/api/v1/identities", map[string]any{"login": "vera", "password": "vera-password-1", "role": "viewer"}, http.StatusCreated)
	viewer := newBrowser(t)
	s.logIn(t, viewer, "vera", "vera-password-1")
	browse(t, viewer,
		s.open(fmt.Sprintf("/inquiries/%d", inquiries[0].ID)),
		waitText(`main`, "Only roles operator, and admins may answer; you are vera (viewer)"),
		s.open(fmt.Sprintf("/workflows/%d", id)),
		workflowIs("pausing"),
	)
	require.False(t, evaluate[bool](t, viewer, `!!document.querySelector('form[aria-label=Answer]')`), "a viewer is offered no answer form")
	for _, b := range []string{"Pause", "Resume", "Cancel"} {
		require.False(t, hasButton(t, viewer, b), "a viewer is offered no %s", b)
	}

	s.apiCall(t, http.MethodPost, fmt.Sprintf("/api/v1/inquiries/%d/respond", inquiries[0].ID), map[string]any{"response": map[string]any{"approved": true}}, http.StatusOK)
	browse(t, tab,
		taskIs("ask", "succeeded"),
		workflowIs("paused"),
		taskIs("deploy", "waiting"), // reached, held back by the pause
		clickText(`.page-actions button`, "Resume"),
		taskIs("deploy", "succeeded"),
		workflowIs("completed"),
	)

	// Cancelled while it asks: the question goes with it.
	id = s.startApproval(t, "cancelled")
	watched = append(watched, id)
	browse(t, tab,
		s.openAsking(id),
		clickText(`.page-actions button`, "Cancel"),
		clickText(`.page-actions button`, "Yes, cancel"),
		workflowIs("cancelled"),
		taskIs("ask", "cancelled"),
		taskIs("deploy", ""),
		waitGone(`main`, "Waiting for an answer"),
	)
	require.False(t, hasButton(t, tab, "Cancel"), "a cancelled workflow offers no cancel")
}

// explainFailure logs, when the test has failed, what the server holds of the watched
// workflows and their tasks, and what the page asked of the server and when, to tell a
// workflow that stopped from a page that stopped reading.
func (s *uiServer) explainFailure(t *testing.T, tab context.Context, watched *[]int64) {
	t.Helper()
	browse(t, tab, run(`(() => {
		const log = window.__fetches = [];
		const orig = window.fetch;
		window.fetch = (input, init) => {
			const e = { url: String(input?.url ?? input), start: Date.now() };
			log.push(e);
			const p = orig(input, init);
			p.then((r) => { e.status = r.status; e.end = Date.now(); }, (err) => { e.error = String(err); e.end = Date.now(); });
			return p;
		};
	})()`))
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, id := range *watched {
			for _, path := range []string{fmt.Sprintf("/executions/%d", id), fmt.Sprintf("/executions?parent=%d&per_page=50", id)} {
				resp := s.request(t, http.MethodGet, "/api/v1"+path, nil)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Logf("GET %s at %s: %d %s", path, time.Now().Format(time.RFC3339Nano), resp.StatusCode, body)
			}
		}
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({now: Date.now(), live: document.querySelector('.live-state')?.innerText,
			fetches: (window.__fetches || []).slice(-40)})`))
		t.Logf("the page's requests (%v): %s", err, state)
	})
}
