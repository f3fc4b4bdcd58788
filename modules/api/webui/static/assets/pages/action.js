// One action: its settings and parameters, and for operators a form that runs it, built from
// its parameter schema. The form checks each field before sending; what the API refuses
// (400, naming the parameter) is shown at that field too.

import { html, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link, navigate } from '../lib/router.js';
import { collect, fieldsOfParameters, initialValues, SchemaForm } from '../lib/form.js';
import { ErrorBox, Json, Loading, Page, Table, useAsync, useCan } from '../lib/ui.js';

export const masked = '********';

// fieldOfError names the field a 400's message is about: the API says `parameter "name": …`
// or `parameters.name: …`.
function fieldOfError(err, fields) {
  if (err?.status !== 400) return null;
  const m = err.message.match(/parameter "([^"]+)"/) || err.message.match(/parameters\.([\w.-]+)/);
  return m && fields.some((f) => f.name === m[1]) ? m[1] : null;
}

// ParamsForm edits parameters and hands the checked values to onSubmit. With keepMasked, a
// secret field still holding ******** is sent as it is (the API then keeps the value it
// hides), and an emptied field the original had is sent as null (its default applies).
export function ParamsForm({ fields, given, submitLabel, onSubmit, keepMasked = false, idPrefix = 'p' }) {
  const [inputs, setInputs] = useState(() => initialValues(fields, given || {}));
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const { values, errors: found } = collect(fields, inputs);
    if (keepMasked) {
      for (const f of fields) {
        if (f.secret && inputs[f.name] === masked) {
          delete found[f.name];
          values[f.name] = masked;
        } else if (!(f.name in values) && !found[f.name] && given && f.name in given) {
          values[f.name] = null;
        }
      }
    }
    setErrors(found);
    setError(null);
    if (Object.keys(found).length) return;
    setBusy(true);
    try {
      await onSubmit(values);
    } catch (err) {
      const name = fieldOfError(err, fields);
      if (name) setErrors({ [name]: err.message });
      else setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="params-form" onSubmit=${submit} noValidate>
    <${SchemaForm} fields=${fields} inputs=${inputs} errors=${errors} onInput=${setInputs} idPrefix=${idPrefix} />
    <${ErrorBox} error=${error} />
    <button class="btn primary" type="submit" disabled=${busy} aria-busy=${busy}>${submitLabel}</button>
  </form>`;
}

function showValue(p, key) {
  if (!(key in p)) return html`<span class="muted">—</span>`;
  const v = p[key];
  return html`<code>${typeof v === 'string' ? v : JSON.stringify(v)}</code>`;
}

const paramColumns = [
  { label: 'Name', cell: (f) => html`<code>${f.name}</code>${f.required && html`<span class="req" title="required"> *</span>`}${f.secret && html` <span class="tag">secret</span>`}` },
  { label: 'Type', cell: (f) => f.type },
  { label: 'Default', cell: (f) => showValue(f, 'default') },
  { label: 'Allowed', cell: (f) => (f.enum ? f.enum.map((v) => html`<code class="enum">${typeof v === 'string' ? v : JSON.stringify(v)}</code> `) : html`<span class="muted">any</span>`) },
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
      <dt>Pack</dt><dd><${Link} href=${`/packs/${encodeURIComponent(action.pack_ref)}`}>${action.pack_ref}<//></dd>
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
