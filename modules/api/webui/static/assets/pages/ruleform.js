// A rule's form, to edit one or create one: its trigger's and its action's parameters come as
// fields built from their schemas, each a text input because any value may be a {{ }}
// template. The API checks the rule whole and names the field at fault (error.field), which
// the form shows beside that field (lib/errors.js useSubmit); a secret parameter comes masked
// and, sent back so, keeps its value; its input never shows what is typed, whatever its type.

import { html, useEffect, useMemo, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Invalid, useSubmit } from '../lib/errors.js';
import { describedBy, FieldLabel, fieldsOfParameters, MASK } from '../lib/form.js';
import { listAll } from '../lib/listall.js';
import { asText, ErrorBox, Field, Notice } from '../lib/ui.js';

const isBlock = (f) => f.type === 'object' || f.type === 'array';

// toText shows a parameter's value as its input holds it: text as it is, anything else as JSON.
function toText(f, v) {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v, null, isBlock(f) && !f.secret ? 2 : 0);
}

// fromText reads an input back: a template or a string parameter's text as it is, a secret
// still masked as it is (the API keeps its value), JSON where it parses, else the text, for
// the API to judge against the parameter's type.
function fromText(f, text) {
  if (text.includes('{{') || f.type === 'string' || (f.secret && text === MASK)) return text;
  try {
    return JSON.parse(text);
  } catch {
    if (isBlock(f)) throw new Error(`Not JSON: an ${f.type} is needed, or one {{ }} template.`);
    return text;
  }
}

// textsOf fills the inputs of a schema's parameters from given values, and keeps any other
// value given (a rule written before its action changed) so that nothing is sent unseen.
function textsOf(parameters, given = {}) {
  const out = Object.fromEntries(fieldsOfParameters(parameters).map((f) => [f.name, toText(f, given[f.name])]));
  for (const [name, value] of Object.entries(given)) if (!(name in out)) out[name] = toText({ type: 'any' }, value);
  return out;
}

// useParameters loads the parameter schema of the trigger or action ref names (kind
// triggers or actions); known is false when there is none by that ref.
function useParameters(kind, ref) {
  const [state, setState] = useState({ ref: null, parameters: {}, known: true });
  useEffect(() => {
    let live = true;
    if (!ref) {
      setState({ ref, parameters: {}, known: false });
      return undefined;
    }
    api.get(`/${kind}/${encodeURIComponent(ref)}`).then(
      (c) => live && setState({ ref, parameters: c.parameters || {}, known: true }),
      () => live && setState({ ref, parameters: {}, known: false }),
    );
    return () => {
      live = false;
    };
  }, [kind, ref]);
  return state;
}

// paramFields are the schema's parameters, and any other name the inputs hold.
function paramFields(parameters, inputs) {
  const fields = fieldsOfParameters(parameters);
  const extra = Object.keys(inputs).filter((n) => !(n in (parameters || {})));
  return [...fields, ...extra.map((name) => ({ name, type: 'any', description: 'not a declared parameter' }))];
}

function collectParams(prefix, fields, inputs, errors) {
  const out = {};
  for (const f of fields) {
    const text = inputs[f.name] ?? '';
    if (text === '') {
      if (f.required && f.default === undefined) errors[`${prefix}.${f.name}`] = 'Required.';
      continue;
    }
    try {
      out[f.name] = fromText(f, text);
    } catch (err) {
      errors[`${prefix}.${f.name}`] = err.message;
    }
  }
  return out;
}

function ParamInputs({ prefix, fields, inputs, onInput, errors }) {
  if (!fields.length) return html`<p class="muted">No parameters.</p>`;
  return fields.map((f) => {
    const id = `${prefix}-${f.name}`;
    const choices = f.enum || (f.type === 'boolean' ? [true, false] : null);
    const listId = choices ? `${id}-choices` : undefined;
    const hint = [
      f.description,
      f.type !== 'any' && f.type,
      f.enum && `one of ${f.enum.map((v) => JSON.stringify(v)).join(', ')}`,
      f.default !== undefined && `default ${JSON.stringify(f.default)}`,
    ].filter(Boolean).join(' · ');
    const error = errors[`${prefix}.${f.name}`];
    const aria = describedBy(id, { hint, error });
    const set = (e) => onInput({ ...inputs, [f.name]: e.target.value });
    const input = isBlock(f) && !f.secret
      ? html`<textarea id=${id} name=${id} rows="3" spellcheck="false" value=${inputs[f.name]} onInput=${set} ...${aria}></textarea>`
      : html`<input id=${id} name=${id} type=${f.secret ? 'password' : 'text'} list=${f.secret ? undefined : listId} spellcheck="false"
          autocomplete=${f.secret ? 'new-password' : 'off'} value=${inputs[f.name]} onInput=${set} ...${aria} />`;
    return html`<${Field} id=${id} label=${html`<${FieldLabel} f=${f} />`} hint=${hint} error=${error}>
      ${input}${choices && html`<datalist id=${listId}>${choices.map((v) => html`<option value=${asText(v)} />`)}</datalist>`}
    <//>`;
  });
}

function conditionsText(c) {
  return c === null || c === undefined ? '' : JSON.stringify(c, null, 2);
}

// RuleForm edits rule (create: a new one, rule holding defaults), and calls onSaved with
// the API's answer.
export function RuleForm({ rule, create = false, onSaved }) {
  const [v, setV] = useState(() => ({
    ref: rule.ref || '',
    label: rule.label || '',
    description: rule.description || '',
    trigger_ref: rule.trigger_ref || '',
    action_ref: rule.action_ref || '',
    conditions: conditionsText(rule.conditions),
    enabled: rule.enabled !== false,
  }));
  // The refs whose schemas the parameters follow: set when an input is left, not per key.
  const [refs, setRefs] = useState({ trigger: v.trigger_ref, action: v.action_ref });
  const trigger = useParameters('triggers', refs.trigger);
  const action = useParameters('actions', refs.action);
  const [tp, setTp] = useState({});
  const [ap, setAp] = useState({});
  const [saved, setSaved] = useState(false);
  const [known, setKnown] = useState({ triggers: [], actions: [] });

  useEffect(() => {
    Promise.all([listAll('/triggers'), listAll('/actions')]).then(
      ([triggers, actions]) => setKnown({ triggers, actions }),
      () => {},
    );
  }, []);
  // The rule's own values fill the fields once their schema is known; another trigger or
  // action starts from empty fields.
  // The form is shown only once both are filled in: a Save before that would send, or refuse
  // as missing, the values of fields not filled yet.
  const [filled, setFilled] = useState({ trigger: false, action: false });
  useEffect(() => {
    setTp(textsOf(trigger.parameters, trigger.ref === rule.trigger_ref ? rule.trigger_params || {} : {}));
    if (trigger.ref !== null) setFilled((f) => (f.trigger ? f : { ...f, trigger: true }));
  }, [trigger]);
  useEffect(() => {
    setAp(textsOf(action.parameters, action.ref === rule.action_ref ? rule.action_params || {} : {}));
    if (action.ref !== null) setFilled((f) => (f.action ? f : { ...f, action: true }));
  }, [action]);
  // Enabling or disabling the rule beside the form shows here too.
  useEffect(() => setV((cur) => ({ ...cur, enabled: rule.enabled !== false })), [rule.enabled]);

  const tpFields = useMemo(() => paramFields(trigger.parameters, tp), [trigger, tp]);
  const apFields = useMemo(() => paramFields(action.parameters, ap), [action, ap]);
  const knownFields = useMemo(() => new Set([
    'ref', 'label', 'description', 'trigger_ref', 'trigger_params', 'conditions', 'action_ref', 'action_params', 'enabled',
    ...tpFields.map((f) => `trigger_params.${f.name}`), ...apFields.map((f) => `action_params.${f.name}`),
  ]), [tpFields, apFields]);

  const set = (name) => (e) => setV({ ...v, [name]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const refErrors = {
    trigger_ref: refs.trigger && !trigger.known && trigger.ref === refs.trigger ? `No trigger ${refs.trigger}.` : null,
    action_ref: refs.action && !action.known && action.ref === refs.action ? `No action ${refs.action}.` : null,
  };

  const { submit: save, errors, error: top, busy } = useSubmit(knownFields, async () => {
    setSaved(false);
    const found = {};
    const body = {
      label: v.label,
      description: v.description,
      trigger_ref: v.trigger_ref.trim(),
      trigger_params: collectParams('trigger_params', tpFields, tp, found),
      action_ref: v.action_ref.trim(),
      action_params: collectParams('action_params', apFields, ap, found),
      enabled: v.enabled,
    };
    if (create) body.ref = v.ref.trim();
    if (v.conditions.trim() !== '') {
      try {
        body.conditions = JSON.parse(v.conditions);
      } catch (err) {
        found.conditions = `Not JSON: ${err.message}`;
      }
    }
    if (Object.keys(found).length) throw new Invalid(found);
    const answer = create ? await api.post('/rules', body) : await api.put(`/rules/${encodeURIComponent(rule.ref)}`, body);
    setSaved(true);
    onSaved(answer);
  });

  const text = (name, label, hint) => html`<${Field} id=${`rule-${name}`} label=${label} hint=${hint} error=${errors[name]}>
    <input id=${`rule-${name}`} name=${name} value=${v[name]} onInput=${set(name)} ...${describedBy(`rule-${name}`, { hint, error: errors[name] })} />
  <//>`;
  const refInput = (name, kind, list) => html`<${Field} id=${`rule-${name}`} label=${name} error=${errors[name] || refErrors[name]}>
    <input id=${`rule-${name}`} name=${name} list=${`${name}-choices`} required spellcheck="false" value=${v[name]}
      onInput=${set(name)} onChange=${(e) => setRefs({ ...refs, [kind]: e.target.value.trim() })}
      ...${describedBy(`rule-${name}`, { error: errors[name] || refErrors[name] })} />
    <datalist id=${`${name}-choices`}>${list.map((c) => html`<option value=${c.ref}>${c.label || ''}</option>`)}</datalist>
  <//>`;
  if (!filled.trigger || !filled.action) return html`<p class="muted" aria-busy="true">Loading the form…</p>`;
  return html`<form class="rule-form" onSubmit=${save} aria-label=${create ? 'New rule' : 'Edit rule'} novalidate>
    <${ErrorBox} error=${top} />
    ${create && text('ref', 'ref', '<pack>.<name>, in a registered pack')}
    ${text('label', 'label')}
    ${text('description', 'description')}
    <fieldset>
      <legend>Trigger</legend>
      ${refInput('trigger_ref', 'trigger', known.triggers)}
      ${errors.trigger_params && html`<p class="field-error" role="alert">${errors.trigger_params}</p>`}
      <${ParamInputs} prefix="trigger_params" fields=${tpFields} inputs=${tp} onInput=${setTp} errors=${errors} />
    </fieldset>
    <fieldset>
      <legend>Conditions</legend>
      <${Field} id="rule-conditions" label="conditions (JSON)" error=${errors.conditions}
        hint="As in a rule file, in JSON: a list (all hold), {all|any: [...]}, {not: c}, {field, operator, value} or {expression}. Empty: every event matches.">
        <textarea id="rule-conditions" name="conditions" rows="8" spellcheck="false" value=${v.conditions} onInput=${set('conditions')}
          ...${describedBy('rule-conditions', { hint: true, error: errors.conditions })}></textarea>
      <//>
    </fieldset>
    <fieldset>
      <legend>Action</legend>
      ${refInput('action_ref', 'action', known.actions)}
      ${errors.action_params && html`<p class="field-error" role="alert">${errors.action_params}</p>`}
      <p class="hint muted">Values may hold {{ }} templates over the event, such as {{ event.payload.body.name }}.</p>
      <${ParamInputs} prefix="action_params" fields=${apFields} inputs=${ap} onInput=${setAp} errors=${errors} />
    </fieldset>
    <div class="field check">
      <label><input type="checkbox" name="enabled" checked=${v.enabled} onChange=${set('enabled')} /> enabled</label>
    </div>
    <div class="form-actions">
      <button class="btn primary" type="submit" disabled=${busy} aria-busy=${busy}>${create ? 'Create rule' : 'Save'}</button>
      <${Notice}>${saved && 'Saved.'}<//>
    </div>
  </form>`;
}
