// API tokens: one's own (an admin may list everyone's), made with a role no larger than one's
// own and an optional expiry, revoked at once. A new token's secret is shown once, from the
// answer that carries it, and kept nowhere: a reload or leaving the screen loses it.

import { html, useContext, useRef, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Invalid, useSubmit } from '../lib/errors.js';
import { describedBy, roles } from '../lib/form.js';
import { setQuery, useLocation } from '../lib/router.js';
import { Confirm, ErrorBox, Field, Loading, Page, Pager, Session, Status, Table, Time, useAsync, useCan } from '../lib/ui.js';

const day = 86400000;
const lifetimes = [['', 'Never'], ['7', '7 days'], ['30', '30 days'], ['90', '90 days'], ['365', '1 year'], ['date', 'On a date…']];

// expiresAt turns the form's choice into the API's expires_at (RFC 3339), or undefined for never.
function expiresAt(lifetime, date) {
  if (lifetime === '') return undefined;
  if (lifetime === 'date') return date ? new Date(`${date}T23:59:59`).toISOString() : null;
  return new Date(Date.now() + Number(lifetime) * day).toISOString();
}

function NewToken({ token, onDismiss }) {
  const [copied, setCopied] = useState('');
  const ref = useRef(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(token.token);
      setCopied('Copied.');
    } catch {
      // No clipboard (an insecure origin, a refused permission): select it for Ctrl+C.
      const range = document.createRange();
      range.selectNodeContents(ref.current);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      setCopied('Selected: press Ctrl+C (⌘C) to copy.');
    }
  };
  return html`<div class="card new-token" role="region" aria-label="New API token">
    <h2>Token ${token.name || `#${token.id}`} created</h2>
    <p class="warn-text"><strong>Copy it now: it will not be shown again.</strong> Only its fingerprint is kept; a lost token is revoked and replaced.</p>
    <div class="token-secret"><code ref=${ref} class="mono">${token.token}</code>
      <button class="btn primary" onClick=${copy}>Copy</button></div>
    ${copied && html`<p class="muted" role="status">${copied}</p>`}
    <button class="btn" onClick=${onDismiss}>Done, I have copied it</button>
  </div>`;
}

function CreateToken({ ownRole, onCreated }) {
  const [form, setForm] = useState({ name: '', role: '', lifetime: '90', date: '' });
  const set = (field) => (e) => setForm({ ...form, [field]: e.target.value });
  const allowed = roles.slice(0, roles.indexOf(ownRole) + 1);
  const { submit, errors, error, busy } = useSubmit(['name', 'role', 'expires_at'], async () => {
    const expires = expiresAt(form.lifetime, form.date);
    if (expires === null) throw new Invalid({ expires_at: 'Pick the date it expires on.' });
    const created = await api.post('/tokens', { name: form.name, role: form.role || undefined, expires_at: expires });
    setForm({ ...form, name: '' });
    onCreated(created);
  });
  return html`<form class="card inline-form" onSubmit=${submit} aria-label="Create an API token" novalidate>
    <h2>Create an API token</h2>
    <p class="muted">For scripts and the CLI (<code>Authorization: Bearer atn_…</code>): it acts as you, with the role you give it.</p>
    <div class="form-row">
      <${Field} id="token-name" label="Name" error=${errors.name} hint="What it is for, e.g. deploy-script.">
        <input id="token-name" value=${form.name} onInput=${set('name')} maxlength="200" autocomplete="off" ...${describedBy('token-name', { hint: true, error: errors.name })} />
      <//>
      <${Field} id="token-role" label="Role" error=${errors.role}>
        <select id="token-role" value=${form.role} onChange=${set('role')} ...${describedBy('token-role', { error: errors.role })}>
          <option value="">Mine (${ownRole}), as it is at each use</option>
          ${allowed.map((r) => html`<option value=${r}>${r}</option>`)}
        </select>
      <//>
      <${Field} id="token-expiry" label="Expires" error=${errors.expires_at}>
        <select id="token-expiry" value=${form.lifetime} onChange=${set('lifetime')} ...${describedBy('token-expiry', { error: errors.expires_at })}>${lifetimes.map(([v, label]) => html`<option value=${v}>${label}</option>`)}</select>
        ${form.lifetime === 'date' && html`<input type="date" aria-label="Expiry date" value=${form.date} onInput=${set('date')}
          ...${describedBy('token-expiry', { error: errors.expires_at })} />`}
      <//>
    </div>
    <${ErrorBox} error=${error} />
    <button class="btn primary" type="submit" disabled=${busy} aria-busy=${busy}>Create token</button>
  </form>`;
}

function tokenState(t) {
  if (t.revoked_at) return 'revoked';
  if (t.expires_at && new Date(t.expires_at) <= new Date()) return 'expired';
  return 'active';
}

export function Tokens() {
  const session = useContext(Session);
  const admin = useCan('admin');
  const { query } = useLocation();
  const all = admin && query.get('all') === 'true';
  const page = Number(query.get('page')) || 1;
  const list = useAsync(() => api.get('/tokens', { all: all ? 'true' : undefined, page, per_page: 50 }), [all, page]);
  const [created, setCreated] = useState(null);
  const columns = [
    { label: 'Name', cell: (t) => t.name || html`<span class="muted">(unnamed)</span>` },
    { label: 'Starts', cell: (t) => html`<code>${t.prefix}…</code>` },
    ...(all ? [{ label: 'Owner', cell: (t) => t.login }] : []),
    { label: 'Role', cell: (t) => t.role || html`<span class="muted">owner's</span>` },
    { label: 'State', cell: (t) => html`<${Status} tone=${tokenState(t) === 'active' ? 'ok' : 'warn'}>${tokenState(t)}<//>` },
    { label: 'Expires', cell: (t) => (t.expires_at ? html`<${Time} value=${t.expires_at} />` : html`<span class="muted">never</span>`) },
    { label: 'Created', cell: (t) => html`<${Time} value=${t.created} />` },
    { label: 'Actions', cell: (t) => !t.revoked_at && html`<${Confirm} question=${`Revoke ${t.name || t.prefix}? Whatever uses it stops working.`}
        onConfirm=${async () => { await api.del(`/tokens/${t.id}`); list.reload(); }}>Revoke<//>` },
  ];
  return html`<${Page} title="API tokens" actions=${admin && html`<label class="check">
      <input type="checkbox" checked=${all} onChange=${(e) => setQuery({ all: e.target.checked ? 'true' : '', page: '' })} /> Everyone's</label>`}>
    ${created && html`<${NewToken} token=${created} onDismiss=${() => setCreated(null)} />`}
    <${Loading} state=${list}>${(r) => html`
      <${Table} columns=${columns} rows=${r.data} empty=${all ? 'No API tokens.' : 'You have no API tokens.'} />
      <${Pager} pagination=${r.pagination} onPage=${(p) => setQuery({ page: p })} />`}
    <//>
    <${CreateToken} ownRole=${session.role} onCreated=${(t) => { setCreated(t); list.reload(); }} />
  <//>`;
}
