package app_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The datastore, identities, API tokens and the audit log in the browser: a secret key set
// through the form is listed as ******** and its value is nowhere in the page; a plain key
// shows its value and is deleted after a confirmation; an error the API names a field for is
// shown at that field; an identity and an API token are made, the token's secret shown once
// and gone after a reload; the audit log lists those changes and filters them by kind, in the
// address. A viewer is offered neither identities nor the audit log, and is told so at its
// address. A secret key's value is a password input in either mode; the field at fault takes
// the focus and is described by its error; the name filter follows Back and Forward; an
// admin is offered no change of their own role nor their own deletion.
func TestUIKeysAndAdmin(t *testing.T) {
	t.Parallel()
	s := startUIServer(t)
	const viewerPassword = "viewer-password-1"
	s.apiCall(t, http.MethodPost, "/api/v1/identities", map[string]any{"login": "vera", "password": viewerPassword, "role": "viewer"}, http.StatusCreated)
	tab := newBrowser(t)
	s.logIn(t, tab, "admin", testAdminPassword)
	const secret = "hunter2-never-in-the-page"
	setKey := `form[aria-label="Set a key"] button[type=submit]`
	browse(t, tab,
		s.open("/keys"),
		waitText(`h1`, "Keys"),
		fill(`#key-scope`, "system"),
		fill(`#key-name`, "ui_secret"),
		chromedp.Click(chromedp.CSS(`#key-secret`)),
		until(`document.querySelector('#key-value').type === 'password'`),
		// A secret given as JSON is not shown as typed either.
		chromedp.Click(chromedp.CSS(`input[name=key-mode][value=json]`)),
		until(`document.querySelector('#key-value').type === 'password'`),
		chromedp.Click(chromedp.CSS(`input[name=key-mode][value=text]`)),
		fill(`#key-value`, secret),
		chromedp.Click(chromedp.CSS(setKey)),
		waitText(`[role=status]`, "Set system.ui_secret (secret)."),
		until(rowHas("ui_secret", "********")),
	)
	require.False(t, evaluate[bool](t, tab, fmt.Sprintf(
		`document.documentElement.outerHTML.includes(%q) || [...document.querySelectorAll('input, textarea')].some(e => e.value.includes(%[1]q))`, secret)),
		"the secret value is in the page")

	browse(t, tab,
		// The API's refusal of a TTL shows at the TTL field.
		fill(`#key-name`, "ui_plain"),
		fill(`#key-value`, "hello plain"),
		fill(`#key-ttl`, "soon"),
		chromedp.Click(chromedp.CSS(setKey)),
		waitText(`.field.invalid`, "Want a positive duration"),
		until(`document.querySelector('.field.invalid #key-ttl') !== null`),
		// The field at fault takes the focus, and is described by its error and hint.
		until(`document.activeElement === document.querySelector('#key-ttl') && document.querySelector('#key-ttl').getAttribute('aria-invalid') === 'true'`),
		until(`document.querySelector('#key-ttl').getAttribute('aria-describedby') === 'key-ttl-hint key-ttl-error' && document.querySelector('#key-ttl-error').innerText.includes('Want a positive duration')`),
		fill(`#key-ttl`, "1h"),
		chromedp.Click(chromedp.CSS(setKey)),
		until(rowHas("ui_plain", "hello plain")),
		waitGone(`.field-error`, "duration"),
		// A name the API would refuse is stopped at its field before anything is sent.
		fill(`#key-name`, "9 lives"),
		fill(`#key-value`, "x"),
		chromedp.Click(chromedp.CSS(setKey)),
		until(`document.querySelector('.field.invalid #key-name') !== null`),
	)
	browse(t, tab, run(`scrollTo(0, 0)`))
	screen(t, tab, "keys")
	screen(t, tab, "keys-phone")
	browse(t, tab,
		// Change fills the form in with the key, but never with a secret's value.
		clickInRow("ui_plain", "Change"),
		waitText(`form[aria-label="Set a key"] h2`, "Change system.ui_plain"),
		until(`document.querySelector('#key-value').value === 'hello plain'`),
		clickInRow("ui_secret", "Change"),
		waitText(`form[aria-label="Set a key"] h2`, "Change system.ui_secret"),
		until(`document.querySelector('#key-secret').checked && document.querySelector('#key-value').value === ''`),
		// Sent as it is, empty, it would replace the secret with nothing: refused at the value.
		fill(`#key-ttl`, "1h"),
		chromedp.Click(chromedp.CSS(setKey)),
		until(`document.querySelector('.field.invalid #key-value') !== null`),
		waitText(`.field.invalid`, "a secret is replaced whole"),
		clickText(`button`, "Set another key instead"),
		waitText(`form[aria-label="Set a key"] h2`, "Set a key"),
		clickInRow("ui_plain", "Delete"),
		clickText(`button`, "Yes, delete"),
		until(`!`+rowHas("ui_plain", "")),
		// The row and its buttons are gone, the screen stays: the focus goes to its heading,
		// not to the page's body.
		until(`document.activeElement === document.querySelector('#main h1')`),
		until(rowHas("ui_secret", "********")),
	)
	kept := s.apiCall(t, http.MethodGet, "/api/v1/keys/system/ui_secret?decrypt=true", nil, http.StatusOK)
	require.Equal(t, secret, kept["value"], "the refused change touched the secret")
	// The name filter follows the address, Back and Forward included.
	browse(t, tab,
		fill(`form[role=search] input[type=search]`, "ui_"),
		clickText(`form[role=search] button`, "Filter"),
		until(`new URLSearchParams(location.search).get('prefix') === 'ui_'`),
		// Another address, as a link would open it: the box follows it, and Back.
		s.open("/keys?prefix=nothing_"),
		until(`document.querySelector('form[role=search] input[type=search]').value === 'nothing_'`),
		waitText(`main`, "No key matches."),
		run(`history.back()`),
		until(`new URLSearchParams(location.search).get('prefix') === 'ui_' && document.querySelector('form[role=search] input[type=search]').value === 'ui_'`),
		until(rowHas("ui_secret", "********")),
		run(`history.forward()`),
		until(`document.querySelector('form[role=search] input[type=search]').value === 'nothing_'`),
	)

	// An identity: created as an operator, listed with its role.
	browse(t, tab,
		s.open("/identities"),
		waitText(`h1`, "Identities"),
		fill(`#identity-login`, "olga"),
		fill(`#identity-password`, "operator-pass-1"),
		choose(`#identity-role`, "operator"),
		clickText(`form[aria-label="Create an identity"] button`, "Create"),
		waitText(`[role=status]`, "Created olga (operator)."),
		until(`[...document.querySelectorAll('tbody tr')].some(r => r.innerText.includes('olga') && r.querySelector('select').value === 'operator')`),
		// The admin is offered no change of their own role, nor their own deletion.
		until(`(r => !!r && !r.querySelector('select') && ![...r.querySelectorAll('button')].some(b => b.innerText.includes('Delete')))([...document.querySelectorAll('tbody tr')].find(r => r.innerText.includes('you')))`),
	)
	screen(t, tab, "identities")
	browse(t, tab,
		// A new password the API refuses is shown at its field; a good one is set.
		clickInRow("olga", "New password"),
		fill(`form[aria-label="New password for olga"] input`, "short"),
		clickText(`form[aria-label="New password for olga"] button`, "Set password"),
		waitText(`form[aria-label="New password for olga"] .field-error`, "At least 8 characters"),
		fill(`form[aria-label="New password for olga"] input`, "operator-pass-2"),
		clickText(`form[aria-label="New password for olga"] button`, "Set password"),
		waitText(`[role=status]`, "Set a new password for olga."),
	)

	// An API token: its secret shown once, with a copy button, and gone after a reload.
	browse(t, tab,
		s.open("/tokens"),
		waitText(`h1`, "API tokens"),
		fill(`#token-name`, "ui-token"),
		clickText(`form[aria-label="Create an API token"] button`, "Create token"),
		waitText(`.new-token`, "it will not be shown again"),
		waitText(`.new-token button`, "Copy"),
		until(rowHas("ui-token", "active")),
	)
	token := evaluate[string](t, tab, `document.querySelector('.new-token code').innerText`)
	require.True(t, strings.HasPrefix(token, "atn_"), "token %q", token)
	screen(t, tab, "tokens")
	browse(t, tab,
		chromedp.Reload(),
		until(rowHas("ui-token", "active")),
	)
	require.False(t, evaluate[bool](t, tab, fmt.Sprintf(`document.documentElement.outerHTML.includes(%q)`, token)),
		"the token is in the page after a reload")

	// The audit log: those changes, then only the identities' by kind, in the address.
	browse(t, tab,
		s.open("/audit"),
		waitText(`h1`, "Audit log"),
		until(rowHas("key.set", "key system.ui_secret")),
		until(rowHas("identity.create", "identity olga")),
		until(rowHas("token.create", "token")),
		clickInRow("key system.ui_secret", "Details"),
		until(`[...document.querySelectorAll('details[open] pre')].some(e => e.innerText.includes('"secret": true'))`),
	)
	screen(t, tab, "audit")
	screen(t, tab, "audit-phone")
	browse(t, tab,
		fill(`#audit-kind`, "identity"),
		clickText(`form[role=search] button`, "Filter"),
		until(`new URLSearchParams(location.search).get('kind') === 'identity'`),
		until(`!`+rowHas("key.set", "")),
		until(rowHas("identity.create", "olga")),
		chromedp.Reload(),
		until(rowHas("identity.create", "olga")),
		until(`!`+rowHas("key.set", "")+` && document.querySelector('#audit-kind').value === 'identity'`),
	)

	// A viewer: no identities nor audit log in the navigation, and told so at the address.
	viewer := newBrowser(t)
	s.logIn(t, viewer, "vera", viewerPassword)
	browse(t, viewer,
		waitText(`#nav`, "Keys"),
		waitText(`#nav`, "API tokens"),
		until(`!document.querySelector('#nav').innerText.includes('Identities') && !document.querySelector('#nav').innerText.includes('Audit log')`),
		s.open("/audit"),
		waitText(`[role=alert]`, "Admins only"),
		s.open("/identities"),
		waitText(`[role=alert]`, "Admins only"),
		// The viewer's own keys only: the form offers the user scope alone.
		s.open("/keys"),
		until(rowHas("ui_secret", "********")),
		until(`[...document.querySelectorAll('#key-scope option')].map(o => o.value).join() === 'user'`),
		until(`!`+rowHas("ui_secret", "Delete")),
	)
}

// rowHas is a JavaScript test that some table row shows both texts.
func rowHas(text, also string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('tbody tr')].some(r => r.innerText.includes(%q) && r.innerText.includes(%q))`, text, also)
}

// clickInRow clicks the button or summary showing label in the table row that shows text.
func clickInRow(text, label string) browserStep {
	return chromedp.Steps(
		until(rowHas(text, label)),
		run(fmt.Sprintf(`(() => { const row = [...document.querySelectorAll('tbody tr')].find(r => r.innerText.includes(%q));
			[...row.querySelectorAll('button, summary')].find(b => b.innerText.includes(%q)).click() })()`, text, label)),
	)
}

// choose picks value in the select matching the CSS selector, as a person would.
func choose(selector, value string) browserStep {
	return run(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event('change', {bubbles: true})) })()`, selector, value))
}
