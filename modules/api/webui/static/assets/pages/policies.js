// Policies and their queues: what each policy bounds and which actions it applies to, and for
// each action it limits the executions running and waiting (GET /actions/{ref}/queue-stats),
// live: after a burst of execution events, the figures of the actions whose executions
// changed are read again, one request per action at most, and all of them on every
// (re)connect.

import { html, useRef } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { listAll } from '../lib/listall.js';
import { LiveState, useLive } from '../lib/live.js';
import { Link, setQuery, useLocation } from '../lib/router.js';
import { Json, Loading, Page, Pager, RefLink, Status, Table, Time, useAsync } from '../lib/ui.js';

// limits tells whether a policy bounds executions (a retry or a worker selector alone does not).
const limits = (p) => p.enabled && (p.concurrency || p.rate_limit);

function concurrencyText(c) {
  if (!c) return '—';
  const per = c.parameters?.length ? ` per ${c.parameters.join(', ')}` : '';
  return `${c.limit} at once${per}; ${c.method === 'cancel' ? 'cancels' : 'queues'} the rest`;
}

function rateText(r) {
  if (!r) return '—';
  return `${r.max_executions} per ${r.window_seconds} s; ${r.method === 'cancel' ? 'cancels' : 'queues'} the rest`;
}

function queueText(p) {
  const parts = [];
  if (p.max_queue_length != null) parts.push(`at most ${p.max_queue_length} waiting`);
  if (p.queue_timeout_seconds != null) parts.push(`wait at most ${p.queue_timeout_seconds} s`);
  return parts.join('; ') || '—';
}

function AppliesTo({ p }) {
  if (p.action_ref) return html`<${RefLink} kind="actions" value=${p.action_ref} />`;
  if (p.pack_ref) return html`every action of pack <${RefLink} kind="packs" value=${p.pack_ref} />`;
  return html`<span class="muted">—</span>`;
}

// limitedRefs answers the actions the policies limit, a pack's policy's each of the pack's
// actions (the queue figures say which policy is in force for each).
async function limitedRefs(policies) {
  const refs = new Set();
  for (const p of policies.filter(limits)) {
    if (p.action_ref) refs.add(p.action_ref);
    if (p.pack_ref) (await listAll('/actions', { pack: p.pack_ref })).forEach((a) => refs.add(a.ref));
  }
  return [...refs].sort();
}

function queueStats(refs) {
  return Promise.all(refs.map((ref) => api.get(`/actions/${encodeURIComponent(ref)}/queue-stats`)));
}

// QueueCard shows one action's admission: slots in use under the limit, who waits, since when,
// and per group when the policy limits by parameters.
function QueueCard({ st }) {
  const grouped = st.groups.length > 1 || st.groups.some((g) => g.key !== '' && g.key !== '[]');
  return html`<section class="card queue-card" aria-label=${`Queue of ${st.action_ref}`} data-queue=${st.action_ref}>
    <h3><${RefLink} kind="actions" value=${st.action_ref} /></h3>
    <dl class="props">
      <dt>Running</dt><dd><span data-active>${st.active}</span>${st.limit != null && html`<span class="muted"> of ${st.limit}</span>`}</dd>
      <dt>Waiting</dt><dd data-queued>${st.queued}</dd>
      <dt>Oldest waits since</dt><dd><${Time} value=${st.oldest_queued_at} /></dd>
    </dl>
    ${grouped && html`<${Table} rows=${st.groups} rowKey=${(g) => g.key} columns=${[
      { label: 'Group', cell: (g) => html`<code>${g.key}</code>` },
      { label: 'Running', class: 'num', cell: (g) => g.active },
      { label: 'Waiting', class: 'num', cell: (g) => g.queued },
    ]} />`}
  </section>`;
}

// Queues shows the queue figures of refs, live. changed holds the actions to read again
// (null: every one): all at first and on every (re)connect, then those the stream named.
function Queues({ refs }) {
  const key = refs.join(' ');
  const known = useRef({ key: null, stats: new Map(), changed: null });
  const state = useAsync(async () => {
    const k = known.current;
    if (k.key !== key) Object.assign(k, { key, stats: new Map(), changed: null });
    const want = k.changed ? refs.filter((r) => k.changed.has(r)) : refs;
    k.changed = new Set();
    try {
      for (const st of await queueStats(want)) k.stats.set(st.action_ref, st);
    } catch (err) {
      k.changed = null; // read them all next time
      throw err;
    }
    return refs.map((r) => k.stats.get(r)).filter(Boolean);
  }, [key]);
  const limited = (name, d) => name === 'execution' && refs.includes(d?.action_ref);
  const live = useLive(state.reload, {
    events: limited,
    onEvent: (name, d) => limited(name, d) && known.current.changed?.add(d.action_ref),
    onOpen: () => {
      known.current.changed = null;
    },
  });
  return html`<section aria-label="Queues">
    <header class="page-head queue-head"><h2>Queues</h2><${LiveState} state=${live} /></header>
    ${refs.length === 0
      ? html`<p class="muted empty">No enabled policy limits an action.</p>`
      : html`<${Loading} state=${state}>${(stats) => html`<div class="queue-cards">${stats.map((st) => html`<${QueueCard} key=${st.action_ref} st=${st} />`)}</div>`}<//>`}
  </section>`;
}

export function Policies() {
  const { query } = useLocation();
  const page = Number(query.get('page')) || 1;
  const state = useAsync(async () => {
    const list = await api.get('/policies', { page, per_page: 50 });
    return { ...list, refs: await limitedRefs(list.data) };
  }, [page]);
  return html`<${Page} title="Policies">
    <p class="muted">Policies bound how many executions of an action run at once and how many start in a window; the rest wait in a queue, or are cancelled.</p>
    <${Loading} state=${state}>${(d) => html`
      <${Table} rows=${d.data} empty="No policies: a pack's policies/*.yaml, or POST /api/v1/policies, makes one." columns=${[
        { label: 'Policy', cell: (p) => html`<${RefLink} kind="policies" value=${p.ref} />` },
        { label: 'Applies to', cell: (p) => html`<${AppliesTo} p=${p} />` },
        { label: 'Concurrency', cell: (p) => concurrencyText(p.concurrency) },
        { label: 'Rate limit', cell: (p) => rateText(p.rate_limit) },
        { label: 'Queue', cell: (p) => queueText(p) },
        { label: 'State', cell: (p) => html`<${Status} status=${p.enabled ? 'enabled' : 'disabled'} />` },
      ]} />
      <${Pager} pagination=${d.pagination} onPage=${(n) => setQuery({ page: n })} />
      <${Queues} refs=${d.refs} />`}<//>
  <//>`;
}

// PolicyPage's route names its parameter policy: Preact keeps a prop called ref to itself.
export function PolicyPage({ policy: ref }) {
  const state = useAsync(async () => {
    const p = await api.get(`/policies/${encodeURIComponent(ref)}`);
    return { p, refs: await limitedRefs([p]) };
  }, [ref]);
  return html`<${Page} title=${`Policy ${ref}`} actions=${html`<${Link} href="/policies">All policies<//>`}>
    <${Loading} state=${state}>${({ p, refs }) => html`
      <dl class="props card">
        <dt>Applies to</dt><dd><${AppliesTo} p=${p} /></dd>
        <dt>State</dt><dd><${Status} status=${p.enabled ? 'enabled' : 'disabled'} /></dd>
        <dt>Concurrency</dt><dd>${concurrencyText(p.concurrency)}</dd>
        <dt>Rate limit</dt><dd>${rateText(p.rate_limit)}</dd>
        <dt>Queue</dt><dd>${queueText(p)}</dd>
        <dt>Retry</dt><dd>${p.retry ? html`<${Json} value=${p.retry} />` : '—'}</dd>
        <dt>Worker selector</dt><dd>${p.worker_selector ? Object.entries(p.worker_selector).map(([k, v]) => html`<span class="tag">${k}=${v}</span> `) : '—'}</dd>
        <dt>From</dt><dd>${p.source_pack ? html`pack <${RefLink} kind="packs" value=${p.source_pack} />` : 'the API'}</dd>
        <dt>Updated</dt><dd><${Time} value=${p.updated} /></dd>
      </dl>
      ${p.enabled && !p.concurrency && !p.rate_limit ? html`<p class="muted">This policy limits nothing: it sets ${p.retry ? 'a retry' : 'a worker selector'} only.</p>` : html`<${Queues} refs=${refs} />`}`}<//>
  <//>`;
}
