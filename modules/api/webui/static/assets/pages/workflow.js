// A workflow's page: its tasks as a graph that follows the workflow live, the inquiries it
// waits on, a table of the same tasks (for narrow screens and screen readers), the selected
// task's executions and result, and pause, resume and cancel for operators. Its status, read
// and heard on the stream, is shown as lib/status.js says: never moving backwards.

import { html, useEffect, useMemo, useRef, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link } from '../lib/router.js';
import { LiveState, useLive } from '../lib/live.js';
import { cancellable, ended, furthest, sighting } from '../lib/status.js';
import { Button, Confirm, ErrorBox, Json, Loading, Page, RefLink, Status, Table, Time, duration, useAsync, useCan } from '../lib/ui.js';
import { WorkflowGraph, graphOf, taskState } from './workflow-graph.js';

// Workflow keys the page by the id: another workflow's page starts from nothing.
export function Workflow({ id }) {
  return html`<${WorkflowLive} key=${id} id=${id} />`;
}

function WorkflowLive({ id }) {
  const exec = useAsync(() => api.get(`/executions/${id}`), [id]);
  const ref = exec.data?.action_ref;
  // The definition is the action's as registered now; a task the running copy has and it
  // lacks still shows, from the view, without edges.
  const action = useAsync(() => (ref ? api.get(`/actions/${encodeURIComponent(ref)}`).catch((err) => (err.status === 404 ? null : Promise.reject(err))) : undefined), [ref]);
  const asking = useAsync(() => api.get('/inquiries', { workflow_id: id, status: 'pending', per_page: 20 }), [id]);
  const [heard, setHeard] = useState(null);
  const live = useLive(() => Promise.all([exec.reload(), asking.reload()]), {
    params: { execution_id: id },
    events: ['execution', 'inquiry'],
    wait: 300,
    onEvent: (name, d) => {
      if (name === 'execution' && d.id === Number(id)) setHeard((s) => furthest(s, { status: d.status, at: d.at }));
    },
  });
  return html`<${Loading} state=${exec}>${(e) => html`<${WorkflowPage} exec=${{ ...e, status: furthest(sighting(e), heard).status }}
    action=${action} asking=${asking.data?.data || []} reload=${exec.reload} live=${live} />`}<//>`;
}

function WorkflowPage({ exec, action, asking, reload, live }) {
  const operator = useCan('operator');
  const [selected, setSelected] = useState(null);
  // picked counts the choices made in the table in a row: each brings the task's details into
  // view; a choice in the graph (0) leaves the focus there.
  const [picked, setPicked] = useState(0);
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
    ${cancellable(exec) && html`<${Confirm} question="Cancel the workflow and its running tasks?" onConfirm=${act('cancel')}>Cancel<//>`}`;
  const parent = exec.task_name && exec.parent_id;
  return html`<${Page} title=${`Workflow ${exec.id}`} actions=${html`<${LiveState} state=${live} /><span class="wf-status" role="status">Status <${Status} status=${exec.status} /></span>${controls}`}>
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
    ${!view && !ended(exec.status) && html`<p class="muted">The workflow has not started yet.</p>`}
    ${!view && ended(exec.status) && !definition && html`<p class="muted">No tasks: this execution is no workflow, or it ended before it started. See <${Link} href=${`/executions/${exec.id}`}>its execution page<//>.</p>`}
    ${graph.nodes.length > 0 && html`<${WorkflowGraph} graph=${graph} arrivalsOf=${arrivalsOf} selected=${selected} onSelect=${(n) => {
      setSelected(n === selected ? null : n);
      setPicked(0);
    }} />`}
    ${selected && html`<${TaskDetail} name=${selected} node=${graph.nodes.find((n) => n.name === selected)} arrivals=${arrivalsOf(selected)} asking=${asking}
      picked=${picked} onClose=${() => setSelected(null)} />`}
    <h2>Tasks</h2>
    <${TaskTable} graph=${graph} arrivalsOf=${arrivalsOf} onSelect=${(n) => {
      setSelected(n);
      setPicked((p) => p + 1);
    }} />
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
// Chosen in the table (picked changes), it scrolls into view and takes the focus, for the
// table sits below it.
function TaskDetail({ name, node, arrivals, asking, picked, onClose }) {
  const questions = asking.filter((q) => arrivals.some((a) => a.executions.includes(q.execution_id)));
  const heading = useRef(null);
  useEffect(() => {
    if (!picked) return;
    heading.current?.scrollIntoView({ block: 'start' });
    heading.current?.focus({ preventScroll: true });
  }, [picked]);
  return html`<section class="card wf-detail" aria-label=${`Task ${name}`}>
    <header class="page-head"><h2 tabindex="-1" ref=${heading}>Task ${name}</h2><button class="btn ghost" onClick=${onClose}>Close</button></header>
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
