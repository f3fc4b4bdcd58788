// Refusals and field errors: the API names the field a 400 is about at the start of its
// message ("name: want 1 to 128 letters ..."), so that a form can show it at that field.

import { html, useState } from '../vendor/htm-preact.js';
import { Page } from './ui.js';

// fieldErrors answers {field: message} when err is a 400 about one of names, else null (the
// form shows err whole).
export function fieldErrors(err, names) {
  if (err?.status !== 400) return null;
  const m = /^([a-z_]+): (.*)$/s.exec(err.message || '');
  if (!m || !names.includes(m[1])) return null;
  return { [m[1]]: m[2].charAt(0).toUpperCase() + m[2].slice(1) };
}

// AdminsOnly is the screen a non-admin gets at an admin's address: said plainly, not a
// blank page or a bare 403.
export function AdminsOnly({ title, role }) {
  return html`<${Page} title=${title}>
    <div class="card refused" role="alert">
      <p><strong>Admins only.</strong> ${title} is for identities with the admin role; you are ${role ? html`<span class="tag">${role}</span>` : 'not one'}.</p>
    </div>
  <//>`;
}

// Invalid is what a form's own checks throw: an error per field, before anything is sent.
export class Invalid extends Error {
  constructor(errors) {
    super('invalid input');
    this.errors = errors;
  }
}

// useSubmit runs send when its form is submitted: busy meanwhile, then its errors at their
// fields (Invalid's, or a 400 about one of fields) or whole.
export function useSubmit(fields, send) {
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e?.preventDefault();
    setError(null);
    setErrors({});
    setBusy(true);
    try {
      await send();
    } catch (err) {
      const at = err instanceof Invalid ? err.errors : fieldErrors(err, fields);
      if (at) setErrors(at);
      else setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { submit, errors, error, busy };
}
