package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// execID is the id of the execution whose page the tab shows.
func execID(t *testing.T, tab context.Context) int {
	t.Helper()
	path := evaluate[string](t, tab, `location.pathname`)
	id, err := strconv.Atoi(strings.TrimPrefix(path, "/executions/"))
	require.NoError(t, err, "not an execution's page: %s", path)
	return id
}

// onExecutionPage waits until the tab shows an execution's page other than the one not.
func onExecutionPage(not int) browserStep {
	return until(fmt.Sprintf(`/^\/executions\/\d+$/.test(location.pathname) && location.pathname !== '/executions/%d' && !!document.querySelector('.exec-summary')`, not))
}

// listed waits until the executions table lists execution id (its own link, so that #1 is not
// taken for #10); gone until it does not.
func listed(id int) browserStep {
	return until(fmt.Sprintf(`!!document.querySelector('tbody a[href="/executions/%d"]')`, id))
}

func unlisted(id int) browserStep {
	return until(fmt.Sprintf(`!!document.querySelector('tbody') && !document.querySelector('tbody a[href="/executions/%d"]')`, id))
}

// release writes a line to the FIFO gate that a gated execution reads, waiting (within the
// browser timeout) for it to open the FIFO: a plain write would block for ever on a FIFO that
// no execution reads any more.
func release(t *testing.T, gate string) {
	t.Helper()
	deadline := time.Now().Add(browserTimeout)
	for {
		f, err := os.OpenFile(gate, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			_, err = f.WriteString("go\n")
			require.NoError(t, errors.Join(err, f.Close()), "release %s", gate)
			return
		}
		require.ErrorIs(t, err, syscall.ENXIO, "release %s", gate)
		require.True(t, time.Now().Before(deadline), "nothing read the gate %s", gate)
		time.Sleep(20 * time.Millisecond) // the reader opens it in a moment: poll until then
	}
}

// statusIs waits until the execution's page shows status.
func statusIs(status string) browserStep {
	return waitText(`.exec-summary .status`, status)
}

// Run demo.hello from its form, watch a gated action's output arrive while it runs, cancel a
// long one, rerun one with a changed parameter (its secret kept), and the executions list,
// filtered, showing them and a new one without a reload.
func TestUIRunCancelRerun(t *testing.T) {
	t.Parallel()
	s, tab := adminUI(t)
	s.registerUIPack(t)

	// Search the actions, open demo.hello's page, run it with another name.
	browse(t, tab,
		s.open("/actions"),
		fill(`input[name=q]`, "greets"),
		clickText(`form[role=search] button`, "Search"),
		until(`location.search === '?q=greets'`),
		waitText(`table`, "demo.hello"),
		waitGone(`table`, "demo.slow"),
	)
	screen(t, tab, "actions")
	browse(t, tab,
		clickText(`table a`, "demo.hello"),
		until(`location.pathname === '/actions/demo.hello'`),
		waitText(`.run-form`, "Run demo.hello"),
		until(`document.querySelector('#run-name').value === 'world'`),
		fill(`#run-name`, "Ada"),
	)
	screen(t, tab, "action-run")
	screen(t, tab, "action-run-phone")
	browse(t, tab,
		chromedp.Click(chromedp.CSS(`.run-form button[type=submit]`)),
		onExecutionPage(0),
		statusIs("completed"),
		waitText(`.exec-output`, "Hello, Ada!"),
		waitText(`table`, "Ada"),
	)
	hello := execID(t, tab)

	// A required field left empty is refused at the field; the gated action's line shows
	// while it still runs, and it completes once the test opens the gate.
	gate := filepath.Join(t.TempDir(), "gate")
	require.NoError(t, syscall.Mkfifo(gate, 0o600))
	browse(t, tab,
		s.open("/actions/uiexec.gated"),
		waitText(`.run-form`, "Run uiexec.gated"),
		fill(`#run-gate`, gate),
		chromedp.Click(chromedp.CSS(`.run-form button[type=submit]`)),
		waitText(`.field.invalid .field-error`, "Required."),
		until(`location.pathname === '/actions/uiexec.gated'`),
		fill(`#run-name`, "Live"),
		chromedp.Click(chromedp.CSS(`.run-form button[type=submit]`)),
		onExecutionPage(hello),
		until(`document.querySelector('.exec-summary .status')?.innerText === 'running' &&
			(document.querySelector('.output.live .stdout')?.innerText || '').includes('Hello, Live: waiting at the gate') &&
			(document.querySelector('.output.live .stderr')?.innerText || '').includes('a line on stderr')`),
	)
	screen(t, tab, "execution")
	screen(t, tab, "execution-dark")
	// Chunks are not read aloud one by one; the status line is.
	require.True(t, evaluate[bool](t, tab, `!document.querySelector('.output.live[aria-live]') && !!document.querySelector('.exec-summary[role=status]')`))
	release(t, gate)
	browse(t, tab,
		statusIs("completed"),
		waitText(`pre[data-stream=stdout]`, "Released with go"),
		waitText(`pre[data-stream=stderr]`, "a line on stderr"),
		waitText(`.timeline`, "Finished"),
		// Clock times, not "now" four times over.
		until(`[...document.querySelectorAll('.timeline time')].length === 4 &&
			[...document.querySelectorAll('.timeline time')].every(e => /\d:\d\d/.test(e.innerText))`),
		waitText(`.trace .trace-node.current`, "uiexec.gated"),
	)

	// What the API refuses is shown at the field it names: the action's count became an
	// integer after its form was shown.
	browse(t, tab,
		s.open("/actions/uiexec.changing"),
		waitText(`.run-form`, "Run uiexec.changing"),
		fill(`#run-count`, "many"),
	)
	s.apiCall(t, http.MethodPut, "/api/v1/actions/uiexec.changing", map[string]any{
		"runner_type": "shell", "entry_point": "greet.sh", "parameters": map[string]any{"count": map[string]any{"type": "integer"}},
	}, http.StatusOK)
	browse(t, tab,
		chromedp.Click(chromedp.CSS(`.run-form button[type=submit]`)),
		until(`document.querySelector('.field.invalid #run-count') !== null`),
		waitText(`.field.invalid .field-error`, `Parameter "count"`),
		until(`location.pathname === '/actions/uiexec.changing'`),
	)

	// Cancel a long one.
	browse(t, tab,
		s.open("/actions/demo.slow"),
		fill(`#run-seconds`, "60"),
		chromedp.Click(chromedp.CSS(`.run-form button[type=submit]`)),
		onExecutionPage(hello),
		statusIs("running"),
		clickText(`.page-actions button`, "Cancel"),
		clickText(`.page-actions button`, "Yes, cancel"),
		statusIs("cancelled"),
		waitGone(`.page-actions`, "Cancel"),
	)
	slow := execID(t, tab)

	// Rerun one with a changed name; its secret, shown masked, keeps its value.
	greetID := int(s.execute(t, "uiexec.greet", map[string]any{"name": "Bea", "password": "open-sesame-42"}))
	browse(t, tab,
		s.open(fmt.Sprintf("/executions/%d", greetID)),
		statusIs("completed"),
		waitText(`.exec-output`, "password right"),
		waitText(`table`, "********"),
		clickText(`.page-actions button`, "Rerun"),
		until(`document.querySelector('#rerun-name')?.value === 'Bea' && document.querySelector('#rerun-password')?.value === '********'`),
		fill(`#rerun-name`, "Bo"),
		chromedp.Click(chromedp.CSS(`.rerun-form button[type=submit]`)),
		onExecutionPage(greetID),
		statusIs("completed"),
		waitText(`.exec-output`, "Hello, Bo (glad)!"),
		waitText(`.exec-output`, "password right"),
		until(fmt.Sprintf(`[...document.querySelectorAll('dl.props dt')].some(dt => dt.innerText === 'Rerun of' && dt.nextElementSibling.innerText === 'execution #%d')`, greetID)),
	)
	rerun := execID(t, tab)
	require.NotEqual(t, greetID, rerun)
	screen(t, tab, "execution-phone")

	// The list filtered by status and action, and a new execution showing up live.
	browse(t, tab,
		s.open("/executions?status=cancelled&action=demo.slow"),
		listed(slow),
		unlisted(hello),
		until(`document.querySelector('select[name=status]').value === 'cancelled'`),
		s.open("/executions?action=demo.hello"),
		listed(hello),
		unlisted(slow),
		waitText(`.live-state`, "Live"),
	)
	fresh := s.execute(t, "demo.hello", map[string]any{"name": "Zed"})
	browse(t, tab,
		until(fmt.Sprintf(`[...document.querySelectorAll('tbody tr')].some(r => r.querySelector('a[href="/executions/%d"]') && r.innerText.includes('completed'))`, fresh)),
		clickText(`form[role=search] button`, "Clear"),
		until(`location.search === ''`),
		listed(slow),
	)
	screen(t, tab, "executions")
	screen(t, tab, "executions-phone")

	// A time filter is kept in the address as RFC 3339 and shown in local time.
	browse(t, tab,
		run(`(() => { const i = document.querySelector('input[name=since]');
			Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(i, '2020-01-02T03:04');
			i.dispatchEvent(new Event('change', {bubbles: true})) })()`),
		until(`new URLSearchParams(location.search).get('since') === new Date('2020-01-02T03:04').toISOString().replace('.000Z', 'Z')`),
		s.open("/executions?since=2020-01-02T03:04:00Z"),
		until(`document.querySelector('input[name=since]').value === (() => { const d = new Date('2020-01-02T03:04:00Z');
			return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16) })()`),
		listed(slow),
	)
}

// A viewer sees actions and executions but is offered no run, cancel or rerun, and the
// API refuses the run the page could send with the viewer's token.
func TestUIViewerCannotRun(t *testing.T) {
	t.Parallel()
	s := startUIServer(t)
	const password = "viewer-password-long"
	s.apiCall(t, http.MethodPost, "/api/v1/identities", map[string]any{"login": "vera", "password": password, "role": "viewer"}, http.StatusCreated)
	exec := s.execute(t, "demo.hello", map[string]any{})
	tab := newBrowser(t)
	s.logIn(t, tab, "vera", password)
	browse(t, tab,
		s.open("/actions"),
		waitText(`table`, "demo.hello"),
		clickText(`table a`, "demo.hello"),
		waitText(`table`, "Who to greet."),
		until(`!document.querySelector('.run-form') && ![...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Run')`),
		s.open(fmt.Sprintf("/executions/%d", exec)),
		statusIs("completed"),
		until(`![...document.querySelectorAll('button')].some(b => /Cancel|Rerun/.test(b.innerText))`),
	)
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	defer cancel()
	status, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(async () => {
		const t = JSON.parse(localStorage.getItem('attune.tokens'));
		const r = await fetch('/api/v1/executions/execute', {method: 'POST',
			headers: {'Content-Type': 'application/json', Authorization: 'Bearer ' + t.access_token},
			body: JSON.stringify({action_ref: 'demo.hello'})});
		return r.status;
	})()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, float64(http.StatusForbidden), status)
}

// awaited evaluates JavaScript that answers a promise, and answers what it resolves to.
func awaited[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "evaluate %s", js)
	return v
}

// The live parts, in the browser that runs them: lib/status.js never moves a status
// backwards, useAsync shows answers while reloads keep coming faster than a load takes, and
// a hidden tab gives its stream's connection back, then reads again when shown.
func TestUILiveParts(t *testing.T) {
	t.Parallel()
	s, tab := adminUI(t)
	browse(t, tab, s.open("/executions"), waitText(`.live-state`, "Live"))

	wrong := awaited[[]string](t, tab, `(async () => {
		const { furthest, cancellable } = await import('/assets/lib/status.js');
		const t1 = '2025-01-01T10:00:00Z', t2 = '2025-01-01T10:00:01Z';
		const pairs = [
			// [shown, next, want]
			[['running', t1], ['pausing', t2], 'pausing'],
			[['pausing', t2], ['running', t1], 'pausing'],
			[['pausing', t1], ['running', t2], 'running'], // a change missed while reconnecting, read later
			[['paused', t1], ['running', t1], 'paused'],
			[['running', t2], ['scheduled', t1], 'running'],
			[['scheduled', t1], ['running', t2], 'running'],
			[['requested', t2], ['scheduling', t1], 'scheduling'],
			[['completed', t1], ['running', t2], 'completed'],
			[['running', t1], ['failed', t2], 'failed'],
			[['canceling', t1], ['paused', t2], 'canceling'],
			[['paused', t2], ['canceling', t1], 'canceling'],
			[['abandoned', t1], ['completed', t2], 'completed'],
			[['completed', t1], ['abandoned', t2], 'completed'],
			[['failed', t1], ['cancelled', t2], 'failed'],
			[null, ['requested', t1], 'requested'],
			[['requested', t1], null, 'requested'],
		];
		const sight = (p) => p && { status: p[0], at: p[1] };
		const t3 = '2025-01-01T10:00:02Z', t4 = '2025-01-01T10:00:03Z';
		// Sightings folded in the order they arrive: heard running, then (stream away) read
		// paused, then heard running again after a resume: the second running is the later.
		const chains = [
			[[['running', t1], ['running', t4], ['paused', t3]], 'running'],
			[[['paused', t3], ['running', t1], ['running', t4]], 'running'],
		];
		const out = pairs.filter(([a, b, want]) => furthest(sight(a), sight(b))?.status !== want).map((p) => JSON.stringify(p))
			.concat(chains.filter(([seen, want]) => seen.map(sight).reduce((a, b) => furthest(a, b), null)?.status !== want).map((c) => 'chain ' + JSON.stringify(c)));
		const cancels = [[{ status: 'canceling' }, true], [{ status: 'paused' }, true], [{ status: 'failed', retry_at: t1 }, true], [{ status: 'completed' }, false]];
		return out.concat(cancels.filter(([e, want]) => cancellable(e) !== want).map((c) => 'cancellable ' + JSON.stringify(c)));
	})()`)
	require.Empty(t, wrong, "furthest and cancellable answered otherwise for these")

	// Reloads every 15 ms, each load taking 60 ms: every answer would be overtaken by a newer
	// request if only the newest request's answer were shown.
	var got struct{ During, Most, Last, Calls int }
	require.NoError(t, json.Unmarshal([]byte(awaited[string](t, tab, `(async () => {
		const { html, render, useEffect } = await import('/assets/vendor/htm-preact.js');
		const { useAsync } = await import('/assets/lib/ui.js');
		const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
		let calls = 0, running = 0, most = 0, state;
		const seen = [];
		function Probe() {
			state = useAsync(async () => {
				const n = ++calls;
				most = Math.max(most, ++running);
				await sleep(60);
				running--;
				return n;
			}, []);
			useEffect(() => { if (state.data !== undefined && seen[seen.length - 1] !== state.data) seen.push(state.data); });
			return null;
		}
		const box = document.createElement('div');
		render(html`+"`<${Probe} />`"+`, box);
		for (let i = 0; i < 40; i++) { state.reload(); await sleep(15); }
		const during = seen.length;
		await state.reload();
		await sleep(100);
		render(null, box);
		return JSON.stringify({ during, most, last: seen[seen.length - 1], calls });
	})()`)), &got))
	require.GreaterOrEqual(t, got.During, 3, "answers shown while the reloads kept coming: %+v", got)
	require.Equal(t, 1, got.Most, "one load at a time: %+v", got)
	require.Equal(t, got.Calls, got.Last, "the last load's answer is shown: %+v", got)
	require.Less(t, got.Calls, 40, "reloads asked for while a load ran coalesced: %+v", got)

	// The page's visibility is the test's to set; fetch counts the streams open and the
	// executions read.
	browse(t, tab,
		run(`(() => {
			window.streams = 0; window.reads = 0; window.hiddenNow = false;
			const f = window.fetch.bind(window);
			window.fetch = (url, init) => {
				if (String(url).includes('/api/v1/stream')) { window.streams++; init?.signal?.addEventListener('abort', () => window.streams--); }
				if (String(url).includes('/api/v1/executions')) window.reads++;
				return f(url, init);
			};
			Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (window.hiddenNow ? 'hidden' : 'visible') });
			window.setHidden = (h) => { window.hiddenNow = h; document.dispatchEvent(new Event('visibilitychange')); };
		})()`),
		run(`setHidden(true)`),
		waitText(`.live-state`, "Paused while hidden"),
		run(`window.reads = 0; setHidden(false)`),
		waitText(`.live-state`, "Live"),
		until(`window.streams === 1 && window.reads > 0`),
		run(`setHidden(true)`),
		until(`window.streams === 0`),
		waitText(`.live-state`, "Paused while hidden"),
		run(`setHidden(false)`),
		until(`window.streams === 1`),
	)
}
