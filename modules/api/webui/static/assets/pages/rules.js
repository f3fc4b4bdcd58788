// Rules: the list, with filters and enable/disable for operators, and a rule's page with its
// edit form (pages/ruleform.js). Nothing on the live stream speaks of rules: the screens read
// again after what they change.

import { html, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { FilterForm, useQueryFilters } from '../lib/filters.js';
import { listAll } from '../lib/listall.js';
import { Link, navigate, useLocation } from '../lib/router.js';
import { Button, Confirm, Json, Loading, Page, RefLink, Status, Table, Time, useAsync, useCan } from '../lib/ui.js';
import { RuleForm } from './ruleform.js';

const enc = encodeURIComponent;

// EnabledButton enables or disables the rule and tells onChange the rule as it now is.
function EnabledButton({ rule, onChange }) {
  const verb = rule.enabled ? 'Disable' : 'Enable';
  return html`<${Button} kind=${rule.enabled ? '' : 'primary'} aria-label=${`${verb} ${rule.ref}`}
    onClick=${async () => onChange(await api.post(`/rules/${enc(rule.ref)}/${verb.toLowerCase()}`))}>${verb}<//>`;
}

// webhookURL is where a core.webhook rule listens, or nothing.
export function webhookURL(rule) {
  const url = rule.trigger_ref === 'core.webhook' && rule.trigger_params?.url;
  return url ? `${location.origin}/api/v1/webhooks/${enc(url)}` : '';
}

const filterFields = [
  { name: 'q', label: 'Search', type: 'search', placeholder: 'ref, trigger, action' },
  { name: 'pack', label: 'Pack', type: 'pack' },
  { name: 'enabled', label: 'State', type: 'select', options: [['', 'Enabled or not'], ['true', 'Enabled'], ['false', 'Disabled']] },
];

export function Rules() {
  const operator = useCan('operator');
  const filters = useQueryFilters(['q', 'pack', 'enabled']);
  const { q: search, pack, enabled } = filters.values;
  const state = useAsync(() => listAll('/rules', { pack }), [pack]);
  const [changed, setChanged] = useState({});
  const rows = (state.data || [])
    .map((r) => changed[r.ref] || r)
    .filter((r) => !enabled || String(r.enabled) === enabled)
    .filter((r) => !search || [r.ref, r.label, r.trigger_ref, r.action_ref].some((s) => s?.toLowerCase().includes(search.toLowerCase())));
  const columns = [
    { label: 'Rule', cell: (r) => html`<${RefLink} kind="rules" value=${r.ref} />${r.label && html`<div class="muted small">${r.label}</div>`}` },
    { label: 'Trigger', cell: (r) => html`<code>${r.trigger_ref}</code>` },
    { label: 'Action', cell: (r) => html`<${RefLink} kind="actions" value=${r.action_ref} />` },
    { label: 'Pack', cell: (r) => html`<${RefLink} kind="packs" value=${r.pack_ref} />` },
    { label: 'State', cell: (r) => html`<${Status} status=${r.enabled ? 'enabled' : 'disabled'} />` },
  ];
  if (operator) {
    columns.push({ label: 'Change', cell: (r) => html`<${EnabledButton} rule=${r} onChange=${(n) => setChanged({ ...changed, [n.ref]: n })} />` });
  }
  return html`<${Page} title="Rules" actions=${operator && html`<${Link} class="btn primary" href="/rules/new">New rule<//>`}>
    <${FilterForm} filters=${filters} fields=${filterFields} id="rules" label="Filter the rules" submit="Search" />
    <${Loading} state=${state}>${() => html`<${Table} columns=${columns} rows=${rows} empty="No rule matches." />`}<//>
  <//>`;
}

function RuleDetails({ rule }) {
  const url = webhookURL(rule);
  return html`<dl class="props card">
    <dt>Label</dt><dd>${rule.label || html`<span class="muted">—</span>`}</dd>
    <dt>Description</dt><dd>${rule.description || html`<span class="muted">—</span>`}</dd>
    <dt>Pack</dt><dd><${RefLink} kind="packs" value=${rule.pack_ref} /></dd>
    <dt>Trigger</dt><dd><code>${rule.trigger_ref}</code></dd>
    ${url && html`<dt>Webhook</dt><dd><code class="webhook-url">POST ${url}</code></dd>`}
    <dt>Action</dt><dd><${RefLink} kind="actions" value=${rule.action_ref} /></dd>
    <dt>State</dt><dd><${Status} status=${rule.enabled ? 'enabled' : 'disabled'} /></dd>
    <dt>Executions</dt><dd><${Link} href=${`/executions?rule=${enc(rule.ref)}`}>Those it caused<//></dd>
    <dt>Updated</dt><dd><${Time} value=${rule.updated} /></dd>
  </dl>`;
}

export function Rule({ rule: ruleRef }) {
  const operator = useCan('operator');
  const state = useAsync(() => api.get(`/rules/${enc(ruleRef)}`), [ruleRef]);
  const [current, setCurrent] = useState(null);
  const rule = current && current.ref === ruleRef ? current : state.data;
  const actions = operator && rule && html`
    <${EnabledButton} rule=${rule} onChange=${setCurrent} />
    <${Confirm} question=${`Delete ${rule.ref}?`} onConfirm=${async () => {
      await api.del(`/rules/${enc(rule.ref)}`);
      navigate('/rules');
    }}>Delete<//>`;
  return html`<${Page} title=${ruleRef} actions=${actions}>
    <p><${Link} href="/rules">All rules<//></p>
    <${Loading} state=${state}>${() => html`
      <${RuleDetails} rule=${rule} />
      ${operator
        ? html`<h2>Edit</h2><${RuleForm} rule=${rule} onSaved=${setCurrent} />`
        : html`<div class="grid2">
            <section><h2>Trigger parameters</h2><${Json} value=${rule.trigger_params} /></section>
            <section><h2>Conditions</h2><${Json} value=${rule.conditions} /></section>
            <section><h2>Action parameters</h2><${Json} value=${rule.action_params} /></section>
          </div>`}`}<//>
  <//>`;
}

export function NewRule() {
  const operator = useCan('operator');
  const { query } = useLocation();
  const start = { ref: query.get('pack') ? `${query.get('pack')}.` : '', trigger_ref: 'core.webhook', action_ref: 'core.echo', enabled: true };
  return html`<${Page} title="New rule">
    <p><${Link} href="/rules">All rules<//></p>
    ${operator
      ? html`<${RuleForm} rule=${start} create onSaved=${(r) => navigate(`/rules/${enc(r.ref)}`)} />`
      : html`<p class="muted">Creating a rule takes the operator role.</p>`}
  <//>`;
}
