// The executions, newest first, filtered by what the address holds (status, action, rule,
// who requested, time), paged by the API. Live: every execution event on the stream (and
// every reconnect) rereads the page shown, at most twice a second. The times are kept in the
// address as RFC 3339, so that a shared link means the same times everywhere, and shown in
// local time.

import { html, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link, setQuery, useLocation } from '../lib/router.js';
import { LiveState, useLive } from '../lib/live.js';
import { statuses } from '../lib/status.js';
import { duration, Loading, Page, Pager, RefLink, Status, Table, Time, useAsync } from '../lib/ui.js';

// Requester says who or what caused an execution, linking to it.
export function Requester({ by }) {
  if (!by) return html`<span class="muted">—</span>`;
  switch (by.kind) {
    case 'identity':
      return html`<span>${by.identity}${by.token && html` <span class="tag" title="API token">${by.token}</span>`}${by.rerun_of && html` <span class="muted">(rerun of <${Link} href=${`/executions/${by.rerun_of}`}>#${by.rerun_of}<//>)</span>`}</span>`;
    case 'rule':
      return html`<span>rule <${RefLink} kind="rules" value=${by.rule} />${by.source && html` <span class="muted">(${by.source === 'sensor' ? by.sensor : by.source})</span>`}</span>`;
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
  { label: 'Action', cell: (e) => html`<${RefLink} kind="actions" value=${e.action_ref} />${e.task_name && html` <span class="muted">task ${e.task_name}</span>`}` },
  { label: 'Status', cell: (e) => html`<${Status} status=${e.status} />${e.attempt > 1 && html` <span class="tag">attempt ${e.attempt}</span>`}` },
  { label: 'Requested by', cell: (e) => html`<${Requester} by=${e.requested_by} />` },
  { label: 'Created', cell: (e) => html`<${Time} value=${e.created} />` },
  { label: 'Duration', class: 'num', cell: (e) => html`<${Runtime} exec=${e} />` },
];

// rfc3339 turns a datetime-local input's value (local time) into RFC 3339, as the address
// keeps it; localInput turns it back for the input.
function rfc3339(local) {
  const d = local ? new Date(local) : null;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : '';
}

function localInput(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
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
      <input type="datetime-local" name="since" value=${localInput(query.get('since'))} onChange=${(e) => setQuery({ since: rfc3339(e.target.value), page: '' })} />
    </label>
    <label>Until
      <input type="datetime-local" name="until" value=${localInput(query.get('until'))} onChange=${(e) => setQuery({ until: rfc3339(e.target.value), page: '' })} />
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
    since: rfc3339(query.get('since')) || undefined,
    until: rfc3339(query.get('until')) || undefined,
    page: Number(query.get('page')) || 1,
  };
  const key = JSON.stringify(params);
  const state = useAsync(() => api.get('/executions', params), [key]);
  const live = useLive(state.reload, { params: params.action_ref ? { action_ref: params.action_ref } : {}, wait: 500 });
  return html`<${Page} title="Executions" actions=${html`<${LiveState} state=${live} />`}>
    <${Filters} query=${query} key=${textFilters.map((f) => query.get(f.key)).join('\n')} />
    <${Loading} state=${state}>${(list) => html`
      <${Table} columns=${columns} rows=${list.data} empty="No execution matches." />
      <${Pager} pagination=${list.pagination} onPage=${(p) => setQuery({ page: p })} />`}<//>
  <//>`;
}
