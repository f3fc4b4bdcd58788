// The executions, newest first, filtered by what the address holds (status, action, rule,
// who requested, time: lib/filters.js), paged by the API. Live: every execution event on the
// stream (and every reconnect) rereads the page shown, at most twice a second; with an action
// filter, only that action's events are sent, so that a busy system's other executions cost
// this page nothing.

import { html } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { FilterForm, useQueryFilters } from '../lib/filters.js';
import { Link, setQuery } from '../lib/router.js';
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
function Runtime({ exec }) {
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

const filterNames = ['status', 'action', 'rule', 'by', 'since', 'until'];
const filterFields = [
  { name: 'status', label: 'Status', type: 'select', options: [['', 'Any'], ...statuses.map((s) => [s, s])] },
  { name: 'action', label: 'Action', placeholder: 'pack.action' },
  { name: 'rule', label: 'Rule', placeholder: 'pack.rule' },
  { name: 'by', label: 'Requested by', placeholder: 'login, token:NAME, rule:REF…' },
  { name: 'since', label: 'Since', type: 'time' },
  { name: 'until', label: 'Until', type: 'time' },
];

export function Executions() {
  const filters = useQueryFilters(filterNames);
  const { values: v, key, page } = filters;
  const params = { status: v.status, action_ref: v.action, rule_ref: v.rule, requested_by: v.by, since: v.since, until: v.until, page };
  const state = useAsync(() => api.get('/executions', params), [key, page]);
  const live = useLive(state.reload, { params: v.action ? { action_ref: v.action } : {}, wait: 500 });
  return html`<${Page} title="Executions" actions=${html`<${LiveState} state=${live} />`}>
    <${FilterForm} filters=${filters} fields=${filterFields} id="executions" label="Filter executions" />
    <${Loading} state=${state}>${(list) => html`
      <${Table} columns=${columns} rows=${list.data} empty=${filters.active ? 'No execution matches.' : 'No executions yet.'} />
      <${Pager} pagination=${list.pagination} onPage=${(p) => setQuery({ page: p })} />`}<//>
  <//>`;
}
