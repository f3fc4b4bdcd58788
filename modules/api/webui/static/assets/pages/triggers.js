// Triggers and the sensors that fire them: each trigger's parameters and output, the webhook
// addresses rules listen on, and each sensor's state with enable/disable for operators.
// Sensors report their state to the database, not on the stream: Reload reads it again.

import { html, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { FilterForm, useQueryFilters } from '../lib/filters.js';
import { listAll } from '../lib/listall.js';
import { Link } from '../lib/router.js';
import { Button, Loading, Page, RefLink, Status, Table, Time, useAsync, useCan } from '../lib/ui.js';
import { webhookURL } from './rules.js';

const enc = encodeURIComponent;

// ParamList shows a parameter schema (name → {type, required, description, ...}) in brief.
function ParamList({ schema }) {
  const entries = Object.entries(schema || {});
  if (!entries.length) return html`<span class="muted">none</span>`;
  return html`<ul class="param-list">${entries.map(([name, p]) => html`<li>
    <code>${name}</code> <span class="muted">${p.type || 'any'}${p.required ? ', required' : ''}${p.secret ? ', secret' : ''}</span>
    ${p.description && html`<div class="muted small">${p.description}</div>`}
  </li>`)}</ul>`;
}

function TriggerRow({ trigger, rules }) {
  const urls = [...new Set(rules.map(webhookURL).filter(Boolean))];
  return html`<div>
    <strong id=${`trigger-${trigger.ref}`}>${trigger.ref}</strong>${trigger.label && html` <span class="muted">${trigger.label}</span>`}
    ${trigger.description && html`<div class="muted small">${trigger.description}</div>`}
    ${rules.length > 0 && html`<div class="small"><${Link} href=${`/rules?q=${enc(trigger.ref)}`}>${rules.length} rule${rules.length > 1 ? 's' : ''}<//></div>`}
    ${urls.length > 0 && html`<ul class="webhooks small">${urls.map((u) => html`<li><code class="webhook-url">POST ${u}</code></li>`)}</ul>`}
  </div>`;
}

function Triggers({ pack }) {
  const state = useAsync(() => Promise.all([listAll('/triggers', { pack }), listAll('/rules')]), [pack]);
  return html`<${Loading} state=${state}>${([triggers, rules]) => html`<${Table} rows=${triggers} empty="No triggers." columns=${[
    { label: 'Trigger', cell: (t) => html`<${TriggerRow} trigger=${t} rules=${rules.filter((r) => r.trigger_ref === t.ref)} />` },
    { label: 'Pack', cell: (t) => html`<${RefLink} kind="packs" value=${t.pack_ref} />` },
    { label: 'Parameters', cell: (t) => html`<${ParamList} schema=${t.parameters} />` },
    { label: 'Output', cell: (t) => html`<${ParamList} schema=${t.output} />` },
  ]} />`}<//>`;
}

function Sensors({ pack }) {
  const operator = useCan('operator');
  const state = useAsync(() => listAll('/sensors', { pack }), [pack]);
  const [changed, setChanged] = useState({});
  const columns = [
    { label: 'Sensor', cell: (s) => html`<strong>${s.ref}</strong>${s.label && html` <span class="muted">${s.label}</span>`}
      ${s.description && html`<div class="muted small">${s.description}</div>`}` },
    { label: 'Fires', cell: (s) => (s.trigger_refs || []).map((t) => html`<div><code>${t}</code></div>`) },
    { label: 'Status', cell: (s) => html`<${Status} status=${s.status || (s.enabled ? 'enabled' : 'disabled')} />
      ${s.started_at && html`<div class="muted small">since <${Time} value=${s.started_at} /></div>`}` },
    { label: 'Where', cell: (s) => (s.holder ? html`${s.holder}${s.pid ? html` <span class="muted">pid ${s.pid}</span>` : ''}` : html`<span class="muted">—</span>`) },
    { label: 'Restarts', class: 'num', cell: (s) => s.restarts ?? 0 },
    { label: 'Last error', cell: (s) => (s.last_error ? html`<details><summary>Show</summary><pre>${s.last_error}</pre></details>` : html`<span class="muted">—</span>`) },
  ];
  if (operator) {
    columns.push({
      label: 'Change',
      cell: (s) => {
        const verb = s.enabled ? 'Disable' : 'Enable';
        return html`<${Button} aria-label=${`${verb} ${s.ref}`} onClick=${async () => {
          const next = await api.post(`/sensors/${enc(s.ref)}/${s.enabled ? 'disable' : 'enable'}`);
          setChanged({ ...changed, [s.ref]: next });
        }}>${verb}<//>`;
      },
    });
  }
  return html`<${Loading} state=${state}>${(sensors) => html`
    <div class="page-actions"><${Button} onClick=${() => { setChanged({}); return state.reload(); }}>Reload sensors<//></div>
    <${Table} rows=${sensors.map((s) => changed[s.ref] || s)} columns=${columns}
      empty="No custom sensors. The core timers and webhooks need none." />`}<//>`;
}

const filterFields = [{ name: 'pack', label: 'Pack', type: 'pack' }];

export function TriggersPage() {
  const filters = useQueryFilters(['pack']);
  const { pack } = filters.values;
  return html`<${Page} title="Triggers and sensors">
    <${FilterForm} filters=${filters} fields=${filterFields} id="triggers" label="Filter the triggers and sensors" />
    <h2>Triggers</h2>
    <${Triggers} pack=${pack} />
    <h2>Sensors</h2>
    <${Sensors} pack=${pack} />
  <//>`;
}
