// A workflow's tasks drawn as a graph, in inline SVG: the definition gives the nodes (its
// tasks) and the edges (their transitions); the execution's view colours each node by the
// status of its arrivals. Layers run top to bottom, each task on the layer of the longest
// path that reaches it from the start tasks, so that a step always sits below what leads to
// it; a transition back up (a loop) is drawn on the left, one that skips layers on the right.

import { html, useEffect, useState } from '../vendor/htm-preact.js';

const nodeW = 156;
const nodeH = 50;
const gapX = 28;
const gapY = 70;
const pad = 16;

// shortWhen makes a transition's condition fit beside its edge: the bare expression, cut.
function shortWhen(when, max = 26) {
  if (!when) return '';
  const bare = when.replace(/^\s*\{\{\s*([\s\S]*?)\s*\}\}\s*$/, '$1').replace(/\s+/g, ' ').trim();
  return bare.length > max ? `${bare.slice(0, max - 1)}…` : bare;
}

// taskState sums up a task's arrivals (the view's entries with its name): running or waiting
// while any arrival is, else the latest arrival's status; '' when none reached it.
export function taskState(arrivals) {
  if (!arrivals.length) return { status: '', label: 'not reached' };
  const latest = arrivals.reduce((a, b) => (b.seq > a.seq ? b : a));
  const status = arrivals.some((a) => a.status === 'running') ? 'running' : arrivals.some((a) => a.status === 'waiting') ? 'waiting' : latest.status;
  const parts = [status.replace('_', ' ')];
  if (latest.item_count > 1) parts.push(`${latest.items_ended}/${latest.item_count} items`);
  if (arrivals.length > 1) parts.push(`×${arrivals.length}`);
  return { status, label: parts.join(' · ') };
}

// graphOf lists the nodes (the definition's tasks in order, then any the view names that the
// definition does not, and a `fail` node when a transition fails the workflow) and the edges
// (one per pair of tasks, with the conditions of every transition between them).
export function graphOf(definition, view) {
  const nodes = new Map();
  const add = (name, extra) => nodes.has(name) || nodes.set(name, { name, index: nodes.size, ...extra });
  for (const t of definition?.tasks || []) add(t.name, { action: t.action, task: t });
  for (const a of view?.tasks || []) add(a.name, {});
  const edges = new Map();
  for (const t of definition?.tasks || []) {
    for (const tr of t.next || []) {
      for (const to of tr.do || []) {
        if (to === 'noop') continue;
        if (to === 'fail') add('fail', { pseudo: true });
        const key = `${t.name}\u0000${to}`;
        if (!edges.has(key)) edges.set(key, { from: t.name, to, whens: [] });
        const e = edges.get(key);
        const w = shortWhen(tr.when, 32) || 'always';
        if (!e.whens.includes(w)) e.whens.push(w);
      }
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()], start: definition?.start || [] };
}

// layout places the nodes: edges that close a loop (found by a depth-first walk from the
// start tasks) are set aside, each node's layer is its longest path from a start over the
// rest, and within a layer nodes sit by the mean position of what leads to them.
function layout({ nodes, edges, start }, labelMax = Infinity) {
  const out = new Map(nodes.map((n) => [n.name, []]));
  for (const e of edges) out.get(e.from)?.push(e);
  const state = new Map();
  const walk = (name) => {
    state.set(name, 1);
    for (const e of out.get(name) || []) {
      const s = state.get(e.to);
      if (s === 1) e.back = true;
      else if (!s && out.has(e.to)) walk(e.to);
    }
    state.set(name, 2);
  };
  for (const name of start) if (out.has(name) && !state.get(name)) walk(name);
  for (const n of nodes) if (!state.get(n.name)) walk(n.name);

  const layer = new Map(nodes.map((n) => [n.name, 0]));
  const forward = edges.filter((e) => !e.back && layer.has(e.to));
  for (let round = 0, moved = true; moved && round <= nodes.length; round++) {
    moved = false;
    for (const e of forward) {
      if (layer.get(e.to) < layer.get(e.from) + 1) {
        layer.set(e.to, layer.get(e.from) + 1);
        moved = true;
      }
    }
  }
  const rows = [];
  for (const n of nodes) (rows[layer.get(n.name)] ||= []).push(n);
  const slot = new Map();
  rows.forEach((row, l) => {
    if (l > 0) {
      const mean = (n) => {
        const from = forward.filter((e) => e.to === n.name).map((e) => slot.get(e.from));
        return from.length ? from.reduce((a, b) => a + b, 0) / from.length : n.index;
      };
      row.sort((a, b) => mean(a) - mean(b) || a.index - b.index);
    }
    row.forEach((n, i) => slot.set(n.name, i - (row.length - 1) / 2));
  });

  const widest = Math.max(1, ...rows.map((r) => r?.length || 0));
  const centre = (widest * nodeW + (widest - 1) * gapX) / 2;
  const at = new Map(nodes.map((n) => [n.name, {
    x: centre + slot.get(n.name) * (nodeW + gapX) - nodeW / 2,
    y: layer.get(n.name) * (nodeH + gapY),
  }]));
  // The drawing's box holds the nodes, the curves' control points (which bound the curves)
  // and the labels, at an estimate of their text's width.
  const box = { x0: 0, y0: 0, x1: widest * nodeW + (widest - 1) * gapX, y1: rows.length * nodeH + (rows.length - 1) * gapY };
  const paths = new Map();
  for (const e of edges) {
    if (!at.has(e.to)) continue;
    const p = edgePath(e, at, layer);
    paths.set(e, p);
    const w = labelOf(e, labelMax).length * labelChar;
    const [lx0, lx1] = p.anchor === 'start' ? [p.mid[0], p.mid[0] + w] : [p.mid[0] - w / 2, p.mid[0] + w / 2];
    box.x0 = Math.min(box.x0, lx0, ...p.points.map((q) => q[0]));
    box.x1 = Math.max(box.x1, lx1, ...p.points.map((q) => q[0]));
  }
  const view = [box.x0 - pad, box.y0 - pad, box.x1 - box.x0 + 2 * pad, box.y1 - box.y0 + 2 * pad].map(Math.round);
  return { at, paths, view };
}

const labelChar = 6.3; // px per character at the labels' 11px

// labelOf is the label beside an edge, cut to max characters (its whole text is the edge's
// title).
function labelOf(e, max = Infinity) {
  const text = e.whens.filter((w) => w !== 'always').join(' | ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// On a phone's width the labels are cut shorter, so that the drawing stays narrow enough to
// read them whole within its box.
const narrowQuery = '(max-width: 500px)';
const narrowLabel = 14;

function useNarrow() {
  const [narrow, setNarrow] = useState(() => matchMedia(narrowQuery).matches);
  useEffect(() => {
    const m = matchMedia(narrowQuery);
    const change = () => setNarrow(m.matches);
    m.addEventListener('change', change);
    change();
    return () => m.removeEventListener('change', change);
  }, []);
  return narrow;
}

// edgePath draws an edge as a cubic curve and answers where its label goes (the curve's
// middle).
function edgePath(e, at, layer) {
  const a = at.get(e.from);
  const b = at.get(e.to);
  let p;
  if (e.back) {
    const off = e.from === e.to ? 50 : 90;
    p = [[a.x, a.y + nodeH / 2 + 8], [a.x - off, a.y + nodeH / 2 + 8], [b.x - off, b.y + nodeH / 2 - 8], [b.x, b.y + nodeH / 2 - 8]];
  } else {
    const sx = a.x + nodeW / 2;
    const tx = b.x + nodeW / 2;
    const sy = a.y + nodeH;
    const ty = b.y;
    const span = layer.get(e.to) - layer.get(e.from);
    const off = span > 1 ? nodeW * 0.95 : 0;
    const dy = (ty - sy) / 2;
    p = [[sx, sy], [sx + off, sy + dy], [tx + off, ty - dy], [tx, ty]];
  }
  const mid = [0, 1].map((k) => (p[0][k] + 3 * p[1][k] + 3 * p[2][k] + p[3][k]) / 8);
  // A label beside a curve that bends away starts at its bend, clear of the nodes.
  const bends = p[1][0] !== p[0][0];
  if (bends) mid[0] += e.back ? -4 : 4;
  const anchor = !bends ? 'middle' : e.back ? 'end' : 'start';
  return { d: `M${p[0]} C${p[1]} ${p[2]} ${p[3]}`, mid, anchor, points: p };
}

// WorkflowGraph draws the graph; each task is a button (click, Enter or Space) that selects it.
// A node's colour is its status's; the selected one is filled with a tint of it, and the
// focused one has a ring of its own around it, so that focus, selection and a running task
// never look alike.
export function WorkflowGraph({ graph, arrivalsOf, selected, onSelect }) {
  const labelMax = useNarrow() ? narrowLabel : Infinity;
  const { at, paths, view } = layout(graph, labelMax);
  const key = (name) => (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onSelect(name);
    }
  };
  return html`<div class="wf-graph" role="group" aria-label="Tasks as a graph">
    <svg width=${view[2]} height=${view[3]} viewBox=${view.join(' ')} xmlns="http://www.w3.org/2000/svg">
      <defs><marker id="wf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
        <path d="M0,0 L10,5 L0,10 z" class="wf-arrow" /></marker></defs>
      ${graph.edges.filter((e) => paths.has(e)).map((e) => {
        const { d, mid, anchor } = paths.get(e);
        const label = labelOf(e, labelMax);
        const whole = labelOf(e);
        return html`<g class="wf-edge" key=${`${e.from}>${e.to}`}>
          <title>${e.from} → ${e.to}${whole ? `: ${whole}` : ''}</title>
          <path d=${d} marker-end="url(#wf-arrow)" />
          ${label && html`<text x=${mid[0]} y=${mid[1]} text-anchor=${anchor} dominant-baseline="middle" class="wf-edge-label">${label}</text>`}
        </g>`;
      })}
      ${graph.nodes.map((n) => {
        const { x, y } = at.get(n.name);
        const st = n.pseudo ? { status: 'fail', label: 'the workflow fails' } : taskState(arrivalsOf(n.name));
        return html`<g key=${n.name} class=${`wf-node wf-${st.status || 'none'}${selected === n.name ? ' selected' : ''}`}
          transform=${`translate(${x},${y})`} data-task=${n.name} data-status=${st.status}
          role=${n.pseudo ? undefined : 'button'} tabindex=${n.pseudo ? undefined : '0'}
          aria-pressed=${n.pseudo ? undefined : String(selected === n.name)}
          aria-label=${`${n.name}${n.action ? ` (${n.action})` : ''}: ${st.label}`}
          onClick=${n.pseudo ? undefined : () => onSelect(n.name)} onKeyDown=${n.pseudo ? undefined : key(n.name)}>
          <title>${n.name}${n.action ? ` · ${n.action}` : ''} · ${st.label}</title>
          <rect class="wf-ring" x="-5" y="-5" width=${nodeW + 10} height=${nodeH + 10} rx="12" />
          <rect class="wf-box" width=${nodeW} height=${nodeH} rx="8" />
          <rect class="wf-bar" width="6" height=${nodeH - 12} x="6" y="6" rx="3" />
          <text x="20" y="21" class="wf-name">${n.name.length > 17 ? `${n.name.slice(0, 16)}…` : n.name}</text>
          <text x="20" y="39" class="wf-state">${st.label}</text>
        </g>`;
      })}
    </svg>
  </div>`;
}
