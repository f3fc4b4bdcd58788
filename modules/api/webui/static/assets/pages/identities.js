// Identities, for admins: who may log in and with what role; create one, change its role,
// set a new password, delete it. An admin is offered neither a change of their own role nor
// their own deletion: either would leave them locked out of this screen. Anyone else is told
// the screen is for admins.

import { html, useContext, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { AdminsOnly, useSubmit } from '../lib/errors.js';
import { describedBy, roles } from '../lib/form.js';
import { setQuery, useLocation } from '../lib/router.js';
import { Confirm, ErrorBox, Field, Loading, Notice, Page, Pager, Session, Table, Time, useAsync, useCan } from '../lib/ui.js';

const identityPath = (login) => `/identities/${encodeURIComponent(login)}`;

function CreateIdentity({ onCreated }) {
  const [form, setForm] = useState({ login: '', password: '', role: 'viewer' });
  const set = (field) => (e) => setForm({ ...form, [field]: e.target.value });
  const { submit, errors, error, busy } = useSubmit(['login', 'password', 'role'], async () => {
    const created = await api.post('/identities', form);
    setForm({ login: '', password: '', role: form.role });
    onCreated(`Created ${created.login} (${created.role}).`);
  });
  return html`<form class="card inline-form" onSubmit=${submit} aria-label="Create an identity" novalidate>
    <h2>Create an identity</h2>
    <div class="form-row">
      <${Field} id="identity-login" label="Login" error=${errors.login}>
        <input id="identity-login" value=${form.login} onInput=${set('login')} autocomplete="off" spellcheck="false" ...${describedBy('identity-login', { error: errors.login })} />
      <//>
      <${Field} id="identity-password" label="Password" error=${errors.password} hint="At least 8 characters.">
        <input id="identity-password" type="password" value=${form.password} onInput=${set('password')} autocomplete="new-password"
          ...${describedBy('identity-password', { hint: true, error: errors.password })} />
      <//>
      <${Field} id="identity-role" label="Role" error=${errors.role}>
        <select id="identity-role" value=${form.role} onChange=${set('role')} ...${describedBy('identity-role', { error: errors.role })}>${roles.map((r) => html`<option value=${r}>${r}</option>`)}</select>
      <//>
    </div>
    <${ErrorBox} error=${error} />
    <button class="btn primary" type="submit" disabled=${busy} aria-busy=${busy}>Create</button>
  </form>`;
}

// NewPassword sets another password for one identity; one's own needs the current one too,
// as the API asks.
function NewPassword({ identity, self, onDone }) {
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState('');
  const [current, setCurrent] = useState('');
  const { submit, errors, error, busy } = useSubmit(['password', 'current_password'], async () => {
    await api.put(identityPath(identity.login), self ? { password, current_password: current } : { password });
    setOpen(false);
    onDone(`Set a new password for ${identity.login}.`);
  });
  if (!open) return html`<button class="btn" onClick=${() => setOpen(true)}>New password</button>`;
  const id = `password-${identity.id}`;
  return html`<form class="password-form" onSubmit=${submit} aria-label=${`New password for ${identity.login}`} novalidate>
    ${self && html`<${Field} id=${`${id}-current`} label="Your current password" error=${errors.current_password}>
      <input id=${`${id}-current`} type="password" value=${current} onInput=${(e) => setCurrent(e.target.value)} autocomplete="current-password"
        ...${describedBy(`${id}-current`, { error: errors.current_password })} />
    <//>`}
    <${Field} id=${id} label=${`New password for ${identity.login}`} error=${errors.password}>
      <input id=${id} type="password" value=${password} onInput=${(e) => setPassword(e.target.value)} autocomplete="new-password"
        ...${describedBy(id, { error: errors.password })} />
    <//>
    <${ErrorBox} error=${error} />
    <span class="row-actions"><button class="btn primary" type="submit" disabled=${busy} aria-busy=${busy}>Set password</button>
      <button class="btn" type="button" onClick=${() => setOpen(false)}>Cancel</button></span>
  </form>`;
}

function RoleSelect({ identity, onDone }) {
  const [error, setError] = useState(null);
  const change = async (e) => {
    const role = e.target.value;
    setError(null);
    try {
      await api.put(identityPath(identity.login), { role });
      onDone(`${identity.login} is now ${role}.`);
    } catch (err) {
      e.target.value = identity.role;
      setError(err);
    }
  };
  return html`<select value=${identity.role} onChange=${change} aria-label=${`Role of ${identity.login}`}>
      ${roles.map((r) => html`<option value=${r}>${r}</option>`)}
    </select>${error && html` <span class="error inline" role="alert">${error.message}</span>`}`;
}

export function Identities() {
  const session = useContext(Session);
  const admin = useCan('admin');
  const { query } = useLocation();
  const page = Number(query.get('page')) || 1;
  const list = useAsync(() => (admin ? api.get('/identities', { page, per_page: 50 }) : Promise.resolve(null)), [admin, page]);
  const [notice, setNotice] = useState('');
  if (!admin) return html`<${AdminsOnly} title="Identities" role=${session?.role} />`;
  const done = (said) => {
    setNotice(said);
    list.reload();
  };
  const columns = [
    { label: 'Login', cell: (i) => html`<strong>${i.login}</strong>${i.login === session.login && html` <span class="tag">you</span>`}` },
    { label: 'Role', cell: (i) => (i.login === session.login
      ? html`<span class="own-role" title="Another admin changes your role">${i.role}</span>`
      : html`<${RoleSelect} key=${`${i.login}/${i.role}`} identity=${i} onDone=${done} />`) },
    { label: 'Created', cell: (i) => html`<${Time} value=${i.created} />` },
    { label: 'Updated', cell: (i) => html`<${Time} value=${i.updated} />` },
    { label: 'Actions', cell: (i) => html`<span class="row-actions">
        <${NewPassword} identity=${i} self=${i.login === session.login} onDone=${done} />
        ${i.login !== session.login && html`<${Confirm} question=${`Delete ${i.login} and its API tokens?`}
          onConfirm=${async () => { await api.del(identityPath(i.login)); done(`Deleted ${i.login}.`); }}>Delete<//>`}
      </span>` },
  ];
  return html`<${Page} title="Identities">
    <p class="muted">Who may log in, and with what role: viewers read, operators run and change automation, admins also manage identities and read the audit log. A new password ends that identity's sessions; its API tokens live on until revoked.</p>
    <${Notice}>${notice}<//>
    <${Loading} state=${list}>${(r) => html`
      <${Table} columns=${columns} rows=${r.data} />
      <${Pager} pagination=${r.pagination} onPage=${(p) => setQuery({ page: p })} />`}
    <//>
    <${CreateIdentity} onCreated=${done} />
  <//>`;
}
