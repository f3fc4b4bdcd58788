// Attune's web UI: logs in, then shows the screen the address names, inside the navigation.
// One page for every screen (the server answers index.html at any path it does not reserve),
// so that a move between screens keeps the session and reloads nothing but what it shows.

import { html, render, useEffect, useRef, useState } from './vendor/htm-preact.js';
import { api, login, logout, onLogout, onTokens } from './lib/api.js';
import { useSubmit } from './lib/errors.js';
import { Link, match, useLocation } from './lib/router.js';
import { ErrorBox, focusScreen, Session, useCan } from './lib/ui.js';
import { nav, routes } from './routes.js';

const themeKey = 'attune.theme';

// applyTheme sets the colours the user picked ('' for the system's).
function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

// Before the first render, the login page's included, so that no page shows the system's
// colours first (a script in index.html would need the CSP to allow it).
applyTheme(savedTheme());

// savedTheme is the theme picked last, '' when none was or the browser keeps no storage.
function savedTheme() {
  try {
    return localStorage.getItem(themeKey) || '';
  } catch {
    return '';
  }
}

function Login({ onDone }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const { submit, error, busy } = useSubmit([], async () => {
    await login(name, password).catch((err) => {
      throw err.status === 401 ? new Error('Wrong login or password.') : err;
    });
    onDone();
  });
  return html`<main class="login">
    <form class="card" onSubmit=${submit} aria-label="Log in">
      <h1><img src="/assets/logo.svg" alt="" width="28" height="28" /> Attune</h1>
      <label for="login">Login</label>
      <input id="login" name="login" autocomplete="username" required value=${name} onInput=${(e) => setName(e.target.value)} />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required value=${password} onInput=${(e) => setPassword(e.target.value)} />
      <${ErrorBox} error=${error} />
      <button class="btn primary" type="submit" disabled=${busy}>Log in</button>
    </form>
  </main>`;
}

function NavLinks({ path, onPick }) {
  const admin = useCan('admin');
  return nav
    .filter((item) => !item.admin || admin)
    .map((item) => {
      const current = item.href === '/' ? path === '/' : path === item.href || path.startsWith(`${item.href}/`);
      return html`<${Link} href=${item.href} class=${current ? 'current' : ''} aria-current=${current ? 'page' : undefined} onClick=${onPick}>${item.label}<//>`;
    });
}

function ThemeToggle() {
  const [theme, setTheme] = useState(savedTheme);
  useEffect(() => {
    applyTheme(theme);
    try {
      localStorage.setItem(themeKey, theme);
    } catch {
      // No storage: the pick lasts as long as the page.
    }
  }, [theme]);
  const next = { '': 'dark', dark: 'light', light: '' }[theme];
  const name = { '': 'System', dark: 'Dark', light: 'Light' }[theme];
  return html`<button class="btn ghost theme" onClick=${() => setTheme(next)} aria-label=${`Colours: ${name.toLowerCase()} (switch to ${next || 'system'})`}>
    <span aria-hidden="true">◐</span><span class="wide-only"> ${name} theme</span></button>`;
}

function Shell({ session }) {
  const { path } = useLocation();
  const [menu, setMenu] = useState(false);
  const first = useRef(true);
  // A new screen takes the focus, as a page load would, so that keyboard and screen reader
  // users start at its heading rather than at the link they left.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    window.scrollTo(0, 0);
    focusScreen();
  }, [path]);
  const found = match(routes, path);
  const Screen = found?.route.component;
  return html`<${Session.Provider} value=${session}>
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <button class="btn ghost menu-button" aria-expanded=${menu} aria-controls="nav" onClick=${() => setMenu(!menu)}>Menu</button>
      <${Link} href="/" class="brand"><img src="/assets/logo.svg" alt="" width="22" height="22" /> Attune<//>
      <span class="spacer"></span>
      <span class="who" title="Logged in">${session.login} <span class="tag">${session.role}</span></span>
      <${ThemeToggle} />
      <button class="btn ghost" onClick=${logout}>Log out</button>
    </header>
    <div class="layout">
      <nav id="nav" class=${menu ? 'open' : ''} aria-label="Screens"><${NavLinks} path=${path} onPick=${() => setMenu(false)} /></nav>
      <main id="main" tabindex="-1">${Screen ? html`<${Screen} ...${found.params} key=${path} />` : html`<section class="page"><h1>Not found</h1><p>No screen at ${path}. <${Link} href="/">Go to the dashboard<//>.</p></section>`}</main>
    </div>
  <//>`;
}

// same answers whether two whoami answers are the same session.
function same(a, b) {
  return a?.login === b?.login && a?.role === b?.role;
}

function App() {
  const [session, setSession] = useState(undefined);
  const [error, setError] = useState(null);
  // Asked even without tokens: a server started with --auth=false lets everyone in as admin.
  // quiet keeps the session on screen when the question fails for another reason than a
  // refused token.
  // Only the latest question's answer counts: two logins in other tabs in quick succession
  // must leave this tab with the second's session, whatever order the answers come in.
  const asked = useRef(0);
  const load = async (quiet = false) => {
    const n = ++asked.current;
    try {
      const who = await api.get('/whoami');
      if (n !== asked.current) return;
      setSession((old) => (same(old, who) ? old : who));
      setError(null);
    } catch (err) {
      if (n !== asked.current || err.code === 'session_changed') return;
      if (err.status === 401) setSession(null);
      else if (!quiet) setError(err);
    }
  };
  useEffect(() => {
    load();
    // A logout also outdates any whoami answer still on its way.
    const offLogout = onLogout(() => {
      asked.current++;
      setSession(null);
    });
    // Another tab logged in, perhaps as someone else: this one is now that session.
    const offTokens = onTokens(() => load(true));
    return () => {
      offLogout();
      offTokens();
    };
  }, []);
  if (error) return html`<main class="login"><div class="card"><${ErrorBox} error=${error} /><button class="btn" onClick=${() => load()}>Try again</button></div></main>`;
  if (session === undefined) return html`<p class="muted" aria-busy="true">Loading…</p>`;
  if (session === null) return html`<${Login} onDone=${() => load()} />`;
  // Keyed by who is logged in: another identity's screens start afresh, with what it may see.
  return html`<${Shell} session=${session} key=${session.login} />`;
}

render(html`<${App} />`, document.getElementById('app'));
