// A trace as a tree: the events that started it, the rules each matched, the executions each
// match made, and a workflow's tasks under it; the execution being looked at is marked. A
// trigger has no page of its own: its ref links to the triggers of its pack.

import { html } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link } from '../lib/router.js';
import { Loading, RefLink, Status, Time, useAsync } from '../lib/ui.js';

function TraceExecutions({ list, current }) {
  if (!list?.length) return null;
  return html`<ul>${list.map((e) => html`<li key=${e.id}>
    <span class=${e.id === current ? 'trace-node current' : 'trace-node'} aria-current=${e.id === current ? 'true' : undefined}>
      <${Link} href=${`/executions/${e.id}`}>#${e.id}<//> <span class="mono">${e.action_ref}</span>
      ${e.task_name && html` <span class="muted">task ${e.task_name}${e.task_item !== undefined ? `[${e.task_item}]` : ''}</span>`}
      ${e.attempt > 1 && html` <span class="tag">attempt ${e.attempt}</span>`}
      ${' '}<${Status} status=${e.status} />
      ${e.children?.length ? html` <${Link} href=${`/workflows/${e.id}`}>graph<//>` : ''}
    </span>
    <${TraceExecutions} list=${e.children} current=${current} />
  </li>`)}</ul>`;
}

function TraceTree({ trace, current }) {
  return html`<div class="trace card">
    <ul>
      ${(trace.events || []).map((ev) => html`<li key=${`e${ev.id}`}>
        <span class="trace-node">Event #${ev.id} of <${Link} href=${`/triggers?pack=${encodeURIComponent(ev.trigger_ref.split('.')[0])}`}>${ev.trigger_ref}<//>
          <span class="muted"> from ${ev.source}, <${Time} value=${ev.created} /></span></span>
        <ul>${(ev.enforcements || []).map((en) => html`<li key=${`n${en.id}`}>
          <span class="trace-node">Rule <${RefLink} kind="rules" value=${en.rule_ref} /> matched
            ${en.refused && html` <${Status} tone="bad">refused<//>`}
            ${en.reason && html` <span class="muted">${en.reason}</span>`}</span>
          <${TraceExecutions} list=${en.executions} current=${current} />
        </li>`)}</ul>
        ${!ev.enforcements?.length && html`<p class="muted">No rule matched it.</p>`}
      </li>`)}
    </ul>
    <${TraceExecutions} list=${trace.executions} current=${current} />
    ${trace.truncated && html`<p class="muted">The trace is larger than shown.</p>`}
  </div>`;
}

// Trace reads the trace again whenever version changes (the execution's status, say).
export function Trace({ traceId, current, version }) {
  const state = useAsync(() => api.get(`/traces/${encodeURIComponent(traceId)}`), [traceId, version]);
  return html`<${Loading} state=${state}>${(trace) => html`<${TraceTree} trace=${trace} current=${current} />`}<//>`;
}
