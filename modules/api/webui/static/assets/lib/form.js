// Forms built from a schema: an action's parameters (name → {type, description, required,
// default, enum, secret}) or an inquiry's JSON Schema (type object with properties). Values
// are checked here, field by field, before anything is sent; the API checks them again.
//
// A secret never shows as typed: its input is a password input whatever its type. The API
// masks a secret's default and allowed values (MASK), so a secret field is never filled from
// its default: left empty, the server's default applies. A secret given as MASK (a rerun's
// original value) is held as MASK and sent back so, which the API reads as "unchanged".

import { html, useMemo, useState } from '../vendor/htm-preact.js';
import { Invalid, useSubmit } from './errors.js';
import { asText, ErrorBox, Field } from './ui.js';

// MASK is what the API shows in place of every secret value.
export const MASK = '********';

// roles are the identities' roles, least first.
export const roles = ['viewer', 'operator', 'admin'];

// requiredFirst puts the required fields first, the rest in the order given.
function requiredFirst(fields) {
  return [...fields].sort((a, b) => Number(!!b.required) - Number(!!a.required));
}

// fieldsOfParameters lists an action's parameters as form fields, required ones first, each
// group by name.
export function fieldsOfParameters(parameters) {
  const fields = Object.entries(parameters || {}).map(([name, p]) => ({ name, ...p, type: p.type || 'any' }));
  return requiredFirst(fields.sort((a, b) => a.name.localeCompare(b.name)));
}

// fieldsOfJSONSchema lists an object schema's properties as form fields, required ones first,
// else in their order. An inquiry's `secret: true` is no secret: the API stores and shows the
// answer as given, so the field says so rather than hide what is typed.
export function fieldsOfJSONSchema(schema) {
  const required = new Set(schema?.required || []);
  return requiredFirst(Object.entries(schema?.properties || {}).map(([name, p]) => ({
    name,
    type: Array.isArray(p.type) ? p.type.find((t) => t !== 'null') || 'any' : p.type || 'any',
    description: [p.description || p.title, p.secret && 'marked secret, but the answer is stored and shown as given'].filter(Boolean).join(' · '),
    default: p.default,
    enum: p.enum,
    required: required.has(name),
  })));
}

// FieldLabel is a field's name, a star when it must be given (never on a checkbox, which is
// always given), and a tag on a secret.
export function FieldLabel({ f }) {
  return html`${f.name}${f.required && f.type !== 'boolean' && html`<span class="req" title="required"> *</span>`}${f.secret && html` <span class="tag">secret</span>`}`;
}

// describedBy are the attributes of the input of the Field with id: its hint and error
// (lib/ui.js Field gives them those ids) and whether it is at fault.
export function describedBy(id, { hint, error }) {
  const ids = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ');
  return { 'aria-describedby': ids || undefined, 'aria-invalid': error ? 'true' : undefined };
}

// initialValues are what a form starts with: given values, else defaults (never a secret's),
// as the inputs hold them (text for numbers, JSON text for objects and arrays).
function initialValues(fields, given = {}) {
  const out = {};
  for (const f of fields) {
    if (f.name in given) out[f.name] = toInput(f, given[f.name]);
    else out[f.name] = f.secret ? '' : toInput(f, f.default);
  }
  return out;
}

function toInput(f, v) {
  if (f.secret) return v === undefined || v === null ? '' : asText(v);
  if (v === undefined || v === null) return f.type === 'boolean' ? false : '';
  if (f.enum) return JSON.stringify(v);
  if (f.type === 'boolean') return !!v;
  if (f.type === 'object' || f.type === 'array' || (f.type === 'any' && typeof v !== 'string')) return JSON.stringify(v, null, 2);
  return String(v);
}

// collect turns the inputs into the values to send, and an error per field that is wrong;
// an empty optional field is left out, so that its default applies, and so is an empty
// secret with a default.
function collect(fields, inputs) {
  const values = {};
  const errors = {};
  for (const f of fields) {
    const raw = inputs[f.name];
    if ((f.secret || f.type !== 'boolean') && (raw === '' || raw === undefined)) {
      if (f.required && f.default === undefined) errors[f.name] = 'Required.';
      continue;
    }
    if (f.secret && raw === MASK) {
      values[f.name] = MASK;
      continue;
    }
    try {
      values[f.name] = fromInput(f, raw);
    } catch (err) {
      errors[f.name] = err.message;
    }
  }
  return { values, errors };
}

function fromInput(f, raw) {
  // A secret's allowed values come masked: it is typed, and the API checks it.
  if (f.enum && !f.secret) return JSON.parse(raw);
  switch (f.type) {
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw.trim() === 'true' || raw.trim() === 'false') return raw.trim() === 'true';
      throw new Error('true or false is needed.');
    case 'integer': {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error('A whole number is needed.');
      return Number(raw);
    }
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || Number.isNaN(n)) throw new Error('A number is needed.');
      return n;
    }
    case 'object':
    case 'array': {
      let v;
      try {
        v = JSON.parse(raw);
      } catch {
        throw new Error(`Not JSON: an ${f.type} is needed.`);
      }
      if (f.type === 'array' ? !Array.isArray(v) : v === null || typeof v !== 'object' || Array.isArray(v)) {
        throw new Error(`An ${f.type} is needed.`);
      }
      return v;
    }
    case 'any':
      try {
        return JSON.parse(raw);
      } catch {
        return raw;
      }
    default:
      return raw;
  }
}

function hintOf(f, input) {
  const secretHint = f.secret && (input === MASK
    ? `left as ${MASK}, it keeps its value`
    : f.default !== undefined && 'default set (hidden): left empty, it applies');
  return [f.description, f.type !== 'any' && f.type, f.secret && f.enum && 'one of its allowed values (hidden)', secretHint].filter(Boolean).join(' · ');
}

// SchemaForm shows one input per field; inputs and errors are the caller's state, errors
// keyed by errorPrefix and the field's name.
function SchemaForm({ fields, inputs, errors = {}, onInput, idPrefix = 'f', errorPrefix = '' }) {
  if (!fields.length) return html`<p class="muted">No parameters.</p>`;
  return html`<div class="schema-form">${fields.map((f) => {
    const id = `${idPrefix}-${f.name}`;
    const set = (v) => onInput({ ...inputs, [f.name]: v });
    const hint = hintOf(f, inputs[f.name]);
    const error = errors[errorPrefix + f.name];
    const aria = describedBy(id, { hint, error });
    let input;
    if (f.secret) {
      input = html`<input id=${id} name=${f.name} type="password" autocomplete="new-password" spellcheck="false"
        placeholder=${f.type === 'boolean' ? 'true or false' : undefined} value=${inputs[f.name]} onInput=${(e) => set(e.target.value)} ...${aria} />`;
    } else if (f.enum) {
      input = html`<select id=${id} name=${f.name} value=${inputs[f.name]} onChange=${(e) => set(e.target.value)} ...${aria}>
        ${!f.required && html`<option value="">(default)</option>`}
        ${f.enum.map((v) => html`<option value=${JSON.stringify(v)}>${asText(v)}</option>`)}
      </select>`;
    } else if (f.type === 'boolean') {
      input = html`<input id=${id} name=${f.name} type="checkbox" checked=${!!inputs[f.name]} onChange=${(e) => set(e.target.checked)} ...${aria} />`;
    } else if (f.type === 'object' || f.type === 'array') {
      input = html`<textarea id=${id} name=${f.name} rows="4" spellcheck="false" value=${inputs[f.name]} onInput=${(e) => set(e.target.value)} ...${aria}></textarea>`;
    } else {
      const type = f.type === 'integer' || f.type === 'number' ? 'number' : 'text';
      input = html`<input id=${id} name=${f.name} type=${type} step=${f.type === 'number' ? 'any' : undefined}
        autocomplete="off" value=${inputs[f.name]} onInput=${(e) => set(e.target.value)} ...${aria} />`;
    }
    return html`<${Field} id=${id} label=${html`<${FieldLabel} f=${f} />`} hint=${hint} error=${error}>${input}<//>`;
  })}</div>`;
}

// ParamsForm edits values of fields and hands the checked ones to onSubmit; the API's
// refusals name them under at (parameters.NAME, response.NAME; '' when the one field is the
// body's field itself). With keepMasked, an emptied field the original had is sent as null
// (its default applies).
export function ParamsForm({ fields: declared, given, submitLabel, onSubmit, keepMasked = false, idPrefix = 'p', at = 'parameters', formClass = 'params-form', label, children }) {
  // A value given as MASK was secret where it comes from (an execution keeps its secrets
  // secret though its action changed since): its field is a secret one too.
  const fields = useMemo(() => declared.map((f) => (!f.secret && given?.[f.name] === MASK ? { ...f, secret: true } : f)), [declared, given]);
  const [inputs, setInputs] = useState(() => initialValues(fields, given || {}));
  const prefix = at ? `${at}.` : '';
  const known = useMemo(() => fields.map((f) => prefix + f.name), [fields, prefix]);
  const { submit, errors, error, busy } = useSubmit(known, async () => {
    const { values, errors: found } = collect(fields, inputs);
    if (Object.keys(found).length) throw new Invalid(Object.fromEntries(Object.entries(found).map(([name, m]) => [prefix + name, m])));
    if (keepMasked && given) {
      for (const f of fields) if (!(f.name in values) && f.name in given) values[f.name] = null;
    }
    await onSubmit(values);
  });
  return html`<form class=${formClass} onSubmit=${submit} aria-label=${label} noValidate>
    ${children}
    <${SchemaForm} fields=${fields} inputs=${inputs} errors=${errors} onInput=${setInputs} idPrefix=${idPrefix} errorPrefix=${prefix} />
    <${ErrorBox} error=${error} />
    <button class="btn primary" type="submit" disabled=${busy} aria-busy=${busy}>${submitLabel}</button>
  </form>`;
}
