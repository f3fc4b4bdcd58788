// Refusals and field errors. The API names the body's field a refusal is about in
// error.field (a dotted path such as action_params.count or response.approved), its message
// starting with that field too; fieldOf places it at a form's field, and useSubmit is the one
// way a form is sent.

import { html, useEffect, useRef, useState } from '../vendor/htm-preact.js';
import { Page } from './ui.js';

const capitalise = (s) => s.charAt(0).toUpperCase() + s.slice(1);

// fieldOf answers {field, message} for an error the API says is about one field: the
// nearest of known (names or a Set) enclosing err.field (conditions for conditions[1].any[0]),
// and the message without the part of its leading "field: " that the form's field already
// says ("[1].any[0]: unknown operator" stays, shown at conditions); null when none is known
// (the form shows err whole).
function fieldOf(err, known) {
  if (!err?.field) return null;
  const has = known instanceof Set ? (f) => known.has(f) : (f) => known.includes(f);
  let f = err.field;
  while (f && !has(f)) {
    const cut = Math.max(f.lastIndexOf('.'), f.lastIndexOf('['));
    f = cut > 0 ? f.slice(0, cut) : '';
  }
  if (!f) return null;
  let message = err.message || '';
  if (message.startsWith(`${err.field}: `)) {
    const inside = err.field.slice(f.length).replace(/^\./, '');
    message = (inside ? `${inside}: ` : '') + message.slice(err.field.length + 2);
  }
  return { field: f, message: capitalise(message) };
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
// fields (Invalid's, or the API's about one of known, through fieldOf) or whole; the first
// field at fault in the form (the first input marked aria-invalid) takes the focus, so that
// its message is in view and read out.
export function useSubmit(known, send) {
  const [errors, setErrors] = useState({});
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const form = useRef(null);
  useEffect(() => {
    if (Object.keys(errors).length) form.current?.querySelector('[aria-invalid="true"]')?.focus();
  }, [errors]);
  const submit = async (e) => {
    e?.preventDefault();
    form.current = e?.currentTarget || e?.target?.closest?.('form') || form.current;
    setError(null);
    setErrors({});
    setBusy(true);
    try {
      await send();
    } catch (err) {
      const at = err instanceof Invalid ? { errors: err.errors } : fieldOf(err, known);
      if (at?.errors) setErrors(at.errors);
      else if (at) setErrors({ [at.field]: at.message });
      else setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { submit, errors, error, busy };
}
