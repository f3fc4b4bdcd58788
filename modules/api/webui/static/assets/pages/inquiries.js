// Inquiries: the questions executions wait on. The list shows the pending ones unless its
// filter says otherwise; an inquiry's page shows its question and, to those it allows, a
// form built from its JSON Schema; once answered, timed out or cancelled, what became of it.

import { html, useContext, useMemo } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { fieldsOfJSONSchema, ParamsForm } from '../lib/form.js';
import { FilterForm, useQueryFilters } from '../lib/filters.js';
import { Link, setQuery } from '../lib/router.js';
import { useStream } from '../lib/stream.js';
import { Json, Loading, Page, Pager, Session, Status, Table, Time, useAsync, useThrottled } from '../lib/ui.js';

// No status in the address means pending: those are the ones someone has to act on.
const filterFields = [{ name: 'status', label: 'Status', type: 'select', options: [
  ['', 'pending'], ['responded', 'responded'], ['timed_out', 'timed out'], ['cancelled', 'cancelled'], ['all', 'all'],
] }];

// mayAnswer mirrors the API's rule: an admin always; an identity the inquiry names, or whose
// role it names; with neither, any operator.
function mayAnswer(inq, session) {
  if (!session) return false;
  if (session.role === 'admin' || inq.users?.includes(session.login) || inq.roles?.includes(session.role)) return true;
  return !inq.users?.length && !inq.roles?.length && session.role === 'operator';
}

function answerers(inq) {
  const who = [];
  if (inq.roles?.length) who.push(`roles ${inq.roles.join(', ')}`);
  if (inq.users?.length) who.push(`users ${inq.users.join(', ')}`);
  return who.length ? `${who.join(' or ')}, and admins` : 'operators and admins';
}

function BelongsTo({ inq }) {
  return html`<span class="inq-links">
    ${inq.workflow_id && html`<${Link} href=${`/workflows/${inq.workflow_id}`}>workflow ${inq.workflow_id}<//>`}
    <${Link} href=${`/executions/${inq.execution_id}`}>execution ${inq.execution_id}<//>
  </span>`;
}

export function Inquiries() {
  const filters = useQueryFilters(['status']);
  const status = filters.values.status || 'pending';
  const { page } = filters;
  const session = useContext(Session);
  const list = useAsync(() => api.get('/inquiries', { status: status === 'all' ? '' : status, page, per_page: 25 }), [status, page]);
  const reread = useThrottled(list.reload, 300);
  // Unfiltered, for inquiries are not filtered apart from executions; only theirs count.
  useStream({}, { onEvent: (name) => name === 'inquiry' && reread(), onOpen: reread });
  return html`<${Page} title="Inquiries">
    <${FilterForm} filters=${filters} fields=${filterFields} id="inquiries" label="Filter the inquiries" />
    <${Loading} state=${list}>${(res) => html`
      <${Table} rows=${res.data} empty=${status === 'pending' ? 'No question waits for an answer.' : 'No inquiries.'} columns=${[
        { label: 'Question', cell: (q) => html`<${Link} href=${`/inquiries/${q.id}`}>${q.prompt || `inquiry ${q.id}`}<//>` },
        { label: 'Status', cell: (q) => html`<${Status} status=${q.status} />` },
        { label: 'Belongs to', cell: (q) => html`<${BelongsTo} inq=${q} />` },
        { label: 'Who may answer', cell: (q) => answerers(q) },
        { label: 'Times out', cell: (q) => (q.status === 'pending' ? html`<${Time} value=${q.timeout_at} />` : html`<span class="muted">ended <${Time} value=${q.ended_at} /></span>`) },
        { label: '', cell: (q) => q.status === 'pending' && mayAnswer(q, session) && html`<${Link} class="btn primary" href=${`/inquiries/${q.id}`}>Answer<//>` },
      ]} />
      <${Pager} pagination=${res.pagination} onPage=${(p) => setQuery({ page: p })} />`}<//>
  <//>`;
}

export function Inquiry({ id }) {
  const inq = useAsync(() => api.get(`/inquiries/${id}`), [id]);
  const reread = useThrottled(inq.reload, 200);
  const execution = inq.data?.execution_id;
  useStream(execution ? { execution_id: execution } : null, { onEvent: (name) => name === 'inquiry' && reread(), onOpen: reread });
  return html`<${Page} title=${`Inquiry ${id}`}>
    <${Loading} state=${inq}>${(q) => html`<${InquiryView} inq=${q} onAnswered=${inq.reload} />`}<//>
  <//>`;
}

function InquiryView({ inq, onAnswered }) {
  const session = useContext(Session);
  return html`
    <p class="inq-prompt">${inq.prompt}</p>
    <dl class="props">
      <dt>Status</dt><dd><${Status} status=${inq.status} /></dd>
      <dt>Belongs to</dt><dd><${BelongsTo} inq=${inq} /></dd>
      <dt>Who may answer</dt><dd>${answerers(inq)}</dd>
      <dt>Asked</dt><dd><${Time} value=${inq.created} /></dd>
      ${inq.status === 'pending' ? html`<dt>Times out</dt><dd><${Time} value=${inq.timeout_at} /></dd>` : html`<dt>Ended</dt><dd><${Time} value=${inq.ended_at} /></dd>`}
      ${inq.responded_by && html`<dt>Answered by</dt><dd>${inq.responded_by}</dd>`}
    </dl>
    ${inq.status === 'responded' && html`<h2>Answer</h2><${Json} value=${inq.response} />`}
    ${inq.status === 'timed_out' && html`<p class="muted">Nobody answered in time.</p>`}
    ${inq.status === 'pending' && (mayAnswer(inq, session)
      ? html`<${AnswerForm} inq=${inq} onAnswered=${onAnswered} />`
      : html`<p class="muted">Only ${answerers(inq)} may answer; you are ${session?.login} (${session?.role}).</p>`)}`;
}

// AnswerForm builds its fields from the inquiry's schema, required ones first; a schema that
// is not an object with properties is answered as JSON. The API's complaint about a part of
// the answer (error.field response.NAME) shows at its field.
function AnswerForm({ inq, onAnswered }) {
  const schema = inq.schema || {};
  const whole = !schema.properties;
  const fields = useMemo(() => (whole ? [{ name: 'response', type: 'any', required: true, description: 'The answer, as JSON.' }] : fieldsOfJSONSchema(schema)), [inq.id]);
  const send = async (values) => {
    await api.post(`/inquiries/${inq.id}/respond`, { response: whole ? values.response : values });
    onAnswered();
  };
  return html`<${ParamsForm} fields=${fields} submitLabel="Send the answer" onSubmit=${send} idPrefix="answer" at=${whole ? '' : 'response'}
    formClass="card inq-form" label="Answer"><h2>Answer</h2><//>`;
}
