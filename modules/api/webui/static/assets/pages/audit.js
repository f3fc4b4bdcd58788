// The audit log, for admins: who changed what, newest first, filtered by actor, kind, object
// and time (all kept in the address, so that a filtered view can be shared), each entry's
// detail expandable, its object linked to its screen where there is one.

import { html, useContext } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { AdminsOnly } from '../lib/errors.js';
import { FilterForm, useQueryFilters } from '../lib/filters.js';
import { Link, setQuery } from '../lib/router.js';
import { Json, Loading, Page, Pager, Session, Table, Time, useAsync, useCan } from '../lib/ui.js';

// kinds are the audit's nouns and kinds (docs/operations.md), offered as the kind filter's
// suggestions; the filter takes any noun or noun.verb.
const kinds = [
  'execution', 'execution.request', 'execution.rerun', 'execution.cancel', 'execution.pause', 'execution.resume',
  'pack', 'pack.register', 'pack.delete', 'action', 'trigger', 'rule', 'rule.create', 'rule.update', 'rule.delete',
  'rule.enable', 'rule.disable', 'policy', 'sensor', 'key', 'key.set', 'key.delete', 'key.rotate',
  'identity', 'identity.create', 'identity.update', 'identity.delete', 'token', 'token.create', 'token.revoke', 'webhook_secret',
];

const filterNames = ['actor', 'kind', 'object', 'since', 'until'];
const filterFields = [
  { name: 'actor', label: 'Actor', placeholder: 'a login, system, cli', size: 12 },
  { name: 'kind', label: 'Kind', placeholder: 'rule or rule.update', size: 14, suggestions: kinds },
  { name: 'object', label: 'Object', placeholder: 'execution:42', size: 16 },
  { name: 'since', label: 'Since', type: 'time' },
  { name: 'until', label: 'Until', type: 'time' },
];
const enc = encodeURIComponent;

// objectHref is the screen of an entry's object, or null where there is none.
function objectHref({ object_kind: kind, object }) {
  switch (kind) {
    case 'execution':
      return `/executions/${enc(object)}`;
    case 'rule':
    case 'action':
    case 'pack':
      return `/${kind}s/${enc(object)}`;
    case 'key': {
      // scope.name, where a pack's scope has a dot of its own; user(ID).name is someone's own.
      const dot = object.lastIndexOf('.');
      if (dot < 0 || object.startsWith('user(')) return null;
      return `/keys?scope=${enc(object.slice(0, dot))}&prefix=${enc(object.slice(dot + 1))}`;
    }
    case 'identity':
      return '/identities';
    case 'token':
      return '/tokens?all=true';
    case 'policy':
      return '/policies';
    default:
      return null;
  }
}

function ObjectCell({ entry }) {
  if (!entry.object_kind) return html`<span class="muted">—</span>`;
  const href = objectHref(entry);
  const label = `${entry.object_kind} ${entry.object}`;
  const history = `/audit?object=${enc(`${entry.object_kind}:${entry.object}`)}`;
  return html`${href ? html`<${Link} href=${href}>${label}<//>` : label}
    <${Link} class="muted audit-history" href=${history} title=${`Every entry about ${label}`}>history<//>`;
}

function Detail({ value }) {
  if (value === null || value === undefined || (typeof value === 'object' && !Object.keys(value).length)) return html`<span class="muted">—</span>`;
  return html`<details class="audit-detail"><summary>Details</summary><${Json} value=${value} /></details>`;
}

const columns = [
  { label: 'When', cell: (e) => html`<${Time} value=${e.created} />` },
  { label: 'Actor', cell: (e) => html`<${Link} href=${`/audit?actor=${enc(e.actor)}`}>${e.actor}<//>${e.token && html` <span class="tag" title="API token">token ${e.token}</span>`}` },
  { label: 'Kind', cell: (e) => html`<${Link} class="mono" href=${`/audit?kind=${enc(e.kind)}`}>${e.kind}<//>` },
  { label: 'Object', cell: (e) => html`<${ObjectCell} entry=${e} />` },
  { label: 'Detail', cell: (e) => html`<${Detail} value=${e.detail} />` },
];

export function Audit() {
  const session = useContext(Session);
  const admin = useCan('admin');
  const filters = useQueryFilters(filterNames);
  const { values: params, key, page, active: filtered } = filters;
  const list = useAsync(() => (admin ? api.get('/audit', { ...params, page, per_page: 50 }) : Promise.resolve(null)), [admin, key, page]);
  if (!admin) return html`<${AdminsOnly} title="Audit log" role=${session?.role} />`;
  return html`<${Page} title="Audit log" actions=${html`<button class="btn" onClick=${list.reload}>Refresh</button>`}>
    <p class="muted">Who requested, cancelled and reran executions, and who changed packs, rules, keys, identities and tokens. Never a secret value.</p>
    <${FilterForm} filters=${filters} fields=${filterFields} id="audit" label="Filter the audit log" />
    <${Loading} state=${list}>${(r) => html`
      <${Table} columns=${columns} rows=${r.data} empty=${filtered ? 'No entry matches these filters.' : 'Nothing audited yet.'} />
      <${Pager} pagination=${r.pagination} onPage=${(p) => setQuery({ page: p })} />`}
    <//>
  <//>`;
}
