package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// apiCall sends body as JSON to the API as the first admin and decodes the answer's data.
func (s *uiServer) apiCall(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	resp := s.request(t, method, path, bytes.NewReader(b))
	defer resp.Body.Close()
	var out struct {
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, want, resp.StatusCode, "%s %s", method, path)
	return out.Data
}

// registerUIPack registers testdata/ui/uiexec, the actions these tests need.
func (s *uiServer) registerUIPack(t *testing.T) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "ui", "uiexec"))
	require.NoError(t, err)
	s.apiCall(t, http.MethodPost, "/api/v1/packs/register", map[string]string{"path": dir}, http.StatusOK)
}

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

// statusIs waits until the execution's page shows status.
func statusIs(status string) browserStep {
	return waitText(`.exec-summary .status`, status)
}

// Run demo.hello from its form, watch a gated action's output arrive while it runs, cancel a
// long one, rerun one with a changed parameter (its secret kept), and the executions list,
// filtered, showing them and a new one without a reload.
func TestUIRunCancelRerun(t *testing.T) {
	t.Parallel()
	s := startUIServer(t)
	s.registerUIPack(t)
	tab := newBrowser(t)
	s.logIn(t, tab, "admin", testAdminPassword)

	// Search the actions, open demo.hello's page, run it with another name.
	browse(t, tab,
		s.open("/actions"),
		fill(`input[name=q]`, "greets"),
		clickText(`form[role=search] button`, "Search"),
		until(`location.search === '?q=greets'`),
		waitText(`table`, "demo.hello"),
		waitGone(`table`, "demo.slow"),
	)
	screenshot(t, tab, "actions")
	browse(t, tab,
		clickText(`table a`, "demo.hello"),
		until(`location.pathname === '/actions/demo.hello'`),
		waitText(`.run-form`, "Run demo.hello"),
		until(`document.querySelector('#run-name').value === 'world'`),
		fill(`#run-name`, "Ada"),
	)
	screenshot(t, tab, "action-run")
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
	screenshot(t, tab, "execution")
	require.NoError(t, os.WriteFile(gate, []byte("go\n"), 0o600))
	browse(t, tab,
		statusIs("completed"),
		waitText(`pre[data-stream=stdout]`, "Released with go"),
		waitText(`pre[data-stream=stderr]`, "a line on stderr"),
		waitText(`.timeline`, "Finished"),
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
	greet := s.apiCall(t, http.MethodPost, "/api/v1/executions/execute",
		map[string]any{"action_ref": "uiexec.greet", "parameters": map[string]any{"name": "Bea", "password": "open-sesame-42"}}, http.StatusCreated)
	greetID := int(greet["id"].(float64))
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
		waitText(`dl.props`, fmt.Sprintf("#%d", greetID)),
	)
	rerun := execID(t, tab)
	require.NotEqual(t, greetID, rerun)
	screenshot(t, tab, "execution-phone")

	// The list filtered by status and action, and a new execution showing up live.
	browse(t, tab,
		s.open("/executions?status=cancelled&action=demo.slow"),
		waitText(`table`, fmt.Sprintf("#%d", slow)),
		waitGone(`table`, fmt.Sprintf("#%d", hello)),
		until(`document.querySelector('select[name=status]').value === 'cancelled'`),
		s.open("/executions?action=demo.hello"),
		waitText(`table`, fmt.Sprintf("#%d", hello)),
		waitGone(`table`, fmt.Sprintf("#%d", slow)),
		waitText(`.live`, "Live"),
	)
	fresh := s.apiCall(t, http.MethodPost, "/api/v1/executions/execute",
		map[string]any{"action_ref": "demo.hello", "parameters": map[string]any{"name": "Zed"}}, http.StatusCreated)
	browse(t, tab,
		until(fmt.Sprintf(`[...document.querySelectorAll('tbody tr')].some(r => r.innerText.includes('#%d') && r.innerText.includes('completed'))`, int(fresh["id"].(float64)))),
		clickText(`form[role=search] button`, "Clear"),
		until(`location.search === ''`),
		waitText(`table`, fmt.Sprintf("#%d", slow)),
	)
	screenshot(t, tab, "executions")
}

// A viewer sees actions and executions but is offered no run, cancel or rerun, and the
// API refuses the run the page could send with the viewer's token.
func TestUIViewerCannotRun(t *testing.T) {
	t.Parallel()
	s := startUIServer(t)
	const password = "viewer-password-long"
	s.apiCall(t, http.MethodPost, "/api/v1/identities", map[string]any{"login": "vera", "password": password, "role": "viewer"}, http.StatusCreated)
	exec := s.apiCall(t, http.MethodPost, "/api/v1/executions/execute", map[string]any{"action_ref": "demo.hello"}, http.StatusCreated)
	tab := newBrowser(t)
	s.logIn(t, tab, "vera", password)
	browse(t, tab,
		s.open("/actions"),
		waitText(`table`, "demo.hello"),
		clickText(`table a`, "demo.hello"),
		waitText(`table`, "Who to greet."),
		until(`!document.querySelector('.run-form') && ![...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Run')`),
		s.open(fmt.Sprintf("/executions/%d", int(exec["id"].(float64)))),
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
