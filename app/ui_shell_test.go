package app_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// refreshFault stands between a tab and the server's POST /auth/refresh, as a proxy in
// front of a restarting server would, through Chromium's Fetch domain: it passes the
// requests on, answers them 503, or holds them until let go.
type refreshFault struct {
	tab  context.Context
	mu   sync.Mutex
	mode string // "pass", "503" or "hold"
	held []fetch.RequestID
	seen int
}

func interceptRefresh(t *testing.T, tab context.Context) *refreshFault {
	t.Helper()
	f := &refreshFault{tab: tab, mode: "pass"}
	paused := chromedp.Events(tab, fetch.RequestPaused)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			f.mu.Lock()
			f.seen++
			switch f.mode {
			case "hold":
				f.held = append(f.held, ev.RequestID)
			case "503":
				_, _ = chromedp.Call(tab, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 503})
			default:
				_, _ = chromedp.Call(tab, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			}
			f.mu.Unlock()
		}
	}()
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	defer cancel()
	_, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/auth/refresh"}}})
	require.NoError(t, err, "intercept /auth/refresh")
	return f
}

func (f *refreshFault) set(mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
}

// count is how many refreshes reached the fault.
func (f *refreshFault) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen
}

// waitHeld waits until a refresh is held.
func (f *refreshFault) waitHeld(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.held) > 0
	}, browserTimeout, 20*time.Millisecond, "a refresh held")
}

// release passes the held refreshes on to the server, and those that come after.
func (f *refreshFault) release(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = "pass"
	for _, id := range f.held {
		_, err := chromedp.Call(f.tab, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: id})
		require.NoError(t, err)
	}
	f.held = nil
}

// accessExpired is true once the stored access token is past its expiry and the server's
// leeway (5 s).
const accessExpired = `(() => {
  const t = JSON.parse(localStorage.getItem('attune.tokens') || 'null');
  if (!t) return false;
  const claims = JSON.parse(atob(t.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
  return claims.exp * 1000 + 6000 < Date.now();
})()`

const storedTokens = `localStorage.getItem('attune.tokens')`

// callAPI calls the page's own API client (the module the screens use) and leaves how it
// ended in window.__answer: "answered", or "refused STATUS".
func callAPI(path string) browserStep {
	return run(fmt.Sprintf(`window.__answer = ''; import('/assets/lib/api.js').then((m) => m.api.get(%q))
	  .then(() => { window.__answer = 'answered' }, (e) => { window.__answer = 'refused ' + e.status })`, path))
}

// pick chooses value in the select, as a user would.
func pick(selector, value string) browserStep {
	return run(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event('change', {bubbles: true})) })()`, selector, value))
}

// The session outlives a server that cannot renew the access token for a while (a 503 from
// /auth/refresh keeps the tokens, says so, and the next screen renews them); a logout in
// another tab stands although a refresh was under way here; a login in another tab as
// someone else makes this tab that someone, and stands too against a refresh under way
// here; the login page wears the theme picked.
func TestUIShellSession(t *testing.T) {
	t.Parallel()
	s := startUIServer(t, "--access-token-ttl=2s")
	s.apiCall(t, http.MethodPost, "/api/v1/identities", map[string]any{"login": "vera", "password": "vera-password-1", "role": "viewer"}, http.StatusCreated)

	tab := newBrowser(t)
	s.logIn(t, tab, "admin", testAdminPassword)
	fault := interceptRefresh(t, tab)
	browse(t, tab, s.open("/packs"), waitText(`h1`, "Packs"), until(accessExpired))

	// The refresh answers 503: an error on the screen, still logged in, tokens kept.
	fault.set("503")
	before := evaluate[string](t, tab, storedTokens)
	browse(t, tab,
		s.open("/rules"),
		waitText(`[role=alert]`, "503"),
		chromedp.WaitVisible(chromedp.CSS(`#nav`)),
		waitText(`.who`, "admin"),
	)
	require.Positive(t, fault.count(), "the page asked for a refresh")
	require.Equal(t, before, evaluate[string](t, tab, storedTokens), "the tokens are kept")

	// The server is back: the next screen renews the tokens and shows its list.
	fault.set("pass")
	browse(t, tab,
		s.open("/packs"),
		s.open("/rules"),
		waitText(`tbody`, "demo.on_typed"),
	)
	require.NotEqual(t, before, evaluate[string](t, tab, storedTokens), "renewed")

	// Another tab of the same browser shares the tokens. Once they expire, this tab's
	// refresh is held while the other logs out; the pair it then gets is not stored.
	other, cancel := chromedp.NewContext(tab)
	t.Cleanup(cancel)
	startChromium(t, other)
	browse(t, other, chromedp.Navigate(s.base+"/packs"), waitText(`.who`, "admin"))
	browse(t, tab, until(accessExpired))
	fault.set("hold")
	browse(t, tab, callAPI("/whoami"))
	fault.waitHeld(t)
	browse(t, other, clickText(`button`, "Log out"), chromedp.WaitVisible(chromedp.CSS(`#login`)))
	browse(t, tab, chromedp.WaitVisible(chromedp.CSS(`#login`)))
	fault.release(t)
	browse(t, tab, until(`window.__answer !== ''`))
	require.Equal(t, "refused 401", evaluate[string](t, tab, `window.__answer`))
	require.Empty(t, evaluate[string](t, tab, storedTokens+` || ''`), "the logout stands")
	require.Empty(t, evaluate[string](t, other, storedTokens+` || ''`), "the logout stands in the other tab")

	// The theme picked is the login page's too, from the first render.
	browse(t, tab,
		run(`localStorage.setItem('attune.theme', 'dark')`),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
		until(`document.documentElement.dataset.theme === 'dark'`),
		run(`localStorage.removeItem('attune.theme')`),
	)

	// Logged in here as admin; the other tab logs in as vera: this tab is vera's now.
	s.logIn(t, tab, "admin", testAdminPassword)
	browse(t, tab, waitText(`#nav`, "Audit log"))
	browse(t, other, run(`import('/assets/lib/api.js').then((m) => m.login('vera', 'vera-password-1'))`))
	browse(t, tab,
		waitText(`.who`, "vera"),
		waitGone(`#nav`, "Audit log"),
	)

	// Vera's refresh is held here while the other tab logs in as admin: the refresh finds
	// admin's tokens in place, so this tab's request is refused as it stands, nothing is sent
	// as admin, and admin's login is not undone by a logout from here.
	browse(t, tab, until(accessExpired))
	fault.set("hold")
	browse(t, tab, callAPI("/whoami"))
	fault.waitHeld(t)
	browse(t, other, run(fmt.Sprintf(`import('/assets/lib/api.js').then((m) => m.login('admin', %q)).then(() => { window.__login = 'done' })`, testAdminPassword)),
		until(`window.__login === 'done'`))
	fault.release(t)
	browse(t, tab, until(`window.__answer !== ''`))
	require.Equal(t, "refused 401", evaluate[string](t, tab, `window.__answer`))
	require.NotEmpty(t, evaluate[string](t, other, storedTokens+` || ''`), "admin's login in the other tab stands")
	browse(t, tab, waitText(`.who`, "admin"), waitText(`#nav`, "Audit log"))
}

// Filters in the address: text applies on submit, selects and times at once (times as
// RFC 3339), and the form follows the address on Back. An address that does not decode is
// not found, not a blank page. Confirm's focus: on Yes when asked, back on the button after
// No, on the screen's heading after Yes. Controls' borders stand out at 3:1 in both themes,
// text at 4.5:1.
func TestUIShellFiltersAndFocus(t *testing.T) {
	t.Parallel()
	s, tab := adminUI(t)

	browse(t, tab,
		s.open("/actions/%E0"),
		waitText(`h1`, "Not found"),
	)

	query := func(name string) string { return fmt.Sprintf(`new URLSearchParams(location.search).get(%q)`, name) }
	browse(t, tab,
		s.open("/rules"),
		waitText(`tbody`, "demo.on_typed"),
		fill(`#rules-q`, "on_typed"),
		until(`location.search === '' && document.querySelector('tbody').innerText.includes('demo.on_webhook')`),
		pick(`#rules-enabled`, "true"),
		until(query("enabled")+` === 'true' && `+query("q")+` === null && document.querySelector('#rules-q').value === 'on_typed'`),
		clickText(`form[role=search] button`, "Search"),
		until(query("q")+` === 'on_typed'`),
		waitGone(`tbody`, "demo.on_webhook"),
		waitText(`tbody`, "demo.on_typed"),
	)

	browse(t, tab,
		s.open("/actions"),
		waitText(`tbody`, "demo.hello"),
		until(`[...document.querySelectorAll('#actions-pack option')].some(o => o.value === 'examples')`),
		pick(`#actions-pack`, "examples"),
		until(query("pack")+` === 'examples'`),
		waitGone(`tbody`, "demo.hello"),
	)

	const since = "2020-01-02T03:04"
	browse(t, tab,
		s.open("/audit?kind=rule"),
		waitText(`h1`, "Audit log"),
		until(`document.querySelector('#audit-kind').value === 'rule'`),
		s.open("/audit?actor=admin"),
		until(`document.querySelector('#audit-actor').value === 'admin' && document.querySelector('#audit-kind').value === ''`),
		run(`history.back()`),
		until(`document.querySelector('#audit-kind').value === 'rule' && document.querySelector('#audit-actor').value === ''`),
		pick(`#audit-since`, since),
		until(fmt.Sprintf(`%s === new Date(%q).toISOString().replace('.000Z', 'Z')`, query("since"), since)),
		until(query("kind")+` === 'rule'`),
		chromedp.Reload(),
		until(fmt.Sprintf(`document.querySelector('#audit-since')?.value === %q`, since)),
	)

	// Borders of inputs against the page, in the light theme and the dark one; text (the
	// heading, a label) against it too.
	contrast := `(() => {
	  const rgb = (c) => c.match(/\d+/g).slice(0, 3).map(Number);
	  const lum = (c) => { const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4 }); return 0.2126 * r + 0.7152 * g + 0.0722 * b };
	  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05) };
	  const input = getComputedStyle(document.querySelector('#audit-actor')).borderTopColor;
	  const button = getComputedStyle(document.querySelector('form[role=search] button:not(.primary)')).borderTopColor;
	  const page = getComputedStyle(document.body).backgroundColor;
	  const text = [document.querySelector('#main h1'), document.querySelector('#audit-actor').labels[0]].map((e) => ratio(getComputedStyle(e).color, page));
	  return [Math.min(ratio(input, page), ratio(button, page)), Math.min(...text)];
	})()`
	for _, theme := range []string{"light", "dark"} {
		browse(t, tab, run(fmt.Sprintf(`document.documentElement.dataset.theme = %q`, theme)))
		got := evaluate[[]float64](t, tab, contrast)
		require.GreaterOrEqual(t, got[0], 3.0, "controls' borders in the %s theme", theme)
		require.GreaterOrEqual(t, got[1], 4.5, "text in the %s theme", theme)
	}
	browse(t, tab, run(`delete document.documentElement.dataset.theme`))

	// Confirm: the focus follows the question.
	focused := func(text string) browserStep {
		return until(fmt.Sprintf(`document.activeElement?.innerText?.trim() === %q`, text))
	}
	browse(t, tab,
		s.open("/rules/demo.on_typed"),
		waitText(`dl.props`, "Trigger"),
		clickText(`.page-actions button`, "Delete"),
		waitText(`[role=alert]`, "Delete demo.on_typed?"),
		focused("Yes, delete"),
		clickText(`.page-actions button`, "No"),
		focused("Delete"),
		clickText(`.page-actions button`, "Delete"),
		clickText(`.page-actions button`, "Yes, delete"),
		until(`location.pathname === '/rules'`),
		until(`document.activeElement === document.querySelector('#main h1')`),
		focused("Rules"),
	)
}
