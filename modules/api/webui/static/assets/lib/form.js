// Forms built from a schema: an action's parameters (name → {type, description, required,
// default, enum, secret}) or an inquiry's JSON Schema (type object with properties). Values
// are checked here, field by field, before anything is sent; the API checks them again.

import { html } from '../vendor/htm-preact.js';
import { Field } from './ui.js';

// fieldsOfParameters lists an action's parameters as form fields, required ones first.
export function fieldsOfParameters(parameters) {
  const fields = Object.entries(parameters || {}).map(([name, p]) => ({ name, ...p, type: p.type || 'any' }));
  return fields.sort((a, b) => Number(!!b.required) - Number(!!a.required) || a.name.localeCompare(b.name));
}

// fieldsOfJSONSchema lists an object schema's properties as form fields, in their order.
export function fieldsOfJSONSchema(schema) {
  const required = new Set(schema?.required || []);
  return Object.entries(schema?.properties || {}).map(([name, p]) => ({
    name,
    type: Array.isArray(p.type) ? p.type.find((t) => t !== 'null') || 'any' : p.type || 'any',
    description: p.description || p.title,
    default: p.default,
    enum: p.enum,
    required: required.has(name),
    secret: !!p.secret,
  }));
}

// initialValues are what a form starts with: given values, else defaults, as the inputs
// hold them (text for numbers, JSON text for objects and arrays).
export function initialValues(fields, given = {}) {
  const out = {};
  for (const f of fields) {
    const v = f.name in given ? given[f.name] : f.default;
    out[f.name] = toInput(f, v);
  }
  return out;
}

function toInput(f, v) {
  if (v === undefined || v === null) return f.type === 'boolean' ? false : '';
  if (f.enum) return JSON.stringify(v);
  if (f.type === 'boolean') return !!v;
  if (f.type === 'object' || f.type === 'array' || (f.type === 'any' && typeof v !== 'string')) return JSON.stringify(v, null, 2);
  return String(v);
}

// collect turns the inputs into the values to send, and an error per field that is wrong;
// an empty optional field is left out, so that its default applies.
export function collect(fields, inputs) {
  const values = {};
  const errors = {};
  for (const f of fields) {
    const raw = inputs[f.name];
    if (f.type !== 'boolean' && (raw === '' || raw === undefined)) {
      if (f.required) errors[f.name] = 'Required.';
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
  if (f.enum) return JSON.parse(raw);
  switch (f.type) {
    case 'boolean':
      return !!raw;
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

// SchemaForm shows one input per field; inputs and errors are the caller's state.
export function SchemaForm({ fields, inputs, errors = {}, onInput, idPrefix = 'f' }) {
  if (!fields.length) return html`<p class="muted">No parameters.</p>`;
  return html`<div class="schema-form">${fields.map((f) => {
    const id = `${idPrefix}-${f.name}`;
    const set = (v) => onInput({ ...inputs, [f.name]: v });
    const label = html`${f.name}${f.required && html`<span class="req" title="required"> *</span>`}${f.secret && html` <span class="tag">secret</span>`}`;
    const hint = [f.description, f.type !== 'any' && f.type].filter(Boolean).join(' · ');
    let input;
    if (f.enum) {
      input = html`<select id=${id} name=${f.name} value=${inputs[f.name]} onChange=${(e) => set(e.target.value)}>
        ${!f.required && html`<option value="">(default)</option>`}
        ${f.enum.map((v) => html`<option value=${JSON.stringify(v)}>${typeof v === 'string' ? v : JSON.stringify(v)}</option>`)}
      </select>`;
    } else if (f.type === 'boolean') {
      input = html`<input id=${id} name=${f.name} type="checkbox" checked=${!!inputs[f.name]} onChange=${(e) => set(e.target.checked)} />`;
    } else if (f.type === 'object' || f.type === 'array') {
      input = html`<textarea id=${id} name=${f.name} rows="4" spellcheck="false" value=${inputs[f.name]} onInput=${(e) => set(e.target.value)}></textarea>`;
    } else {
      const type = f.secret ? 'password' : f.type === 'integer' || f.type === 'number' ? 'number' : 'text';
      input = html`<input id=${id} name=${f.name} type=${type} step=${f.type === 'number' ? 'any' : undefined}
        autocomplete=${f.secret ? 'new-password' : 'off'} value=${inputs[f.name]} onInput=${(e) => set(e.target.value)} />`;
    }
    return html`<${Field} id=${id} label=${label} hint=${hint} error=${errors[f.name]}>${input}<//>`;
  })}</div>`;
}
