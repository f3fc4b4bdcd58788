// Packs: the list, with upload of a .tar.gz for admins and what registering it changed; a
// pack's page with its stored versions (which one is current), what it holds, and delete.

import { html, useRef, useState } from '../vendor/htm-preact.js';
import { api } from '../lib/api.js';
import { useSubmit } from '../lib/errors.js';
import { listAll } from '../lib/listall.js';
import { Link, navigate } from '../lib/router.js';
import { Confirm, ErrorBox, Loading, Page, RefLink, Status, Table, Time, useAsync, useCan } from '../lib/ui.js';

const enc = encodeURIComponent;
const kinds = ['actions', 'triggers', 'sensors', 'rules', 'policies'];
// Where a component of each kind has a screen; sensors and triggers share one.
const screens = { actions: 'actions', rules: 'rules', policies: 'policies' };

function short(hash) {
  return hash ? html`<code title=${hash}>${hash.slice(0, 12)}</code>` : html`<span class="muted">—</span>`;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function Refs({ kind, refs }) {
  return refs.map((r, i) => html`${i > 0 && ', '}${screens[kind] ? html`<${RefLink} kind=${screens[kind]} value=${r} />` : html`<code>${r}</code>`}`);
}

// Changes shows what registering a pack changed (the API's changes).
function Changes({ pack }) {
  const c = pack.changes || {};
  const rows = kinds.map((kind) => ({ kind, ...(c[kind] || {}) }));
  return html`<div class="card pack-changes" role="status">
    <p><strong><${RefLink} kind="packs" value=${pack.ref} /></strong> ${c.pack || 'registered'}; current version ${short(pack.current_version)}.</p>
    <${Table} rowKey=${(r) => r.kind} rows=${rows} columns=${[
      { label: 'Kind', cell: (r) => r.kind },
      { label: 'Added', cell: (r) => html`<${Refs} kind=${r.kind} refs=${r.added || []} />` },
      { label: 'Updated', cell: (r) => html`<${Refs} kind=${r.kind} refs=${r.updated || []} />` },
      { label: 'Removed', cell: (r) => (r.removed || []).map((x, i) => html`${i > 0 && ', '}<code>${x}</code>`) },
      { label: 'Unchanged', class: 'num', cell: (r) => r.unchanged ?? 0 },
    ]} />
    ${c.rules_reenabled?.length > 0 && html`<p>Enabled again as the files say: <${Refs} kind="rules" refs=${c.rules_reenabled} /></p>`}
    ${c.rules_disabled?.length > 0 && html`<p>Disabled again as the files say: <${Refs} kind="rules" refs=${c.rules_disabled} /></p>`}
  </div>`;
}

function Upload({ onDone }) {
  const input = useRef(null);
  const [result, setResult] = useState(null);
  const { submit: upload, error, busy } = useSubmit([], async () => {
    setResult(null);
    const file = input.current?.files?.[0];
    if (!file) throw new Error('Pick a .tar.gz of the pack first.');
    const answer = await api.post('/packs', new Blob([file], { type: 'application/gzip' }));
    setResult(answer);
    input.current.value = '';
    onDone();
  });
  return html`<form class="card pack-upload" onSubmit=${upload} aria-label="Upload a pack">
    <h2>Upload a pack</h2>
    <p class="muted small">A .tar.gz with pack.yaml at its top or in its only directory (as <code>attune pack upload DIR</code> sends). Its files become the pack's current version; the same files again change nothing.</p>
    <div class="upload-row">
      <label for="pack-file" class="sr-only">Pack archive</label>
      <input id="pack-file" name="pack" type="file" accept=".tar.gz,.tgz,application/gzip" ref=${input} />
      <button class="btn primary" type="submit" disabled=${busy} aria-busy=${busy}>Upload</button>
    </div>
    <${ErrorBox} error=${error} />
    ${result && html`<${Changes} pack=${result} />`}
  </form>`;
}

export function Packs() {
  const admin = useCan('admin');
  const state = useAsync(() => listAll('/packs'), []);
  return html`<${Page} title="Packs">
    ${admin && html`<${Upload} onDone=${state.reload} />`}
    <${Loading} state=${state}>${(packs) => html`<${Table} rows=${packs} columns=${[
      { label: 'Pack', cell: (p) => html`<${RefLink} kind="packs" value=${p.ref} />${p.label && html`<div class="muted small">${p.label}</div>`}` },
      { label: 'Version', cell: (p) => p.version || html`<span class="muted">—</span>` },
      { label: 'Current files', cell: (p) => short(p.current_version) },
      { label: 'From', cell: (p) => (p.path ? html`<code>${p.path}</code>` : p.current_version ? 'upload' : html`<span class="muted">built in</span>`) },
      { label: 'Updated', cell: (p) => html`<${Time} value=${p.updated} />` },
    ]} />`}<//>
  <//>`;
}

// contentsOf reads what pack ref holds; policies have no pack filter in the API, so they
// are those its policies/ directory registered or that name it.
async function contentsOf(ref) {
  const [actions, triggers, sensors, rules, policies] = await Promise.all([
    listAll('/actions', { pack: ref }),
    listAll('/triggers', { pack: ref }),
    listAll('/sensors', { pack: ref }),
    listAll('/rules', { pack: ref }),
    listAll('/policies'),
  ]);
  return { actions, triggers, sensors, rules, policies: policies.filter((p) => p.source_pack === ref || p.pack_ref === ref) };
}

function Contents({ pack }) {
  const state = useAsync(() => contentsOf(pack), [pack]);
  const link = (kind, c) => {
    if (screens[kind]) return html`<${RefLink} kind=${screens[kind]} value=${c.ref} />`;
    return html`<${Link} href=${`/triggers?pack=${enc(pack)}`}>${c.ref}<//>`;
  };
  return html`<${Loading} state=${state}>${(contents) => html`<div class="pack-contents">${kinds.map((kind) => html`
    <section class="card">
      <h3>${kind[0].toUpperCase() + kind.slice(1)} <span class="tag">${contents[kind].length}</span></h3>
      ${contents[kind].length === 0 ? html`<p class="muted">None.</p>` : html`<ul>${contents[kind].map((c) => html`<li>
        ${link(kind, c)}${'enabled' in c && !c.enabled && html` <${Status} status="disabled" />`}
        ${c.label && html` <span class="muted">${c.label}</span>`}
      </li>`)}</ul>`}
    </section>`)}</div>`}<//>`;
}

export function PackPage({ pack: ref }) {
  const admin = useCan('admin');
  const state = useAsync(() => api.get(`/packs/${enc(ref)}`), [ref]);
  const actions = admin && ref !== 'core' && html`<${Confirm} question=${`Delete ${ref} and everything in it?`} onConfirm=${async () => {
    await api.del(`/packs/${enc(ref)}`);
    navigate('/packs');
  }}>Delete<//>`;
  return html`<${Page} title=${`Pack ${ref}`} actions=${actions}>
    <p><${Link} href="/packs">All packs<//></p>
    <${Loading} state=${state}>${(p) => html`
      <dl class="props card">
        <dt>Label</dt><dd>${p.label || html`<span class="muted">—</span>`}</dd>
        <dt>Description</dt><dd>${p.description || html`<span class="muted">—</span>`}</dd>
        <dt>Version</dt><dd>${p.version || html`<span class="muted">—</span>`}</dd>
        <dt>Current files</dt><dd>${short(p.current_version)}</dd>
        <dt>From</dt><dd>${p.path ? html`<code>${p.path}</code>` : p.current_version ? 'an upload' : 'built into the binary'}</dd>
        <dt>Updated</dt><dd><${Time} value=${p.updated} /></dd>
      </dl>
      <h2>Versions</h2>
      <${Table} rows=${p.versions || []} rowKey=${(v) => v.hash} empty="No stored files: the built-in pack travels with the binary."
        columns=${[
          { label: 'Files', cell: (v) => html`${short(v.hash)}${v.current && html` <${Status} tone="ok">current<//>`}` },
          { label: 'Stored', cell: (v) => html`<${Time} value=${v.created} />` },
          { label: 'Count', class: 'num', cell: (v) => v.files },
          { label: 'Size', class: 'num', cell: (v) => size(v.size) },
        ]} />
      <h2>Contents</h2>
      <${Contents} pack=${ref} />`}<//>
  <//>`;
}

