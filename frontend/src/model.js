// The document model: nodegraph/1 JSON <-> Vue Flow nodes and edges, link checks, undo history.
// Pure functions and small classes; no DOM, no Vue Flow store.

export const FORMAT = "nodegraph/1";

export function emptyDoc(name = "untitled") {
  return { format: FORMAT, name, description: "", seed: 0, nodes: [], links: [] };
}

export function edgeId(l) {
  return `${l.src}.${l.srcPort}->${l.dst}.${l.dstPort}`;
}

// Catalogue helpers --------------------------------------------------------------------------------
export class Catalogue {
  constructor(json) {
    this.types = Object.fromEntries((json.types || []).map((t) => [t.name, t]));
    this.nodes = Object.fromEntries((json.nodes || []).map((n) => [n.name, n]));
    for (const n of json.nodes || []) for (const a of n.aliases || []) if (!this.nodes[a]) this.nodes[a] = n;
    this.list = this.baseList = json.nodes || [];
    this.groupSpecs = {};
  }
  spec(type) {
    return this.groupSpecs[type] || this.nodes[type] || null;
  }
  baseSpec(type) {
    return this.nodes[type] || null;
  }
  setGroups(specs) {
    // group instances' specs (frontend/src/groups.js): looked up like node types, listed in the palette
    this.groupSpecs = Object.fromEntries(specs.map((s) => [s.name, s]));
    this.list = [...this.baseList, ...specs];
  }
  color(type) {
    return (this.types[type] && this.types[type].color) || "#888";
  }
  categories(filter = "") {
    const q = filter.trim().toLowerCase();
    const groups = {};
    for (const n of this.list) {
      const hay = `${n.name} ${n.category} ${n.doc}`.toLowerCase();
      if (q && !q.split(/\s+/).every((w) => hay.includes(w))) continue;
      (groups[n.category] = groups[n.category] || []).push(n);
    }
    return Object.entries(groups).sort(([a], [b]) => a.localeCompare(b));
  }
  search(filter, limit = 12, fits = null) {
    const q = filter.trim().toLowerCase();
    const scored = [];
    for (const n of this.list) {
      if (fits && !fits(n)) continue;
      const name = n.name.toLowerCase();
      let score = -1;
      if (!q) score = 1;
      else if (name === q) score = 100;
      else if (name.startsWith(q)) score = 50;
      else if (name.includes(q)) score = 20;
      else if (`${n.category} ${n.doc}`.toLowerCase().includes(q)) score = 5;
      if (score >= 0) scored.push([score, n]);
    }
    scored.sort((a, b) => b[0] - a[0] || a[1].name.localeCompare(b[1].name));
    return scored.slice(0, limit).map((s) => s[1]);
  }
}

// doc -> flow ---------------------------------------------------------------------------------------
export function docToFlow(doc, catalogue) {
  const nodes = (doc.nodes || []).map((n, i) => {
    const pos = (n.ui && n.ui.pos) || [40 + (i % 6) * 300, 40 + Math.floor(i / 6) * 240];
    return {
      id: n.id,
      type: "ng",
      position: { x: pos[0], y: pos[1] },
      data: { type: n.type, params: { ...(n.params || {}) }, ui: { ...(n.ui || {}) }, mode: n.mode },
    };
  });
  const edges = (doc.links || []).map((raw) => linkToEdge(raw, doc, catalogue));
  return { nodes, edges };
}

export function linkToEdge(raw, doc, catalogue) {
  const l = { src: raw.from[0], srcPort: raw.from[1], dst: raw.to[0], dstPort: raw.to[1] };
  const srcNode = (doc.nodes || []).find((n) => n.id === l.src);
  const spec = srcNode && catalogue.spec(srcNode.type);
  const out = spec && spec.outputs.find((o) => o.name === l.srcPort);
  return makeEdge(l, out ? catalogue.color(out.type) : "#888");
}

export function makeEdge(l, color) {
  return {
    id: edgeId(l), source: l.src, sourceHandle: l.srcPort, target: l.dst, targetHandle: l.dstPort,
    style: { stroke: color, strokeWidth: 2 }, data: { color },
  };
}

// flow -> doc ---------------------------------------------------------------------------------------
export function flowToDoc(meta, nodes, edges) {
  return {
    format: FORMAT,
    name: meta.name || "untitled",
    description: meta.description || "",
    seed: Number.isInteger(meta.seed) ? meta.seed : 0,
    ...(meta.ui && Object.keys(meta.ui).length ? { ui: meta.ui } : {}),
    nodes: nodes.map((n) => ({
      id: n.id, type: n.data.type, params: cleanParams(n.data.params),
      ui: { ...(n.data.ui || {}), pos: [Math.round(n.position.x), Math.round(n.position.y)] },
      ...(n.data.mode ? { mode: n.data.mode } : {}),
    })),
    links: edges.map((e) => ({ from: [e.source, e.sourceHandle], to: [e.target, e.targetHandle] })),
  };
}

function cleanParams(params) {
  const out = {};
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined) out[k] = v;
  return out;
}

// link checks (mirror nodegraph.validate.link_problem, plus cycles) ----------------------------------
export function compatible(outType, inType) {
  return outType === inType || inType === "Any";
}

export function linkProblem(conn, nodes, edges, catalogue) {
  const src = nodes.find((n) => n.id === conn.source);
  const dst = nodes.find((n) => n.id === conn.target);
  if (!src || !dst) return "that node no longer exists";
  if (src.id === dst.id) return "a node cannot feed itself";
  const sSpec = catalogue.spec(src.data.type), dSpec = catalogue.spec(dst.data.type);
  if (!sSpec || !dSpec) return "unknown node type";
  const out = sSpec.outputs.find((o) => o.name === conn.sourceHandle);
  const inp = dSpec.inputs.find((i) => i.name === conn.targetHandle);
  if (!out || !inp) return "no such port";
  if (!compatible(out.type, inp.type))
    return `${dst.id}.${inp.name} expects ${inp.type} but ${src.id}.${out.name} gives ${out.type}`;
  if (reaches(dst.id, src.id, edges)) return `this link would make a cycle (${dst.id} already feeds ${src.id})`;
  return null;
}

export function reaches(from, to, edges) {
  const next = {};
  for (const e of edges) (next[e.source] = next[e.source] || []).push(e.target);
  const seen = new Set([from]);
  const stack = [from];
  while (stack.length) {
    const id = stack.pop();
    if (id === to) return true;
    for (const n of next[id] || []) if (!seen.has(n)) { seen.add(n); stack.push(n); }
  }
  return false;
}

export function downstream(ids, edges) {
  const next = {};
  for (const e of edges) (next[e.source] = next[e.source] || []).push(e.target);
  const seen = new Set(ids);
  const stack = [...ids];
  while (stack.length) for (const n of next[stack.pop()] || []) if (!seen.has(n)) { seen.add(n); stack.push(n); }
  return seen;
}

export function freshId(type, taken) {
  const stem = type.toLowerCase().replace(/[^a-z0-9_]/g, "") || "node";
  let i = 1;
  while (taken.has(`${stem}${i}`)) i += 1;
  return `${stem}${i}`;
}

// undo history: snapshots of the document -----------------------------------------------------------
export class History {
  constructor(limit = 200) {
    this.limit = limit;
    this.stack = [];
    this.index = -1;
  }
  reset(doc) {
    this.stack = [JSON.stringify(doc)];
    this.index = 0;
  }
  push(doc) {
    const s = JSON.stringify(doc);
    if (this.stack[this.index] === s) return false;
    this.stack = this.stack.slice(0, this.index + 1);
    this.stack.push(s);
    if (this.stack.length > this.limit) this.stack.shift();
    this.index = this.stack.length - 1;
    return true;
  }
  canUndo() { return this.index > 0; }
  canRedo() { return this.index < this.stack.length - 1; }
  undo() { return this.canUndo() ? JSON.parse(this.stack[--this.index]) : null; }
  redo() { return this.canRedo() ? JSON.parse(this.stack[++this.index]) : null; }
}
