// One action: its settings and parameters, and for operators a form that runs it, built from
// its parameter schema (lib/form.js ParamsForm). The form checks each field before sending;
// what the API refuses (error.field parameters.NAME) is shown at that field too.

import { html } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link, navigate } from '../lib/router.js';
import { FieldLabel, fieldsOfParameters, ParamsForm } from '../lib/form.js';
import { asText, Json, Loading, Page, RefLink, Table, useAsync, useCan } from '../lib/ui.js';

function showValue(p, key) {
  if (!(key in p)) return html`<span class="muted">—</span>`;
  const v = p[key];
  return html`<code>${asText(v)}</code>`;
}

const paramColumns = [
  { label: 'Name', cell: (f) => html`<${FieldLabel} f=${f} />` },
  { label: 'Type', cell: (f) => f.type },
  { label: 'Default', cell: (f) => showValue(f, 'default') },
  { label: 'Allowed', cell: (f) => (f.enum ? f.enum.map((v) => html`<code class="enum">${asText(v)}</code> `) : html`<span class="muted">any</span>`) },
  { label: 'Description', cell: (f) => f.description || '' },
];

function retryText(r) {
  if (!r) return html`<span class="muted">none</span>`;
  const on = (r.on || ['failed', 'timeout']).join(', ');
  const delay = r.delay_seconds ? `, ${r.delay_seconds} s apart${r.backoff === 'exponential' ? ', doubling' : ''}` : '';
  return `up to ${r.max_attempts} attempts on ${on}${delay}`;
}

function selectorText(sel) {
  const pairs = Object.entries(sel || {});
  if (!pairs.length) return html`<span class="muted">any worker</span>`;
  return pairs.map(([k, v]) => html`<span class="tag mono">${k}=${v}</span> `);
}

function Details({ action, fields }) {
  return html`<div class="card">
    <dl class="props">
      <dt>Ref</dt><dd class="mono">${action.ref}</dd>
      <dt>Pack</dt><dd><${RefLink} kind="packs" value=${action.pack_ref} /></dd>
      ${action.description && html`<dt>Description</dt><dd>${action.description}</dd>`}
      <dt>Runner</dt><dd class="mono">${action.runner_type}</dd>
      <dt>Entry point</dt><dd class="mono">${action.entry_point || '—'}</dd>
      <dt>Output</dt><dd>${action.output_format || 'text'}</dd>
      <dt>Timeout</dt><dd>${action.timeout_seconds ? `${action.timeout_seconds} s` : 'none'}</dd>
      <dt>Retry</dt><dd>${retryText(action.retry)}</dd>
      <dt>Worker selector</dt><dd>${selectorText(action.worker_selector)}</dd>
      <dt>Enabled</dt><dd>${action.enabled === false ? 'no' : 'yes'}</dd>
      <dt>Executions</dt><dd><${Link} href=${`/executions?action=${encodeURIComponent(action.ref)}`}>Its executions<//></dd>
    </dl>
  </div>
  <h2>Parameters</h2>
  <${Table} columns=${paramColumns} rows=${fields} rowKey=${(f) => f.name} empty="It takes no parameters." />
  ${action.workflow && html`<h2>Workflow</h2><${Json} value=${action.workflow} />`}`;
}

export function Action({ action_ref: actionRef }) {
  const canRun = useCan('operator');
  const state = useAsync(() => api.get(`/actions/${encodeURIComponent(actionRef)}`), [actionRef]);
  const action = state.data;
  return html`<${Page} title=${action?.label ? `${action.label} (${action.ref})` : actionRef}>
    <${Loading} state=${state}>${(a) => {
      const fields = fieldsOfParameters(a.parameters);
      const run = async (values) => {
        const exec = await api.post('/executions/execute', { action_ref: a.ref, parameters: values });
        navigate(`/executions/${exec.id}`);
      };
      return html`<div class="action-page">
        <div><${Details} action=${a} fields=${fields} /></div>
        ${canRun && html`<section class="card run-form" aria-labelledby="run-title">
          <h2 id="run-title">Run ${a.ref}</h2>
          ${a.enabled === false && html`<p class="muted">This action is disabled: the API refuses to run it.</p>`}
          <${ParamsForm} fields=${fields} submitLabel="Run" onSubmit=${run} idPrefix="run" />
        </section>`}
      </div>`;
    }}<//>
  <//>`;
}
