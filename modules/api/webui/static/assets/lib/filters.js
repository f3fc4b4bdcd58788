// A list's filters, kept in the address (?name=value) so that a filtered list can be
// reloaded, shared and gone back to. useQueryFilters reads them and keeps a form's draft in
// step with the address; FilterForm shows that form. Selects and times apply at once, text
// when the form is submitted; times are kept in the address as RFC 3339 and shown in local
// time.

import { html, useEffect, useRef, useState } from '../vendor/htm-preact.js';
import { listAll } from './listall.js';
import { setQuery, useLocation } from './router.js';
import { useAsync } from './ui.js';

function fromAddress(query, names) {
  return Object.fromEntries(names.map((n) => [n, query.get(n) || '']));
}

// useQueryFilters answers the filters names as the address has them (values, what the list
// shows), the form's draft of them, and the page (?page=), which any change of filter resets.
export function useQueryFilters(names) {
  const { query } = useLocation();
  const values = fromAddress(query, names);
  const key = JSON.stringify(values);
  const [draft, setDraft] = useState(values);
  const seen = useRef(values);
  // The address changed (Back, Forward, a link, a filter applied): the form shows what it
  // now says, except where only the draft changed, so that text typed and not yet submitted
  // stays when a select applies.
  useEffect(() => {
    const before = seen.current;
    seen.current = values;
    setDraft((d) => {
      const next = { ...d };
      for (const n of names) if (values[n] !== before[n]) next[n] = values[n];
      return next;
    });
  }, [key]);
  const apply = (changes) => {
    setDraft((d) => ({ ...d, ...changes }));
    setQuery({ ...changes, page: '' });
  };
  return {
    values,
    draft,
    key,
    page: Number(query.get('page')) || 1,
    active: names.some((n) => values[n]),
    set: (name, value) => setDraft((d) => ({ ...d, [name]: value })),
    apply,
    submit: () => apply(Object.fromEntries(names.map((n) => [n, draft[n].trim()]))),
    clear: () => apply(Object.fromEntries(names.map((n) => [n, '']))),
  };
}

// localInput shows an RFC 3339 time as a datetime-local input's value, in local time.
function localInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

// rfc3339 is a datetime-local input's value (local time) as RFC 3339, in UTC.
function rfc3339(local) {
  const d = new Date(local);
  return local && !Number.isNaN(d.getTime()) ? d.toISOString().replace('.000Z', 'Z') : '';
}

// PackFilter picks a pack among those installed, or all of them ('').
function PackFilter({ id, value, onChange }) {
  const packs = useAsync(() => listAll('/packs'), []);
  return html`<label>Pack<select id=${id} name="pack" value=${value} onChange=${(e) => onChange(e.target.value)}>
    <option value="">All packs</option>
    ${(packs.data || []).map((p) => html`<option value=${p.ref}>${p.ref}</option>`)}
  </select></label>`;
}

// FilterForm shows filters (from useQueryFilters) as a search form. Each of fields is
// {name, label, type, placeholder, size, options, suggestions}: type is 'text' (the
// default), 'search', 'select' (options: [[value, label]]), 'time' or 'pack'; suggestions
// are a text field's offered values. Each control's id is `${id}-${name}`.
export function FilterForm({ filters, fields, id, label, submit = 'Filter' }) {
  const { draft, set, apply } = filters;
  const control = (f) => {
    const fid = `${id}-${f.name}`;
    const value = draft[f.name];
    switch (f.type) {
      case 'pack':
        return html`<${PackFilter} id=${fid} value=${value} onChange=${(v) => apply({ pack: v })} />`;
      case 'select':
        return html`<label>${f.label}<select id=${fid} name=${f.name} value=${value} onChange=${(e) => apply({ [f.name]: e.target.value })}>
          ${f.options.map(([v, l]) => html`<option value=${v}>${l}</option>`)}
        </select></label>`;
      case 'time':
        return html`<label>${f.label}<input id=${fid} name=${f.name} type="datetime-local" value=${localInput(value)}
          onChange=${(e) => apply({ [f.name]: rfc3339(e.target.value) })} /></label>`;
      default:
        return html`<label>${f.label}<input id=${fid} name=${f.name} type=${f.type === 'search' ? 'search' : undefined} value=${value}
          placeholder=${f.placeholder} size=${f.size} list=${f.suggestions && `${fid}-list`} onInput=${(e) => set(f.name, e.target.value)} />
          ${f.suggestions && html`<datalist id=${`${fid}-list`}>${f.suggestions.map((s) => html`<option value=${s} />`)}</datalist>`}</label>`;
    }
  };
  const texts = fields.some((f) => !['pack', 'select', 'time'].includes(f.type));
  const onSubmit = (e) => {
    e.preventDefault();
    filters.submit();
  };
  return html`<form class="filters" role="search" aria-label=${label} onSubmit=${onSubmit}>
    ${fields.map(control)}
    ${texts && html`<button class="btn primary" type="submit">${submit}</button>`}
    ${filters.active && html`<button class="btn" type="button" onClick=${filters.clear}>Clear</button>`}
  </form>`;
}
