// The actions that can be run: searched by ref, label or description, filtered by pack.
// GET /actions filters by pack alone, so a search reads every page of the list and matches
// here; without one, the list is paged by the API.

import { html } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { FilterForm, useQueryFilters } from '../lib/filters.js';
import { listAll } from '../lib/listall.js';
import { Link, setQuery } from '../lib/router.js';
import { Loading, Page, Pager, Table, useAsync } from '../lib/ui.js';

const pageSize = 50;

function matches(action, words) {
  const text = `${action.ref} ${action.label || ''} ${action.description || ''}`.toLowerCase();
  return words.every((w) => text.includes(w));
}

async function loadActions(search, pack, page) {
  const params = { pack };
  if (!search) return api.get('/actions', { ...params, page, page_size: pageSize });
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  const found = (await listAll('/actions', params)).filter((a) => matches(a, words));
  const pages = Math.max(1, Math.ceil(found.length / pageSize));
  return {
    data: found.slice((page - 1) * pageSize, page * pageSize),
    pagination: { page, page_size: pageSize, total_items: found.length, total_pages: pages },
  };
}

const columns = [
  { label: 'Action', cell: (a) => html`<${Link} href=${`/actions/${encodeURIComponent(a.ref)}`}>${a.ref}<//>${a.enabled === false && html` <span class="tag">disabled</span>`}` },
  { label: 'Label', cell: (a) => a.label || '' },
  { label: 'Runner', cell: (a) => html`<span class="mono">${a.runner_type}</span>` },
  { label: 'Description', cell: (a) => html`<span class="muted">${a.description || ''}</span>` },
];

const fields = [
  { name: 'q', label: 'Search', type: 'search', placeholder: 'ref, label or description' },
  { name: 'pack', label: 'Pack', type: 'pack' },
];

export function Actions() {
  const filters = useQueryFilters(['q', 'pack']);
  const { q: search, pack } = filters.values;
  const { page } = filters;
  const state = useAsync(() => loadActions(search, pack, page), [search, pack, page]);
  return html`<${Page} title="Actions">
    <${FilterForm} filters=${filters} fields=${fields} id="actions" label="Search the actions" submit="Search" />
    <${Loading} state=${state}>${(list) => html`
      <${Table} columns=${columns} rows=${list.data} rowKey=${(a) => a.ref} empty=${search || pack ? 'No action matches.' : 'No actions yet.'} />
      <${Pager} pagination=${list.pagination} onPage=${(p) => setQuery({ page: p })} />`}<//>
  <//>`;
}
