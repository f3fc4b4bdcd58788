// The executions, newest first, filtered by what the address holds (status, action, rule,
// who requested, time), paged by the API. Live: every execution event on the stream (and
// every reconnect) rereads the page shown, at most twice a second.

import { html, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link, setQuery, useLocation } from '../lib/router.js';
import { useStream } from '../lib/stream.js';
import { duration, Loading, Page, Pager, Status, Table, Time, useAsync, useThrottled } from '../lib/ui.js';

export const statuses = ['requested', 'scheduling', 'scheduled', 'running', 'pausing', 'paused', 'canceling', 'completed', 'failed', 'cancelled', 'timeout', 'abandoned'];

const finalStatuses = new Set(['completed', 'failed', 'cancelled', 'timeout', 'abandoned']);

export function ended(status) {
  return finalStatuses.has(status);
}

// rank orders statuses as an execution moves through them; a workflow moves back and forth
// between running, pausing and paused, so those share a rank.
function rank(status) {
  if (ended(status)) return 5;
  return { requested: 0, scheduling: 1, scheduled: 2, running: 3, pausing: 3, paused: 3, canceling: 4 }[status] ?? 0;
}

// later answers whichever of two statuses is the further on, preferring next on a tie, so
// that a late answer or event never moves an execution's shown status backwards.
export function later(shown, next) {
  if (!shown) return next;
  if (!next) return shown;
  return rank(next) >= rank(shown) ? next : shown;
}

// Requester says who or what caused an execution, linking to it.
export function Requester({ by }) {
  if (!by) return html`<span class="muted">—</span>`;
  switch (by.kind) {
    case 'identity':
      return html`<span>${by.identity}${by.token && html` <span class="tag" title="API token">${by.token}</span>`}${by.rerun_of && html` <span class="muted">(rerun of <${Link} href=${`/executions/${by.rerun_of}`}>#${by.rerun_of}<//>)</span>`}</span>`;
    case 'rule':
      return html`<span>rule <${Link} href=${`/rules/${encodeURIComponent(by.rule)}`}>${by.rule}<//>${by.source && html` <span class="muted">(${by.source === 'sensor' ? by.sensor : by.source})</span>`}</span>`;
    case 'workflow':
      return html`<span>workflow <${Link} href=${`/workflows/${by.workflow}`}>#${by.workflow}<//>${by.identity && html` <span class="muted">(${by.identity})</span>`}</span>`;
    default:
      return html`<span class="muted">${by.kind}</span>`;
  }
}

// Runtime is how long an execution ran, or runs so far.
export function Runtime({ exec }) {
  if (!exec.started_at) return html`<span class="muted">—</span>`;
  return duration(exec.started_at, exec.finished_at);
}

const columns = [
  { label: 'ID', class: 'num', cell: (e) => html`<${Link} href=${`/executions/${e.id}`}>#${e.id}<//>` },
  { label: 'Action', cell: (e) => html`<${Link} href=${`/actions/${encodeURIComponent(e.action_ref)}`}>${e.action_ref}<//>${e.task_name && html` <span class="muted">task ${e.task_name}</span>`}` },
  { label: 'Status', cell: (e) => html`<${Status} status=${e.status} />${e.attempt > 1 && html` <span class="tag">attempt ${e.attempt}</span>`}` },
  { label: 'Requested by', cell: (e) => html`<${Requester} by=${e.requested_by} />` },
  { label: 'Created', cell: (e) => html`<${Time} value=${e.created} />` },
  { label: 'Duration', class: 'num', cell: (e) => html`<${Runtime} exec=${e} />` },
];

// The time filters are kept in the address as the inputs hold them (local time), and sent as
// RFC 3339.
function rfc3339(local) {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

const textFilters = [
  { key: 'action', label: 'Action', placeholder: 'pack.action' },
  { key: 'rule', label: 'Rule', placeholder: 'pack.rule' },
  { key: 'by', label: 'Requested by', placeholder: 'login, token:NAME, rule:REF…' },
];

function Filters({ query }) {
  const [texts, setTexts] = useState(() => Object.fromEntries(textFilters.map((f) => [f.key, query.get(f.key) || ''])));
  const submit = (e) => {
    e.preventDefault();
    setQuery({ ...Object.fromEntries(Object.entries(texts).map(([k, v]) => [k, v.trim()])), page: '' });
  };
  const clear = () => {
    setTexts(Object.fromEntries(textFilters.map((f) => [f.key, ''])));
    setQuery({ status: '', action: '', rule: '', by: '', since: '', until: '', page: '' });
  };
  return html`<form class="filters" role="search" aria-label="Filter executions" onSubmit=${submit}>
    <label>Status
      <select name="status" value=${query.get('status') || ''} onChange=${(e) => setQuery({ status: e.target.value, page: '' })}>
        <option value="">Any</option>
        ${statuses.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </label>
    ${textFilters.map((f) => html`<label>${f.label}
      <input name=${f.key} placeholder=${f.placeholder} value=${texts[f.key]} onInput=${(e) => setTexts({ ...texts, [f.key]: e.target.value })} />
    </label>`)}
    <label>Since
      <input type="datetime-local" name="since" value=${query.get('since') || ''} onChange=${(e) => setQuery({ since: e.target.value, page: '' })} />
    </label>
    <label>Until
      <input type="datetime-local" name="until" value=${query.get('until') || ''} onChange=${(e) => setQuery({ until: e.target.value, page: '' })} />
    </label>
    <button class="btn" type="submit">Filter</button>
    <button class="btn ghost" type="button" onClick=${clear}>Clear</button>
  </form>`;
}

export function Executions() {
  const { query } = useLocation();
  const params = {
    status: query.get('status') || undefined,
    action_ref: query.get('action') || undefined,
    rule_ref: query.get('rule') || undefined,
    requested_by: query.get('by') || undefined,
    since: rfc3339(query.get('since')),
    until: rfc3339(query.get('until')),
    page: Number(query.get('page')) || 1,
  };
  const key = JSON.stringify(params);
  const state = useAsync(() => api.get('/executions', params), [key]);
  const reread = useThrottled(state.reload, 500);
  const [live, setLive] = useState('connecting');
  useStream(params.action_ref ? { action_ref: params.action_ref } : {}, {
    onEvent: (name) => name === 'execution' && reread(),
    onOpen: reread,
    onState: setLive,
  });
  return html`<${Page} title="Executions" actions=${html`<span class=${`live live-${live}`} role="status">${live === 'live' ? 'Live' : live === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}</span>`}>
    <${Filters} query=${query} key=${textFilters.map((f) => query.get(f.key)).join('\n')} />
    <${Loading} state=${state}>${(list) => html`
      <${Table} columns=${columns} rows=${list.data} empty="No execution matches." />
      <${Pager} pagination=${list.pagination} onPage=${(p) => setQuery({ page: p })} />`}<//>
  <//>`;
}
