// The datastore's keys: listed by scope and name prefix (filters kept in the address), set
// and deleted where the role allows. A secret value never reaches the page: the API answers
// it as ******** and the UI never asks for ?decrypt=true; the value typed into the form is
// dropped once it is sent.

import { html, useRef, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Invalid, useSubmit } from '../lib/errors.js';
import { describedBy, MASK } from '../lib/form.js';
import { FilterForm, useQueryFilters } from '../lib/filters.js';
import { listAll } from '../lib/listall.js';
import { setQuery } from '../lib/router.js';
import { asText, Confirm, ErrorBox, Field, Loading, Notice, Page, Pager, Table, Time, useAsync, useCan } from '../lib/ui.js';

const scopePattern = /^(system|user|pack\.[a-z][a-z0-9_-]*)$/;
const namePattern = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;

// keyPath is a key's address under /api/v1.
const keyPath = (k) => `/keys/${encodeURIComponent(k.scope)}/${encodeURIComponent(k.name)}`;

function KeyValue({ k }) {
  if (k.secret) return html`<code class="key-value">${MASK}</code>`;
  const text = asText(k.value);
  const short = text.length > 120 ? `${text.slice(0, 117)}…` : text;
  return html`<code class="key-value" title=${short === text ? undefined : text}>${short}</code>
    ${typeof k.value !== 'string' && html` <span class="tag">JSON</span>`}`;
}

// readValue turns what was typed into the value to send: text as a JSON string, or JSON.
function readValue(mode, raw) {
  if (mode === 'text') return { value: raw };
  if (raw.trim() === '') return { error: 'Required: a JSON value (a number, "a string", [a, list], {"an": "object"}, true).' };
  try {
    const value = JSON.parse(raw);
    if (value === null) return { error: 'Any JSON value but null (to remove a key, delete it).' };
    return { value };
  } catch (err) {
    return { error: `Not JSON: ${err.message}. Choose "Text" to store it as a string.` };
  }
}

const blank = { scope: '', name: '', raw: '', mode: 'text', secret: false, ttl: '' };

// KeyForm sets one key. Setting replaces the key's value, secrecy and expiry whole, as the
// API does; from (a listed key) fills it in to change that key, never with a secret value.
function KeyForm({ scopes, operator, from, onSaved }) {
  const [form, setForm] = useState(() => {
    if (!from) return { ...blank, scope: operator ? 'system' : 'user' };
    const text = !from.secret && typeof from.value === 'string';
    return { ...blank, scope: from.scope, name: from.name, secret: from.secret, mode: text || from.secret ? 'text' : 'json',
      raw: from.secret ? '' : text ? from.value : JSON.stringify(from.value, null, 2) };
  });
  const set = (field) => (e) => setForm({ ...form, [field]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });

  const { submit, errors, error, busy } = useSubmit(['scope', 'name', 'value', 'ttl'], async () => {
    const found = {};
    if (!scopePattern.test(form.scope)) found.scope = 'Want system, user or pack.<pack ref>.';
    else if (form.scope !== 'user' && !operator) found.scope = 'Only your own user keys: the other scopes need the operator role.';
    if (!namePattern.test(form.name)) found.name = '1 to 128 letters, digits, _ or -, starting with a letter or _.';
    const { value, error: valueError } = readValue(form.mode, form.raw);
    if (valueError) found.value = valueError;
    // Setting replaces a key whole, and a secret's value is never shown to be kept: an empty
    // one would replace it with nothing.
    else if ((form.secret || from?.secret) && form.raw === '') found.value = 'Required: a secret is replaced whole; give its value (JSON "" for an empty one).';
    if (Object.keys(found).length) throw new Invalid(found);
    const k = await api.put(keyPath(form), { value, secret: form.secret, ttl: form.ttl.trim() || undefined });
    setForm({ ...blank, scope: form.scope, mode: form.mode });
    onSaved(`Set ${k.scope}.${k.name}${k.secret ? ' (secret)' : ''}.`);
  });

  const valueHint = from?.secret ? 'A secret value is never shown: give the new one.'
    : form.secret ? `Sealed before it is stored; shown as ${MASK} from then on.${form.mode === 'json' ? ' JSON on one line.' : ''}` : '';
  const aria = (id, error, hint) => describedBy(id, { error, hint });
  // A secret is never shown as typed, JSON too: a password input, on one line.
  const valueInput = form.secret
    ? html`<input id="key-value" type="password" autocomplete="new-password" spellcheck="false" value=${form.raw} onInput=${set('raw')} ...${aria('key-value', errors.value, valueHint)} />`
    : html`<textarea id="key-value" rows="3" spellcheck="false" value=${form.raw} onInput=${set('raw')} ...${aria('key-value', errors.value, valueHint)}></textarea>`;
  const scopeHint = operator ? 'system, user (yours) or pack.<pack ref>' : 'Your own keys: the other scopes need the operator role.';
  const ttlHint = 'A duration such as 90s, 30m or 12h; empty keeps the key until it is deleted.';
  return html`<form class="card key-form" onSubmit=${submit} aria-label="Set a key" novalidate>
    <h2>${from ? `Change ${from.scope}.${from.name}` : 'Set a key'}</h2>
    <div class="form-row">
      <${Field} id="key-scope" label="Scope" error=${errors.scope} hint=${scopeHint}>
        ${operator
          ? html`<input id="key-scope" list="key-scopes" value=${form.scope} onInput=${set('scope')} autocomplete="off" ...${aria('key-scope', errors.scope, scopeHint)} />
              <datalist id="key-scopes">${scopes.map((s) => html`<option value=${s} />`)}</datalist>`
          : html`<select id="key-scope" value=${form.scope} onChange=${set('scope')} ...${aria('key-scope', errors.scope, scopeHint)}><option value="user">user</option></select>`}
      <//>
      <${Field} id="key-name" label="Name" error=${errors.name}>
        <input id="key-name" value=${form.name} onInput=${set('name')} autocomplete="off" spellcheck="false" ...${aria('key-name', errors.name)} />
      <//>
    </div>
    <fieldset class="key-mode">
      <legend>The value is</legend>
      <label><input type="radio" name="key-mode" value="text" checked=${form.mode === 'text'} onChange=${set('mode')} /> Text, stored as a JSON string</label>
      <label><input type="radio" name="key-mode" value="json" checked=${form.mode === 'json'} onChange=${set('mode')} /> JSON: a number, list, object, true/false or "quoted string"</label>
    </fieldset>
    <${Field} id="key-value" label="Value" error=${errors.value} hint=${valueHint}>
      ${valueInput}
    <//>
    <div class="form-row">
      <label class="check"><input id="key-secret" type="checkbox" checked=${form.secret} onChange=${set('secret')} /> Secret</label>
      <${Field} id="key-ttl" label="Expires after (optional)" error=${errors.ttl} hint=${ttlHint}>
        <input id="key-ttl" value=${form.ttl} onInput=${set('ttl')} placeholder="12h" autocomplete="off" ...${aria('key-ttl', errors.ttl, ttlHint)} />
      <//>
    </div>
    <p class="muted">Setting a key replaces its value, its secrecy and its expiry.</p>
    <${ErrorBox} error=${error} />
    <button class="btn primary" type="submit" disabled=${busy} aria-busy=${busy}>Set key</button>
  </form>`;
}

export function Keys() {
  const operator = useCan('operator');
  const filters = useQueryFilters(['scope', 'prefix']);
  const { values: { scope, prefix }, page } = filters;
  const list = useAsync(() => api.get('/keys', { scope, prefix, page, per_page: 50 }), [scope, prefix, page]);
  const packs = useAsync(() => listAll('/packs'), []);
  const scopes = ['system', 'user', ...(packs.data || []).map((p) => `pack.${p.ref}`)];
  if (scope && !scopes.includes(scope)) scopes.push(scope);
  const [editing, setEditing] = useState(null);
  const [notice, setNotice] = useState('');
  const formRef = useRef(null);
  const mayWrite = (k) => k.scope === 'user' || operator;

  const edit = (k) => {
    setEditing(k);
    setNotice('');
    requestAnimationFrame(() => formRef.current?.querySelector('#key-value, #key-name')?.focus());
  };
  const columns = [
    { label: 'Scope', cell: (k) => (k.scope === 'user' ? html`user <span class="muted">(mine)</span>` : k.scope) },
    { label: 'Name', cell: (k) => html`<span class="mono">${k.name}</span>` },
    { label: 'Value', cell: (k) => html`<${KeyValue} k=${k} />${k.secret && html` <span class="tag">secret</span>`}` },
    { label: 'Expires', cell: (k) => (k.expires ? html`<${Time} value=${k.expires} />` : html`<span class="muted">never</span>`) },
    { label: 'Updated', cell: (k) => html`<${Time} value=${k.updated} />` },
    { label: 'Actions', cell: (k) => mayWrite(k) && html`<span class="row-actions">
        <button class="btn" onClick=${() => edit(k)} aria-label=${`Change ${k.scope}.${k.name}`}>Change</button>
        <${Confirm} question=${`Delete ${k.scope}.${k.name}?`} onConfirm=${async () => { await api.del(keyPath(k)); list.reload(); }}>Delete<//>
      </span>` },
  ];
  return html`<${Page} title="Keys" actions=${html`<button class="btn" onClick=${list.reload}>Refresh</button>`}>
    <p class="muted">The datastore: values that rules, workflows and actions read as <code>kv.scope.name</code>. Secret values show as <code>${MASK}</code> to everyone.</p>
    <${FilterForm} filters=${filters} id="keys" label="Filter the keys" fields=${[
      { name: 'scope', label: 'Scope', type: 'select', options: [['', 'All I may read'], ...scopes.map((s) => [s, s === 'user' ? 'user (mine)' : s])] },
      { name: 'prefix', label: 'Name starts with', type: 'search' },
    ]} />
    <${Loading} state=${list}>${(r) => html`
      <${Table} columns=${columns} rows=${r.data} rowKey=${(k) => `${k.scope}/${k.name}`} empty=${scope || prefix ? 'No key matches.' : 'No keys yet.'} />
      <${Pager} pagination=${r.pagination} onPage=${(p) => setQuery({ page: p })} />`}
    <//>
    <div ref=${formRef}>
      <${KeyForm} key=${editing ? `${editing.scope}/${editing.name}/${editing.updated}` : 'new'} scopes=${scopes} operator=${operator}
        from=${editing} onSaved=${(said) => { setEditing(null); setNotice(said); list.reload(); }} />
      <${Notice}>${notice}<//>
      ${editing && html`<button class="btn ghost" onClick=${() => setEditing(null)}>Set another key instead</button>`}
    </div>
  <//>`;
}
