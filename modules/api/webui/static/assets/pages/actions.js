// The actions that can be run: searched by ref, label or description, filtered by pack.
// GET /actions filters by pack alone, so a search reads every page of the list and matches
// here; without one, the list is paged by the API.

import { html, useEffect, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link, setQuery, useLocation } from '../lib/router.js';
import { Loading, Page, Pager, Table, useAsync } from '../lib/ui.js';

const pageSize = 50;

// allPages reads every page of a list (the API's pagination envelope), 100 at a time.
export async function allPages(path, params = {}) {
  const out = [];
  for (let page = 1; ; page++) {
    const { data, pagination } = await api.get(path, { ...params, page, page_size: 100 });
    out.push(...data);
    if (page >= pagination.total_pages) return out;
  }
}

function matches(action, words) {
  const text = `${action.ref} ${action.label || ''} ${action.description || ''}`.toLowerCase();
  return words.every((w) => text.includes(w));
}

async function loadActions(search, pack, page) {
  const params = { pack };
  if (!search) return api.get('/actions', { ...params, page, page_size: pageSize });
  const words = search.toLowerCase().split(/\s+/).filter(Boolean);
  const found = (await allPages('/actions', params)).filter((a) => matches(a, words));
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

export function Actions() {
  const { query } = useLocation();
  const search = query.get('q') || '';
  const pack = query.get('pack') || '';
  const page = Number(query.get('page')) || 1;
  const [text, setText] = useState(search);
  useEffect(() => setText(search), [search]);
  const packs = useAsync(() => allPages('/packs'), []);
  const state = useAsync(() => loadActions(search, pack, page), [search, pack, page]);
  const submit = (e) => {
    e.preventDefault();
    setQuery({ q: text.trim(), page: '' });
  };
  return html`<${Page} title="Actions">
    <form class="filters" role="search" onSubmit=${submit}>
      <label>Search
        <input type="search" name="q" placeholder="ref, label or description" value=${text} onInput=${(e) => setText(e.target.value)} />
      </label>
      <label>Pack
        <select name="pack" value=${pack} onChange=${(e) => setQuery({ pack: e.target.value, page: '' })}>
          <option value="">All packs</option>
          ${(packs.data || []).map((p) => html`<option value=${p.ref}>${p.ref}</option>`)}
        </select>
      </label>
      <button class="btn" type="submit">Search</button>
    </form>
    <${Loading} state=${state}>${(list) => html`
      <${Table} columns=${columns} rows=${list.data} rowKey=${(a) => a.ref} empty=${search || pack ? 'No action matches.' : 'No actions yet.'} />
      <${Pager} pagination=${list.pagination} onPage=${(p) => setQuery({ page: p })} />`}<//>
  <//>`;
}
