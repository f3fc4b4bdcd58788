// A workflow's page: its tasks as a graph that follows the workflow live, the inquiries it
// waits on, a table of the same tasks (for narrow screens and screen readers), the selected
// task's executions and result, and pause, resume and cancel for operators.

import { html, useMemo, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link } from '../lib/router.js';
import { useStream } from '../lib/stream.js';
import { Button, Confirm, ErrorBox, Json, Loading, Page, RefLink, Status, Table, Time, duration, useAsync, useCan, useThrottled } from '../lib/ui.js';
import { WorkflowGraph, graphOf, taskState } from './workflow-graph.js';

const ended = ['completed', 'failed', 'cancelled', 'timeout', 'abandoned'];
const cancellable = ['requested', 'scheduling', 'scheduled', 'running', 'pausing', 'paused'];

export function Workflow({ id }) {
  const exec = useAsync(() => api.get(`/executions/${id}`), [id]);
  const ref = exec.data?.action_ref;
  // The definition is the action's as registered now; a task the running copy has and it
  // lacks still shows, from the view, without edges.
  const action = useAsync(() => (ref ? api.get(`/actions/${encodeURIComponent(ref)}`).catch((err) => (err.status === 404 ? null : Promise.reject(err))) : undefined), [ref]);
  const asking = useAsync(() => api.get('/inquiries', { workflow_id: id, status: 'pending', per_page: 20 }), [id]);
  const reread = useThrottled(() => {
    exec.reload();
    asking.reload();
  }, 300);
  useStream({ execution_id: id }, { onEvent: reread, onOpen: reread });
  return html`<${Loading} state=${exec}>${(e) => html`<${WorkflowPage} exec=${e} action=${action} asking=${asking.data?.data || []} reload=${exec.reload} />`}<//>`;
}

function WorkflowPage({ exec, action, asking, reload }) {
  const operator = useCan('operator');
  const [selected, setSelected] = useState(null);
  const view = exec.workflow;
  const definition = action.data?.workflow;
  const graph = useMemo(() => graphOf(definition, view), [definition, view]);
  const arrivalsOf = (name) => (view?.tasks || []).filter((t) => t.name === name);
  const act = (verb) => async () => {
    await api.post(`/executions/${exec.id}/${verb}`);
    reload();
  };
  const controls = operator && html`
    ${exec.status === 'running' && html`<${Button} onClick=${act('pause')}>Pause<//>`}
    ${['pausing', 'paused'].includes(exec.status) && html`<${Button} kind="primary" onClick=${act('resume')}>Resume<//>`}
    ${cancellable.includes(exec.status) && html`<${Confirm} question="Cancel the workflow and its running tasks?" onConfirm=${act('cancel')}>Cancel<//>`}`;
  const parent = exec.task_name && exec.parent_id;
  return html`<${Page} title=${`Workflow ${exec.id}`} actions=${html`<span class="wf-status" aria-live="polite">Status <${Status} status=${exec.status} /></span>${controls}`}>
    <dl class="props wf-props">
      <dt>Action</dt><dd><${RefLink} kind="actions" value=${exec.action_ref} /></dd>
      <dt>Execution</dt><dd><${Link} href=${`/executions/${exec.id}`}>${exec.id}<//></dd>
      ${parent && html`<dt>Task of</dt><dd><${Link} href=${`/workflows/${parent}`}>workflow ${parent}<//> (task ${exec.task_name})</dd>`}
      <dt>Started</dt><dd><${Time} value=${exec.started_at || exec.created} /></dd>
      <dt>Duration</dt><dd>${duration(exec.started_at || exec.created, exec.finished_at)}</dd>
      ${exec.reason && html`<dt>Reason</dt><dd>${exec.reason}</dd>`}
    </dl>
    ${asking.length > 0 && html`<div class="wf-asking" role="status">${asking.map((q) => html`<p>
      Waiting for an answer: <strong>${q.prompt}</strong> <${Link} class="btn primary" href=${`/inquiries/${q.id}`}>Answer inquiry ${q.id}<//></p>`)}</div>`}
    <${ErrorBox} error=${action.error} />
    ${!view && !ended.includes(exec.status) && html`<p class="muted">The workflow has not started yet.</p>`}
    ${!view && ended.includes(exec.status) && !definition && html`<p class="muted">No tasks: this execution is no workflow, or it ended before it started. See <${Link} href=${`/executions/${exec.id}`}>its execution page<//>.</p>`}
    ${graph.nodes.length > 0 && html`<${WorkflowGraph} graph=${graph} arrivalsOf=${arrivalsOf} selected=${selected} onSelect=${(n) => setSelected(n === selected ? null : n)} />`}
    ${selected && html`<${TaskDetail} name=${selected} node=${graph.nodes.find((n) => n.name === selected)} arrivals=${arrivalsOf(selected)} asking=${asking} onClose=${() => setSelected(null)} />`}
    <h2>Tasks</h2>
    <${TaskTable} graph=${graph} arrivalsOf=${arrivalsOf} onSelect=${setSelected} />
    ${exec.result !== null && exec.result !== undefined && html`<h2>Output</h2><${Json} value=${exec.result} />`}
    ${view?.vars && Object.keys(view.vars).length > 0 && html`<details class="wf-vars"><summary>Variables</summary><${Json} value=${view.vars} /></details>`}
  <//>`;
}

// ExecutionLinks links a task's executions: a nested workflow's to its own workflow page.
function ExecutionLinks({ arrival }) {
  if (!arrival.executions.length) return html`<span class="muted">none yet</span>`;
  return html`<span class="wf-links">${arrival.executions.map((x) => (arrival.nested
    ? html`<span><${Link} href=${`/workflows/${x}`}>workflow ${x}<//> (<${Link} href=${`/executions/${x}`}>execution<//>)</span>`
    : html`<${Link} href=${`/executions/${x}`}>${x}<//>`))}</span>`;
}

function TaskTable({ graph, arrivalsOf, onSelect }) {
  const rows = graph.nodes.filter((n) => !n.pseudo);
  return html`<${Table} rowKey=${(n) => n.name} rows=${rows} empty="No tasks." columns=${[
    { label: 'Task', cell: (n) => html`<button class="linkish" onClick=${() => onSelect(n.name)}>${n.name}</button>` },
    { label: 'Action', cell: (n) => (n.action ? html`<${RefLink} kind="actions" value=${n.action} />` : html`<span class="muted">—</span>`) },
    { label: 'Status', cell: (n) => {
      const st = taskState(arrivalsOf(n.name));
      return st.status ? html`<${Status} status=${st.status} /> <span class="muted">${st.label.split(' · ').slice(1).join(' · ')}</span>` : html`<span class="muted">not reached</span>`;
    } },
    { label: 'Executions', cell: (n) => {
      const arrivals = arrivalsOf(n.name);
      return arrivals.length ? arrivals.map((a) => html`<${ExecutionLinks} arrival=${a} key=${a.seq} />`) : html`<span class="muted">—</span>`;
    } },
    { label: 'Next', cell: (n) => {
      const next = graph.edges.filter((e) => e.from === n.name);
      return next.length ? next.map((e) => html`<div key=${e.to}>${e.to} <span class="muted">when ${e.whens.join(' | ')}</span></div>`) : html`<span class="muted">—</span>`;
    } },
  ]} />`;
}

// TaskDetail shows every arrival at the selected task: its status, executions and result.
function TaskDetail({ name, node, arrivals, asking, onClose }) {
  const questions = asking.filter((q) => arrivals.some((a) => a.executions.includes(q.execution_id)));
  return html`<section class="card wf-detail" aria-label=${`Task ${name}`}>
    <header class="page-head"><h2>Task ${name}</h2><button class="btn ghost" onClick=${onClose}>Close</button></header>
    ${node?.action && html`<p>Runs <${RefLink} kind="actions" value=${node.action} />${node.task?.with ? ' once per item' : ''}${node.task?.join ? `, joins ${node.task.join} arrivals` : ''}.</p>`}
    ${questions.map((q) => html`<p><${Link} class="btn primary" href=${`/inquiries/${q.id}`}>Answer inquiry ${q.id}<//> ${q.prompt}</p>`)}
    ${!arrivals.length && html`<p class="muted">Not reached yet.</p>`}
    ${arrivals.map((a) => html`<div class="wf-arrival" key=${a.seq}>
      <h3>Arrival ${a.seq} <${Status} status=${a.status} />${a.item_count > 1 ? html` <span class="muted">${a.items_ended}/${a.item_count} items ended</span>` : ''}</h3>
      <p>Executions: <${ExecutionLinks} arrival=${a} /></p>
      ${a.result !== undefined && html`<${Json} value=${a.result} />`}
    </div>`)}
  </section>`;
}
