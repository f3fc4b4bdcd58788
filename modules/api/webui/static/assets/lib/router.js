// Routing by the address bar's path, so that every screen has an address to reload, bookmark
// and share.

import { html, useEffect, useState } from '../vendor/htm-preact.js';

const listeners = new Set();

export function navigate(to, { replace = false } = {}) {
  if (to === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', to);
  listeners.forEach((fn) => fn());
}

window.addEventListener('popstate', () => listeners.forEach((fn) => fn()));

// useLocation re-renders its component when the path or query changes.
export function useLocation() {
  const [, tick] = useState(0);
  useEffect(() => {
    const fn = () => tick((n) => n + 1);
    listeners.add(fn);
    return () => listeners.delete(fn);
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

// setQuery replaces the query's keys with values (empty ones removed), for filters kept in
// the address.
export function setQuery(values) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined || v === null || v === '') q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  navigate(location.pathname + (s ? `?${s}` : ''), { replace: true });
}

// decode is decodeURIComponent, or null for what is not a valid escape (/actions/%E0).
function decode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

// match finds the first route whose pattern (/executions/:id) fits path; a parameter that
// does not decode matches nothing, and the screen says not found.
export function match(routes, path) {
  for (const route of routes) {
    const names = [];
    const re = new RegExp(`^${route.path.replace(/:([a-z_]+)/g, (_, n) => (names.push(n), '([^/]+)'))}/?$`);
    const m = path.match(re);
    if (!m) continue;
    const values = m.slice(1).map(decode);
    if (values.includes(null)) return null;
    return { route, params: Object.fromEntries(names.map((n, i) => [n, values[i]])) };
  }
  return null;
}

// Link is an anchor that moves without reloading, unless a modifier asks for a new tab.
export function Link({ href, children, onClick, ...rest }) {
  const click = (e) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} ...${rest} onClick=${click}>${children}</a>`;
}
