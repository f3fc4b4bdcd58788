package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// inputIs is a JavaScript test that the input matching the CSS selector has type and value.
func inputIs(selector, typ, value string) string {
	return fmt.Sprintf(`(e => !!e && e.type === %q && e.value === %q)(document.querySelector(%q))`, typ, value, selector)
}

// faultAt waits until the input matching the CSS selector is the field at fault: marked
// invalid, described by its error showing text, and holding the focus.
func faultAt(selector, text string) browserStep {
	return until(fmt.Sprintf(`(e => !!e && e.getAttribute('aria-invalid') === 'true' && document.activeElement === e
		&& (e.getAttribute('aria-describedby') || '').split(' ').some(id => (document.getElementById(id)?.innerText || '').includes(%q)))(document.querySelector(%q))`, text, selector))
}

// Secret parameters in the forms: an action whose secret has a default runs with that
// default, not with the mask the API shows in its place; typed secrets (a boolean, an
// object, a choice) are password inputs, checked before sending and refused by the API at
// their field, which takes the focus; a rerun holds each masked secret as the mask whatever
// its type and sends it back so, and the action gets the original values. A rule's secret
// object parameter is a password input holding the mask too.
func TestUISecretParameters(t *testing.T) {
	t.Parallel()
	s, tab := adminUI(t)
	s.registerUIPack(t)

	browse(t, tab,
		s.open("/actions/uiexec.vault"),
		waitText(`.run-form`, "Run uiexec.vault"),
		// The masked default is not in the field: left empty, the server's default applies.
		until(inputIs(`#run-token`, "password", "")),
		waitText(`#run-token-hint`, "default set (hidden)"),
		until(`document.querySelector('#run-token').getAttribute('aria-describedby') === 'run-token-hint'`),
		until(inputIs(`#run-flag`, "password", "")),
		until(inputIs(`#run-config`, "password", "")),
		until(inputIs(`#run-tier`, "password", "")),
		// Checked here first, then by the API, each at its field.
		fill(`#run-flag`, "maybe"),
		chromedp.Click(chromedp.CSS(`.run-form button[type=submit]`)),
		faultAt(`#run-flag`, "true or false is needed."),
		fill(`#run-flag`, "true"),
		fill(`#run-config`, `{"depth": 3}`),
		fill(`#run-tier`, "bronze"),
		chromedp.Click(chromedp.CSS(`.run-form button[type=submit]`)),
		faultAt(`#run-tier`, "not one of the allowed values"),
		until(`document.querySelector('#run-flag').getAttribute('aria-invalid') === null`),
		until(`location.pathname === '/actions/uiexec.vault'`),
	)
	screen(t, tab, "action-secrets")
	browse(t, tab,
		fill(`#run-tier`, "silver"),
		chromedp.Click(chromedp.CSS(`.run-form button[type=submit]`)),
		onExecutionPage(0),
		statusIs("completed"),
		waitText(`.exec-output`, "token is its default"),
		waitText(`.exec-output`, "flag is on"),
		waitText(`.exec-output`, "config is deep"),
		waitText(`.exec-output`, "tier is the second"),
	)
	first := execID(t, tab)
	exec := s.apiCall(t, http.MethodGet, fmt.Sprintf("/api/v1/executions/%d", first), nil, http.StatusOK)
	require.Equal(t, "********", exec["parameters"].(map[string]any)["token"], "the token is recorded, and masked")

	// A rerun: every secret, whatever its type, is the mask in a password input, sent back so.
	browse(t, tab,
		clickText(`.page-actions button`, "Rerun"),
		until(inputIs(`#rerun-token`, "password", "********")),
		until(inputIs(`#rerun-flag`, "password", "********")),
		until(inputIs(`#rerun-config`, "password", "********")),
		until(inputIs(`#rerun-tier`, "password", "********")),
		waitText(`#rerun-config-hint`, "it keeps its value"),
		fill(`#rerun-note`, "second"),
		chromedp.Click(chromedp.CSS(`.rerun-form button[type=submit]`)),
		onExecutionPage(first),
		statusIs("completed"),
		waitText(`.exec-output`, "note: second"),
		waitText(`.exec-output`, "token is its default"),
		waitText(`.exec-output`, "flag is on"),
		waitText(`.exec-output`, "config is deep"),
		waitText(`.exec-output`, "tier is the second"),
	)

	// A rule's secret object parameter: the mask, in a password input, kept when saved.
	s.apiCall(t, http.MethodPost, "/api/v1/rules", map[string]any{
		"ref": "uiexec.on_vault", "trigger_ref": "core.webhook", "trigger_params": map[string]any{"url": "vault"},
		"action_ref": "uiexec.vault", "action_params": map[string]any{"config": map[string]any{"depth": 3}},
	}, http.StatusCreated)
	browse(t, tab,
		s.open("/rules/uiexec.on_vault"),
		until(inputIs(`#action_params-config`, "password", "********")),
		clickText(`button[type=submit]`, "Save"),
		waitText(`.notice`, "Saved."),
	)
	resp := s.request(t, http.MethodPost, "/api/v1/webhooks/vault", strings.NewReader(`{}`))
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "post to the rule's webhook")
	browse(t, tab,
		s.open("/executions?rule=uiexec.on_vault"),
		waitText(`tbody`, "completed"),
		run(`document.querySelector('tbody a[href^="/executions/"]').click()`),
		statusIs("completed"),
		waitText(`.exec-output`, "config is deep"),
	)
}
