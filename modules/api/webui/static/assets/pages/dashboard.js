// The dashboard: the system at a glance (GET /dashboard), read again whenever the stream
// says an execution changed.

import { html } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { Link } from '../lib/router.js';
import { LiveState, useLive } from '../lib/live.js';
import { statuses } from '../lib/status.js';
import { Loading, Page, RefLink, Status, Table, Time, useAsync } from '../lib/ui.js';

function total(counts) {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

// Counts lists a window's executions per status, in lifecycle order, with a bar for each
// status's share.
function Counts({ label, counts }) {
  const all = total(counts);
  const shown = statuses.filter((s) => counts[s]);
  return html`<section class="card dash-counts" aria-label=${label}>
    <h2>${label} <span class="dash-total" data-total>${all}</span></h2>
    ${shown.length === 0
      ? html`<p class="muted">No executions.</p>`
      : html`<ul>${shown.map((s) => html`<li key=${s}>
          <${Link} href=${`/executions?status=${s}`}><${Status} status=${s} /><//>
          <span class="dash-bar"><span class=${`status-${s}`} style=${{ width: `${(100 * counts[s]) / all}%` }}></span></span>
          <span class="num" data-count=${s}>${counts[s]}</span>
        </li>`)}</ul>`}
  </section>`;
}

function Figure({ label, value, of, href, note }) {
  const body = html`<span class="stat" data-figure=${label}>${value}</span>${of !== undefined && html`<span class="muted"> of ${of}</span>`}`;
  return html`<div class="card dash-figure">
    <div class="muted">${label}</div>
    <div>${href ? html`<${Link} href=${href}>${body}<//>` : body}</div>
    ${note && html`<small class="muted">${note}</small>`}
  </div>`;
}

// Board shows the figures. The day's failures are the executions created in the last day
// (the executions table has no index on when they finished), and what runs now counts the
// status running alone: a pausing, paused or canceling workflow or action is counted by the
// status it has.
function Board({ d }) {
  const others = [['timeout', 'timed out'], ['abandoned', 'abandoned']].filter(([s]) => d.last_day[s]).map(([s, label]) => `${d.last_day[s]} ${label}`);
  const since = new Date(Date.now() - 86400000).toISOString();
  const waiting = d.queues.reduce((n, q) => n + q.queued, 0);
  return html`
    <div class="cards">
      <${Figure} label="Running now" value=${d.running} href="/executions?status=running" note="status running; pausing, paused and canceling not counted" />
      <${Figure} label="Failed, last day" value=${d.last_day.failed || 0} href=${`/executions?status=failed&since=${encodeURIComponent(since)}`}
        note=${`created in the last day${others.length ? `; also ${others.join(', ')}` : ''}`} />
      <${Figure} label="Waiting in queues" value=${waiting} href="/policies" />
      <${Figure} label="Workers alive" value=${d.workers.active} of=${d.workers.active + d.workers.inactive} />
      <${Figure} label="Sensors running" value=${d.sensors.running} of=${d.sensors.enabled} note=${`${d.sensors.total} in all, ${d.sensors.enabled} enabled`} />
    </div>
    <div class="grid2">
      <${Counts} label="Last hour" counts=${d.last_hour} />
      <${Counts} label="Last day" counts=${d.last_day} />
    </div>
    <div class="grid2">
      <section aria-label="Recent failures">
        <h2>Recent failures <small class="muted">created in the last day</small></h2>
        <${Table} rows=${d.failures} empty="No execution created in the last day failed, timed out or was abandoned." columns=${[
          { label: 'Execution', cell: (f) => html`<${Link} href=${`/executions/${f.id}`}>#${f.id}<//>` },
          { label: 'Action', cell: (f) => html`<${RefLink} kind="actions" value=${f.action_ref} />` },
          { label: 'Status', cell: (f) => html`<${Status} status=${f.status} />` },
          { label: 'Reason', class: 'dash-reason', cell: (f) => (f.reason ? html`<span data-reason=${f.id}>${f.reason}</span>` : html`<span class="muted">—</span>`) },
          { label: 'Finished', cell: (f) => html`<${Time} value=${f.finished_at} />` },
        ]} />
      </section>
      <section aria-label="Queues">
        <h2>Queues</h2>
        <${Table} rows=${d.queues} rowKey=${(q) => q.action_ref} empty="No execution waits in a policy's queue." columns=${[
          { label: 'Action', cell: (q) => html`<${RefLink} kind="actions" value=${q.action_ref} />` },
          { label: 'Waiting', class: 'num', cell: (q) => html`<span data-queued=${q.action_ref}>${q.queued}</span>` },
          { label: 'Oldest since', cell: (q) => html`<${Time} value=${q.oldest_queued_at} />` },
        ]} />
      </section>
    </div>`;
}

export function Dashboard() {
  const state = useAsync(() => api.get('/dashboard'), []);
  const live = useLive(state.reload);
  return html`<${Page} title="Dashboard" actions=${html`<${LiveState} state=${live} />`}>
    <${Loading} state=${state}>${(d) => html`<${Board} d=${d} />`}<//>
  <//>`;
}
