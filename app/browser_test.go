package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/attune-go/attune/store/storetest"
)

// The web UI's tests drive Debian's headless Chromium against a real `attune serve`. Without
// Chromium they skip, but under CI=true, where .ci/run installs it, they fail instead.

// browserTimeout bounds each browserStep a test takes in the browser, waits included.
const browserTimeout = 60 * time.Second

// chromiumPath finds the browser: ATTUNE_TEST_CHROMIUM, else Debian's chromium on the PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ATTUNE_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed; .ci/run installs Debian's chromium package")
	}
	t.Skip("Chromium is not installed (apt-get install chromium, or set ATTUNE_TEST_CHROMIUM)")
	return ""
}

// newBrowser starts a headless Chromium of its own (its own profile, so its own logins) and
// returns a tab's context. The flags keep it from reaching for Google's hosts, which this
// machine's network refuses.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	startChromium(t, ctx)
	// A script error the page did not handle (an uncaught exception, a rejected promise
	// nobody awaited) fails the test, whatever the screen then showed.
	var mu sync.Mutex
	var thrown []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				thrown = append(thrown, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m.Text))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(thrown) > 0 {
			t.Errorf("the page threw:\n%s", strings.Join(thrown, "\n"))
		}
	})
	return ctx
}

// uiSlots bounds the browser tests that run at once. Each runs a server and a Chromium of its
// own; all of them at once, beside the rest of make test's -race run on two cores, starve one
// another until a step overruns browserTimeout.
var uiSlots = make(chan struct{}, 3)

// takeUISlot waits for one of uiSlots and gives it back when the test is over, after its
// server and browser are gone (cleanups run last-in first-out). A test takes one slot only:
// it starts one server.
func takeUISlot(t *testing.T) {
	t.Helper()
	uiSlots <- struct{}{}
	t.Cleanup(func() { <-uiSlots })
}

// startChromium makes the first step in a tab, which starts the browser for as long as ctx
// lives (so no timeout on ctx itself), and fails the test if it is not up within a minute.
func startChromium(t *testing.T, ctx context.Context) {
	t.Helper()
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		require.NoError(t, err, "start Chromium")
	case <-time.After(browserTimeout):
		t.Fatal("Chromium did not start within a minute")
	}
}

// uiServer is an `attune serve` with every role in one process, the demo and examples packs
// registered, for the browser to drive.
type uiServer struct {
	*process
	base  string
	dbURL string
}

func startUIServer(t *testing.T, args ...string) *uiServer {
	t.Helper()
	takeUISlot(t)
	dbURL := storetest.NewDatabase(t)
	p := startServe(t, append([]string{"--database-url=" + dbURL}, args...)...)
	for _, pack := range []string{"demo", "examples"} {
		dir, err := filepath.Abs(filepath.Join("..", "testdata", "packs", pack))
		require.NoError(t, err)
		body, err := json.Marshal(map[string]string{"path": dir})
		require.NoError(t, err)
		resp := p.request(t, http.MethodPost, "/api/v1/packs/register", strings.NewReader(string(body)))
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "register pack %s", pack)
	}
	return &uiServer{process: p, base: "http://" + p.addr, dbURL: dbURL}
}

// adminUI starts a server and a browser logged in there as the first admin.
func adminUI(t *testing.T, args ...string) (*uiServer, context.Context) {
	t.Helper()
	s := startUIServer(t, args...)
	tab := newBrowser(t)
	s.logIn(t, tab, "admin", testAdminPassword)
	return s, tab
}

// apiData sends body (nil: none) as JSON to the API path as the first admin, requires the
// status want and decodes the answer's data as T.
func apiData[T any](t *testing.T, s *uiServer, method, path string, body any, want int) T {
	t.Helper()
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		reader = bytes.NewReader(b)
	}
	resp := s.request(t, method, path, reader)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	var out struct {
		Data T `json:"data"`
	}
	require.NoError(t, json.Unmarshal(raw, &out), "%s %s: %s", method, path, raw)
	return out.Data
}

// apiCall is apiData for an answer that is one object.
func (s *uiServer) apiCall(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	return apiData[map[string]any](t, s, method, path, body, want)
}

// execute runs action with params through the API and answers the execution's id.
func (s *uiServer) execute(t *testing.T, action string, params map[string]any) int64 {
	t.Helper()
	e := s.apiCall(t, http.MethodPost, "/api/v1/executions/execute",
		map[string]any{"action_ref": action, "parameters": params}, http.StatusCreated)
	return int64(e["id"].(float64))
}

// registerUIPack registers testdata/ui/uiexec, the actions the UI's tests need.
func (s *uiServer) registerUIPack(t *testing.T) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "ui", "uiexec"))
	require.NoError(t, err)
	s.apiCall(t, http.MethodPost, "/api/v1/packs/register", map[string]string{"path": dir}, http.StatusOK)
}

// browse runs actions in the tab within browserTimeout; on failure it says where the page was
// and what it showed, and keeps a screenshot in the test's output directory.
func browse(t *testing.T, tab context.Context, steps ...browserStep) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	defer cancel()
	err := chromedp.Do(ctx, steps...)
	if err == nil {
		return
	}
	dump, cancelDump := context.WithTimeout(tab, 5*time.Second)
	defer cancelDump()
	url, _ := chromedp.Run(dump, chromedp.Location())
	text, _ := chromedp.Run(dump, chromedp.Evaluate[string](`document.body.innerText`))
	t.Fatalf("browser: %v\nat %s the page showed:\n%s", err, url, text)
}

// browserStep is one thing a test does in the browser.
type browserStep = chromedp.Action[chromedp.Void]

// run evaluates JavaScript in the page for its effect.
func run(js string) browserStep {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](js)(ctx, t)
		return err
	})
}

// evaluate evaluates JavaScript in the page for its value.
func evaluate[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, "evaluate %s", js)
	return v
}

// until waits until the JavaScript expression is true; while it throws (an element not
// rendered yet), it counts as false.
func until(js string) browserStep {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		guarded := fmt.Sprintf(`(() => { try { return !!(%s) } catch { return false } })()`, js)
		_, err := chromedp.Poll[bool](guarded, chromedp.WithPollingTimeout(browserTimeout))(ctx, t)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", js, err)
		}
		return nil
	})
}

// logIn opens the UI at path and logs in there.
func (s *uiServer) logIn(t *testing.T, tab context.Context, login, password string) {
	t.Helper()
	browse(t, tab,
		chromedp.Navigate(s.base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.SendKeys(chromedp.CSS(`#login`), login),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`form[aria-label="Log in"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nav`)),
	)
}

// open goes to path in the UI without reloading the page, as a click on a link would.
func (s *uiServer) open(path string) browserStep {
	return run(fmt.Sprintf(`history.pushState(null, '', %q); dispatchEvent(new PopStateEvent('popstate'))`, path))
}

// fill types text into the input matching the CSS selector, in place of what it held.
func fill(selector, text string) browserStep {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(selector)),
		run(fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.focus(); e.select?.(); e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})) })()`, selector)),
		chromedp.SendKeys(chromedp.CSS(selector), text),
	)
}

// waitText waits until an element matching the CSS selector shows text.
func waitText(selector, text string) browserStep {
	return until(fmt.Sprintf(`[...document.querySelectorAll(%q)].some(e => e.innerText.includes(%q))`, selector, text))
}

// waitGone waits until no element matching the CSS selector shows text.
func waitGone(selector, text string) browserStep {
	return until(fmt.Sprintf(`![...document.querySelectorAll(%q)].some(e => e.innerText.includes(%q))`, selector, text))
}

// clickText clicks the first element matching the CSS selector that shows text.
func clickText(selector, text string) browserStep {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := waitText(selector, text)(ctx, t); err != nil {
			return err
		}
		ok, err := chromedp.Evaluate[bool](fmt.Sprintf(
			`(() => { const e = [...document.querySelectorAll(%q)].find(e => e.innerText.includes(%q)); if (!e) return false; e.click(); return true })()`,
			selector, text))(ctx, t)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no %s showing %q to click", selector, text)
		}
		return nil
	})
}

// screen checks the screen the tab shows as a keyboard or screen reader user meets it, and
// keeps it as docs/ui/NAME.png when ATTUNE_UI_SCREENSHOTS names a directory (make
// ui-screenshots). A name ending -phone looks at a phone's width, where nothing may stick
// out sideways; one ending -dark in the dark colour scheme.
func screen(t *testing.T, tab context.Context, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserTimeout)
	defer cancel()
	width, height := int64(1280), int64(860)
	viewport := chromedp.EmulateViewport(width, height)
	if strings.HasSuffix(name, "-phone") {
		width, height = 390, 844
		viewport = chromedp.EmulateViewport(width, height, chromedp.EmulateMobile)
	}
	scheme := "light"
	if strings.HasSuffix(name, "-dark") {
		scheme = "dark"
	}
	require.NoError(t, chromedp.Do(ctx, viewport, colourScheme(scheme)))
	defer func() {
		reset, cancel := context.WithTimeout(tab, browserTimeout)
		defer cancel()
		require.NoError(t, chromedp.Do(reset, chromedp.ResetViewport(), colourScheme("")))
	}()
	// Two frames: the layout at the new size has been done by then.
	settled, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.True(t, settled)
	problems, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](accessibilityProblems))
	require.NoError(t, err)
	require.Empty(t, problems, "screen %s", name)
	if width >= 500 && scheme == "light" {
		keyboardReachesEverything(t, ctx, name)
	}
	if width < 500 {
		wide, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - innerWidth`))
		require.NoError(t, err)
		require.LessOrEqual(t, wide, 0, "screen %s sticks out %d px sideways at a phone's width", name, wide)
	}
	dir := os.Getenv("ATTUNE_UI_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644))
}

// keyboardReachesEverything presses Tab through the screen from its start and fails the test
// if a control a mouse could use (a link, a button, an input, a focusable graph node) is
// never reached; the focus is put back where it was.
func keyboardReachesEverything(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	count, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(() => {
  window.__returnFocus = document.activeElement;
  window.__reached = new Set();
  window.__onFocus = (e) => window.__reached.add(e.target);
  document.addEventListener('focusin', window.__onFocus);
  // Tab goes on from the last place focused: a stop of our own at the very start of the page
  // makes it begin there.
  const start = document.createElement('span');
  start.tabIndex = -1;
  start.id = '__tab-start';
  document.body.prepend(start);
  start.focus();
  window.__missed = () => [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])')]
    .filter((e) => e.getClientRects().length > 0 && !e.disabled && getComputedStyle(e).visibility !== 'hidden')
    // Tab stops once in a group of radio buttons, at the checked one.
    .filter((e) => !(e.type === 'radio' && !e.checked && document.querySelector('input[type=radio][name="' + e.name + '"]:checked')))
    .filter((e) => !window.__reached.has(e))
    .map((e) => e.outerHTML.slice(0, 120));
  return document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]').length;
})()`))
	require.NoError(t, err)
	var missed []string
	for pressed := 0; pressed < 2*count+20; pressed += 10 {
		for range 10 {
			require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)))
		}
		if missed, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__missed()`)); err != nil || len(missed) == 0 {
			break
		}
	}
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, run(`document.removeEventListener('focusin', window.__onFocus);
  document.getElementById('__tab-start')?.remove();
  window.__returnFocus?.focus?.()`)))
	require.Empty(t, missed, "screen %s: Tab never reaches these", name)
}

// colourScheme makes the page see the system's colour scheme as light or dark ("" is the
// browser's own).
func colourScheme(scheme string) browserStep {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		var features []*emulation.MediaFeature
		if scheme != "" {
			features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
		return err
	})
}

// accessibilityProblems lists what keeps a keyboard or screen reader user from a screen:
// a control without a label, a button or link without a name, an image without alt text,
// an id used twice (labels and aria references then point at the wrong element).
const accessibilityProblems = `(() => {
  const out = [];
  const visible = (e) => e.getClientRects().length > 0;
  const describe = (e) => e.outerHTML.slice(0, 140);
  const named = (e) => (e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || e.title ||
    e.innerText || e.value || (e.querySelector('img[alt]:not([alt=""]), svg title') ? 'x' : '')).trim() !== '';
  for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (visible(e) && !(e.labels?.length || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby'))) out.push('no label: ' + describe(e));
  }
  for (const e of document.querySelectorAll('button, a[href], [role=button]')) {
    if (visible(e) && !named(e)) out.push('no name: ' + describe(e));
  }
  for (const e of document.querySelectorAll('img:not([alt])')) out.push('no alt: ' + describe(e));
  const seen = new Set();
  for (const e of document.querySelectorAll('[id]')) {
    if (seen.has(e.id)) out.push('id used twice: ' + e.id);
    seen.add(e.id);
  }
  return out;
})()`

// The login page, a wrong password refused, the dashboard after logging in, a reload still
// logged in, and logging out back to the login page.
func TestUILogin(t *testing.T) {
	t.Parallel()
	s := startUIServer(t)
	tab := newBrowser(t)
	browse(t, tab,
		chromedp.Navigate(s.base+"/executions"),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.SendKeys(chromedp.CSS(`#login`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "not the password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		waitText(`[role=alert]`, "Wrong login or password"),
	)
	screen(t, tab, "login")
	browse(t, tab,
		fill(`#password`, testAdminPassword),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#nav`)),
		waitText(`.who`, "admin"),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#nav`)),
		waitText(`#nav`, "Audit log"),
		clickText(`button`, "Log out"),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
	)
}

// The server answers the UI's page at any path it does not route, its files under /assets/,
// and keeps its own 404s (JSON) under /api/ and /auth/.
func TestUIServedBesideTheAPI(t *testing.T) {
	t.Parallel()
	s := startUIServer(t)
	for path, want := range map[string]string{"/": "text/html", "/executions/42": "text/html", "/assets/app.js": "text/javascript"} {
		resp, err := http.Get(s.base + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, resp.Header.Get("Content-Type"), want, path)
		require.NotEmpty(t, resp.Header.Get("Content-Security-Policy"), path)
	}
	for _, path := range []string{"/api/v1/nothing", "/auth/nothing", "/assets/nothing.js"} {
		resp, err := http.Get(s.base + path)
		require.NoError(t, err)
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), path)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		require.Contains(t, body, "error", path)
	}
}

// A server started with --auth=false lets the UI in as an admin without a login page.
func TestUIWithoutAuth(t *testing.T) {
	t.Parallel()
	takeUISlot(t)
	dbURL := storetest.NewDatabase(t)
	p := startServe(t, "--database-url="+dbURL, "--auth=false")
	tab := newBrowser(t)
	browse(t, tab,
		chromedp.Navigate("http://"+p.addr+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#nav`)),
		waitText(`#nav`, "Audit log"),
	)
}
