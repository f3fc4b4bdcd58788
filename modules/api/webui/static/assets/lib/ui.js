// The pieces every screen is built of: the session (who is logged in, with what role),
// loading and errors, tables, paging, statuses, times and buttons that act.

import { html, createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from '../vendor/htm-preact.js';
import { Link } from './router.js';

// Session holds whoami's answer: {login, role}.
export const Session = createContext(null);

const ranks = { viewer: 1, operator: 2, admin: 3 };

// useCan answers whether the logged-in identity has at least role; the UI offers only what
// its answer allows (the API refuses the rest anyway).
export function useCan(role) {
  const session = useContext(Session);
  return (ranks[session?.role] || 0) >= ranks[role];
}

// useAsync runs load when deps change and keeps its answer; reload runs it again, keeping
// the last answer on screen meanwhile. Reloads coalesce: one load runs at a time, a reload
// asked for while it runs makes one more run when it ends, and every answer is shown (each is
// newer than the last, the loads running one after the other). An answer for deps that have
// changed since is dropped. reload's promise settles once the load that covers it has ended.
export function useAsync(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const latest = useRef(load);
  latest.current = load;
  const current = useRef(null);
  const reload = useMemo(() => {
    let running = null;
    let again = false;
    const self = () => {
      if (current.current !== self) return Promise.resolve(); // not shown, or deps changed
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        try {
          do {
            again = false;
            setState((s) => (s.loading ? s : { ...s, loading: true }));
            try {
              const data = await latest.current();
              if (current.current === self) setState({ data, error: null, loading: false });
            } catch (error) {
              if (current.current === self) setState((s) => ({ ...s, error, loading: false }));
            }
          } while (again && current.current === self);
        } finally {
          running = null;
        }
      })();
      return running;
    };
    return self;
  }, deps);
  useEffect(() => {
    current.current = reload;
    reload();
    return () => {
      if (current.current === reload) current.current = null;
    };
  }, [reload]);
  return { ...state, reload };
}

// useThrottled calls fn at most once per wait ms, trailing, for rereads that live events
// ask for in bursts.
export function useThrottled(fn, wait = 500) {
  const ref = useRef(fn);
  ref.current = fn;
  const timer = useRef(null);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      ref.current();
    }, wait);
  }, [wait]);
}

export function Page({ title, actions, children }) {
  useEffect(() => {
    document.title = title ? `${title} · Attune` : 'Attune';
  }, [title]);
  return html`<section class="page">
    <header class="page-head"><h1 tabindex="-1">${title}</h1>${actions && html`<div class="page-actions">${actions}</div>`}</header>
    ${children}
  </section>`;
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<div class="error" role="alert">${error.message || String(error)}</div>`;
}

export function Loading({ state, children }) {
  if (state.error && state.data === undefined) return html`<${ErrorBox} error=${state.error} />`;
  if (state.data === undefined) return html`<p class="muted" aria-busy="true">Loading…</p>`;
  return html`${state.error && html`<${ErrorBox} error=${state.error} />`}${children(state.data)}`;
}

// Button runs an async onClick, shows that it runs, and shows its error beside it.
export function Button({ onClick, kind = '', children, disabled, title, ...rest }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const button = useRef(null);
  const click = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onClick(e);
    } catch (err) {
      setError(err);
      // Disabled while it ran, the button lost the focus: it gets it back, to try again.
      setTimeout(() => {
        if (document.activeElement === document.body) button.current?.focus();
      });
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="button-wrap">
    <button ref=${button} class=${`btn ${kind}`} onClick=${click} disabled=${disabled || busy} aria-busy=${busy} title=${title} ...${rest}>${children}</button>
    ${error && html`<span class="error inline" role="alert">${error.message}</span>`}
  </span>`;
}

// focusScreen moves the focus to the screen's heading (or the screen itself): where a new
// screen starts, and where an act that removed the control that had the focus leaves it.
export function focusScreen() {
  const main = document.getElementById('main');
  const to = main?.querySelector('h1[tabindex]') || main;
  to?.focus({ preventScroll: true });
}

// Confirm asks once more, in place, before a destructive act. The question takes the
// button's place and the focus goes to its Yes; No (or Escape) puts the button back, with
// the focus on it; after Yes, the focus goes to the screen's heading.
export function Confirm({ onConfirm, children, kind = 'danger', question = 'Sure?', ...rest }) {
  const [asking, setAsking] = useState(false);
  const trigger = useRef(null);
  const box = useRef(null);
  const back = useRef(false);
  const mounted = useRef(true);
  useEffect(() => () => {
    mounted.current = false;
  }, []);
  useEffect(() => {
    if (asking) box.current?.querySelector('button')?.focus();
    else if (back.current) trigger.current?.focus();
    back.current = false;
  }, [asking]);
  const no = () => {
    back.current = true;
    setAsking(false);
  };
  const yes = async () => {
    await onConfirm();
    if (mounted.current) setAsking(false);
    // Once what the act changed is on screen.
    setTimeout(focusScreen);
  };
  if (!asking) return html`<button ref=${trigger} class=${`btn ${kind}`} onClick=${() => setAsking(true)} ...${rest}>${children}</button>`;
  return html`<span class="confirm" ref=${box} onKeyDown=${(e) => e.key === 'Escape' && no()}>
    <span role="alert">${question}</span>
    <${Button} kind=${kind} onClick=${yes}>Yes, ${children.toLowerCase?.() ?? children}<//>
    <button class="btn" onClick=${no}>No</button></span>`;
}

// Status shows a state as a badge coloured by its meaning. An execution's, inquiry's, rule's
// or sensor's status is coloured by its name (style.css's .status-*); any other state names
// its tone: ok, bad, warn, info or idle. children, when given, are shown in place of status.
export function Status({ status, tone, children }) {
  return html`<span class=${`status ${tone ? `tone-${tone}` : `status-${status}`}`}>${children ?? status}</span>`;
}

// Notice says that something went well (saved, deleted, sent), politely to screen readers.
export function Notice({ children }) {
  if (!children) return null;
  return html`<p class="notice" role="status">${children}</p>`;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

function ago(value) {
  if (!value) return '';
  const s = (new Date(value).getTime() - Date.now()) / 1000;
  const units = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  for (const [unit, size] of units) {
    if (Math.abs(s) >= size || unit === 'second') return relative.format(Math.round(s / size), unit);
  }
  return '';
}

export function Time({ value }) {
  if (!value) return html`<span class="muted">—</span>`;
  const d = new Date(value);
  return html`<time datetime=${value} title=${d.toLocaleString()}>${ago(value)}</time>`;
}

export function duration(from, to) {
  if (!from) return '';
  const ms = (to ? new Date(to) : new Date()) - new Date(from);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

// asText shows a value as text: a string as it is, anything else as JSON on one line.
export function asText(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function Json({ value }) {
  if (value === undefined || value === null) return html`<span class="muted">—</span>`;
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}

// Table shows rows with columns [{label, cell(row)}]; empty says so.
export function Table({ columns, rows, empty = 'Nothing here yet.', rowKey = (r) => r.id ?? r.ref }) {
  if (!rows?.length) return html`<p class="muted empty">${empty}</p>`;
  return html`<div class="table-wrap"><table>
    <thead><tr>${columns.map((c) => html`<th scope="col" class=${c.class}>${c.label}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr key=${rowKey(r)}>${columns.map((c) => html`<td class=${c.class} data-label=${c.label}>${c.cell(r)}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

// Pager moves through a list's pages (the API's pagination envelope).
export function Pager({ pagination, onPage }) {
  if (!pagination || pagination.total_pages <= 1) return null;
  const { page, total_pages: pages, total_items: items } = pagination;
  return html`<nav class="pager" aria-label="Pages">
    <button class="btn" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>Previous</button>
    <span>Page ${page} of ${pages} (${items})</span>
    <button class="btn" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>Next</button>
  </nav>`;
}

export function RefLink({ kind, value }) {
  if (!value) return html`<span class="muted">—</span>`;
  return html`<${Link} href=${`/${kind}/${encodeURIComponent(value)}`}>${value}<//>`;
}

// Field is a labelled input with its hint and error, given the ids ${id}-hint and
// ${id}-error that the input names in aria-describedby (lib/form.js describedBy).
export function Field({ label, error, hint, children, id }) {
  return html`<div class=${`field${error ? ' invalid' : ''}`}>
    <label for=${id}>${label}</label>
    ${children}
    ${hint && html`<small class="hint" id=${`${id}-hint`}>${hint}</small>`}
    ${error && html`<small class="field-error" id=${`${id}-error`} role="alert">${error}</small>`}
  </div>`;
}
