// One execution: what it was given (secrets as the API masks them), how it went (status
// timeline, retries), what it prints while it runs and what it left, its trace, and for
// operators cancel and rerun with edited parameters. Live through the stream: its status
// changes (never shown moving backwards: lib/status.js) and its output chunks, deduplicated
// by seq.

import { html, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link, navigate } from '../lib/router.js';
import { LiveState, useLive } from '../lib/live.js';
import { cancellable, ended, furthest, sighting } from '../lib/status.js';
import { fieldsOfParameters, ParamsForm } from '../lib/form.js';
import { asText, Confirm, duration, Json, Loading, Page, RefLink, Status, Table, useAsync, useCan } from '../lib/ui.js';
import { Requester } from './executions.js';
import { Trace } from './trace.js';

// Clock shows when a step happened as a time of day (with the date when not today), the
// full date and time on hover.
function Clock({ value }) {
  if (!value) return html`<span class="muted">—</span>`;
  const d = new Date(value);
  const today = d.toDateString() === new Date().toDateString();
  const text = today ? d.toLocaleTimeString() : d.toLocaleString();
  return html`<time datetime=${value} title=${d.toLocaleString()}>${text}</time>`;
}

// Timeline lists the steps at their clock times, each with the time it took since the step
// before.
function Timeline({ exec }) {
  const steps = [
    ['Created', exec.created],
    ['Admitted', exec.admitted_at],
    ['Started', exec.started_at],
    ['Finished', exec.finished_at],
  ];
  let before = null;
  return html`<ol class="timeline">${steps.map(([label, at]) => {
    const took = at && before ? duration(before, at) : '';
    if (at) before = at;
    return html`<li class=${at ? 'done' : 'pending'}>
      <span class="step">${label}</span>
      <${Clock} value=${at} />
      ${took && html`<span class="muted"> (+${took})</span>`}
    </li>`;
  })}</ol>
  ${exec.queue_position && html`<p>Waiting in its policy's queue, position ${exec.queue_position}.</p>`}
  <${Retries} exec=${exec} />`;
}

function Retries({ exec }) {
  const attempts = exec.attempts || [];
  if (attempts.length <= 1 && !exec.retry_at && !exec.retry_of) return null;
  return html`<div class="retries">
    <p>Attempt ${exec.attempt || 1}${exec.retry_of && html` of the request first tried as <${Link} href=${`/executions/${exec.retry_of}`}>#${exec.retry_of}<//>`}.
      ${exec.retry_at && html` Next attempt due at <${Clock} value=${exec.retry_at} />.`}</p>
    ${attempts.length > 1 && html`<ul class="attempts">${attempts.map((a) => html`<li key=${a.id}>
      ${a.id === exec.id ? html`<strong>#${a.id}</strong>` : html`<${Link} href=${`/executions/${a.id}`}>#${a.id}<//>`}
      attempt ${a.attempt} <${Status} status=${a.status} />${a.reason && html` <span class="muted">${a.reason}</span>`}
    </li>`)}</ul>`}
  </div>`;
}

function Parameters({ params }) {
  const rows = Object.entries(params || {}).map(([name, value]) => ({ name, value }));
  return html`<${Table} rowKey=${(r) => r.name} rows=${rows} empty="No parameters." columns=${[
    { label: 'Name', cell: (r) => html`<code>${r.name}</code>` },
    { label: 'Value', cell: (r) => html`<code class="value">${asText(r.value)}</code>` },
  ]} />`;
}

// Output shows the live chunks in seq order, stdout and stderr told apart, until the
// execution has ended with its output stored; then the stored stdout and stderr.
function Output({ exec, chunks }) {
  const r = exec.result && typeof exec.result === 'object' ? exec.result : null;
  if (ended(exec.status) && r && ('stdout' in r || 'stderr' in r)) {
    return html`<div class="output-streams">
      <h3>stdout</h3><pre class="output" data-stream="stdout">${r.stdout || html`<span class="muted">(nothing)</span>`}</pre>
      ${r.stderr && html`<h3>stderr</h3><pre class="output" data-stream="stderr"><span class="stderr">${r.stderr}</span></pre>`}
    </div>`;
  }
  const list = [...chunks.values()].sort((a, b) => a.seq - b.seq);
  const running = !ended(exec.status);
  if (!list.some((c) => c.text)) {
    return html`<p class="muted">${running ? 'No output yet.' : 'It printed nothing.'}</p>`;
  }
  const gaps = list.some((c, i) => (i === 0 ? c.seq > 1 : c.seq !== list[i - 1].seq + 1));
  return html`<div class="output-streams">
    <p class="legend muted">Live: <span>stdout</span>, <span class="stderr">stderr</span>${gaps && ' · some output was not received live'}${list.some((c) => c.cut) && ' · the live output reached its bound'}</p>
    <pre class="output live" data-stream="live">${list.map((c) => html`<span key=${c.seq} class=${c.stream}>${c.text}</span>`)}</pre>
  </div>`;
}

function Result({ exec }) {
  const r = exec.result;
  if (r === null || r === undefined) return html`<p class="muted">${ended(exec.status) ? 'No result.' : 'Not ended yet.'}</p>`;
  if (typeof r !== 'object' || Array.isArray(r)) return html`<${Json} value=${r} />`;
  const { stdout, stderr, data, error, exit_code: code, duration_ms: ms, timed_out: timedOut, cancelled, succeeded, ...rest } = r;
  return html`<dl class="props">
      ${succeeded !== undefined && html`<dt>Succeeded</dt><dd>${succeeded ? 'yes' : 'no'}</dd>`}
      ${code !== undefined && html`<dt>Exit code</dt><dd class="mono">${code}</dd>`}
      ${ms !== undefined && html`<dt>Ran</dt><dd>${ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`}</dd>`}
      ${timedOut && html`<dt>Timed out</dt><dd>yes</dd>`}
      ${cancelled && html`<dt>Cancelled</dt><dd>yes</dd>`}
      ${error && html`<dt>Error</dt><dd class="field-error">${error}</dd>`}
    </dl>
    ${data !== undefined && html`<h3>Data</h3><${Json} value=${data} />`}
    ${Object.keys(rest).length > 0 && html`<h3>Other</h3><${Json} value=${rest} />`}`;
}

function Details({ exec, action }) {
  const workflow = exec.workflow || action?.runner_type === 'workflow';
  return html`<dl class="props">
    <dt>Action</dt><dd><${RefLink} kind="actions" value=${exec.action_ref} /></dd>
    <dt>Status</dt><dd><${Status} status=${exec.status} />${exec.reason && html` <span class="muted">${exec.reason}</span>`}</dd>
    <dt>Requested by</dt><dd><${Requester} by=${exec.requested_by} /></dd>
    <dt>Worker</dt><dd class="mono">${exec.worker || '—'}</dd>
    ${exec.worker_selector && html`<dt>Worker selector</dt><dd>${Object.entries(exec.worker_selector).map(([k, v]) => html`<span class="tag mono">${k}=${v}</span> `)}</dd>`}
    <dt>Timeout</dt><dd>${exec.timeout_seconds ? `${exec.timeout_seconds} s` : 'none'}</dd>
    ${exec.parent_id && (exec.task_name
      ? html`<dt>Workflow</dt><dd>task <code>${exec.task_name}</code>${exec.task_item !== undefined && `[${exec.task_item}]`} of <${Link} href=${`/workflows/${exec.parent_id}`}>workflow #${exec.parent_id}<//></dd>`
      : html`<dt>Rerun of</dt><dd>execution <${Link} href=${`/executions/${exec.parent_id}`}>#${exec.parent_id}<//></dd>`)}
    ${workflow && html`<dt>Tasks</dt><dd><${Link} href=${`/workflows/${exec.id}`}>Workflow graph<//></dd>`}
    ${exec.enforcement_id && html`<dt>Enforcement</dt><dd>#${exec.enforcement_id}</dd>`}
    ${exec.trace_id && html`<dt>Trace</dt><dd class="mono">${exec.trace_id}</dd>`}
  </dl>`;
}

// Rerun's form is built once, from the action's schema: it waits for the action, and falls
// back to the execution's own parameter names only when the action is gone.
function Rerun({ exec, action: actionState, onClose }) {
  if (!actionState.error && actionState.data?.ref !== exec.action_ref) {
    return html`<section class="card rerun-form"><p class="muted" aria-busy="true">Loading…</p></section>`;
  }
  const action = actionState.error ? null : actionState.data;
  const fields = action
    ? fieldsOfParameters(action.parameters)
    : Object.keys(exec.parameters || {}).map((name) => ({ name, type: 'any' }));
  const submit = async (values) => {
    const next = await api.post(`/executions/${exec.id}/rerun`, { parameters: values });
    navigate(`/executions/${next.id}`);
  };
  return html`<section class="card rerun-form" aria-labelledby="rerun-title">
    <h2 id="rerun-title">Rerun with these parameters</h2>
    <${ParamsForm} fields=${fields} given=${exec.parameters} submitLabel="Rerun" onSubmit=${submit} keepMasked idPrefix="rerun" />
    <button class="btn ghost" type="button" onClick=${onClose}>Close</button>
  </section>`;
}

// Execution keys the page by the id, so that moving to another execution (a rerun) starts
// from nothing: no status or output of the last one.
export function Execution({ id }) {
  return html`<${ExecutionPage} key=${id} id=${id} />`;
}

function ExecutionPage({ id }) {
  const num = Number(id);
  const canOperate = useCan('operator');
  const state = useAsync(() => api.get(`/executions/${num}`), [num]);
  const actionRef = state.data?.action_ref;
  const action = useAsync(async () => (actionRef ? api.get(`/actions/${encodeURIComponent(actionRef)}`) : null), [actionRef]);
  // liveStatus is the stream's last sighting of the status; the one shown is the further on
  // of it and the last read's, by rank and, between running, pausing and paused, by time.
  const [liveStatus, setLiveStatus] = useState(null);
  const [chunks, setChunks] = useState(() => new Map());
  const [rerunning, setRerunning] = useState(false);
  const live = useLive(state.reload, {
    params: { execution_id: num, output: true },
    wait: 300,
    onEvent: (name, d) => {
      if (name === 'execution' && d.id === num) setLiveStatus((s) => furthest(s, { status: d.status, at: d.at }));
      else if (name === 'output' && d.execution_id === num) setChunks((m) => (m.has(d.seq) ? m : new Map(m).set(d.seq, d)));
    },
  });
  const exec = state.data && { ...state.data, status: furthest(sighting(state.data), liveStatus).status };
  const cancel = async () => {
    await api.post(`/executions/${num}/cancel`);
    state.reload();
  };
  const actions = html`
    <${LiveState} state=${live} />
    ${canOperate && exec && cancellable(exec) && html`<${Confirm} onConfirm=${cancel} question="Cancel this execution?">Cancel<//>`}
    ${canOperate && exec && html`<button class="btn" aria-expanded=${rerunning} onClick=${() => setRerunning(!rerunning)}>Rerun…</button>`}`;
  return html`<${Page} title=${`Execution #${num}`} actions=${actions}>
    <${Loading} state=${state}>${() => html`
      <p class="exec-summary" role="status"><span class="mono">${exec.action_ref}</span> <${Status} status=${exec.status} /></p>
      ${rerunning && html`<${Rerun} exec=${exec} action=${action} onClose=${() => setRerunning(false)} />`}
      <div class="grid2">
        <section class="card" aria-label="Details"><${Details} exec=${exec} action=${action.data} /></section>
        <section class="card" aria-labelledby="timeline-title"><h2 id="timeline-title">Timeline</h2><${Timeline} exec=${exec} /></section>
      </div>
      <h2>Parameters</h2>
      <${Parameters} params=${exec.parameters} />
      <h2>Output</h2>
      <section class="exec-output"><${Output} exec=${exec} chunks=${chunks} /></section>
      <h2>Result</h2>
      <section class="card exec-result"><${Result} exec=${exec} /></section>
      ${exec.trace_id && html`<h2>Trace</h2><${Trace} traceId=${exec.trace_id} current=${num} version=${exec.status} />`}`}<//>
  <//>`;
}
