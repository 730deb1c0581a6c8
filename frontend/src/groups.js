// Groups (subgraphs) and node modes (bypass, mute) in the editor.
//
// The document keeps one definition per group (doc.definitions); every instance ("type": "group:<name>")
// is drawn from it, so editing a group changes every instance. The canvas shows one scope at a time: the
// graph, or a definition entered by double-clicking an instance (a breadcrumb leaves it). Run states,
// previews and problems arrive under the flat path ids the engine gives nodes inside groups
// ("view1/raster"); a node inside a scope reads them under the path of the instance that was entered.
// Pure document functions first (mirroring nodegraph/groups.py and nodegraph/grouping.py), then the
// editor's mixin and two small components.
import { flowToDoc } from "nodegraph-ui/model.js";
import { addMenuItems } from "nodegraph-ui/menus.js";
export const GROUP_PREFIX = "group:";
export const FORMAT2 = "nodegraph/2";
export const MODES = ["bypass", "mute"];

export function groupName(type) {
  return type && type.startsWith(GROUP_PREFIX) ? type.slice(GROUP_PREFIX.length) : null;
}

const clone = (x) => JSON.parse(JSON.stringify(x));

// The catalogue entry of group `name` (as nodegraph.groups.instance_spec): ports typed as the inner ports
// they map to, params as the inner params with the definition's values as defaults.
export function groupSpec(defs, name, catalogue, seen = new Set()) {
  const def = defs[name];
  if (!def || seen.has(name)) return null;
  const inner = (id) => {
    const n = (def.nodes || []).find((x) => x.id === id);
    if (!n) return null;
    const g = groupName(n.type);
    return g ? groupSpec(defs, g, catalogue, new Set([...seen, name])) : catalogue.baseSpec(n.type);
  };
  const port = (e, which, target) => {
    const [id, p] = target;
    const spec = inner(id);
    const found = spec && spec[which].find((x) => x.name === p);
    return { ...(found || { type: "Any", optional: true, multiple: false }), name: e.name,
             doc: `${id}.${p}${found && found.doc ? ": " + found.doc : ""}` };
  };
  const params = (def.params || []).map((e) => {
    const out = port(e, "params", e.to[0]);
    const n = (def.nodes || []).find((x) => x.id === e.to[0][0]);
    if (n && n.params && e.to[0][1] in n.params) out.default = n.params[e.to[0][1]];
    return out;
  });
  return {
    name: GROUP_PREFIX + name, category: "groups", doc: def.description || `group ${name}`, aliases: [], group: name,
    inputs: (def.inputs || []).map((e) => port(e, "inputs", e.to[0])), params,
    outputs: (def.outputs || []).map((e) => port(e, "outputs", e.from)),
    flags: { stochastic: false, learnable: false, preview: false, trainer: false, sink: !(def.outputs || []).length },
  };
}

const unique = (name, taken) => {
  let out = name, i = 2;
  while (taken.has(out)) out = `${name}_${i++}`;
  taken.add(out);
  return out;
};

// Replace the nodes `ids` of the scene {nodes, links} by an instance of a new group `name`: every link that
// crosses the selection becomes an exposed port (as nodegraph.grouping.group_nodes). Returns
// {scene, definition, instanceId, exposed}. `skip` = {inputs, outputs}: keys (see crossingPorts) not to expose;
// their crossing links are dropped. Inside a group, `exposed` is what that group exposes ({inputs, outputs,
// params}): ports and params of it that map to grouped nodes cross the boundary too, and are re-pointed through
// the new group (returned as `exposed`).
export function groupScene(scene, ids, name, params = [], instanceId = null, skip = {}, exposed = null) {
  const skipIn = new Set(skip.inputs || []), skipOut = new Set(skip.outputs || []);
  const inside = new Set(ids);
  const chosen = scene.nodes.filter((n) => inside.has(n.id));
  const x0 = Math.min(...chosen.map((n) => (n.ui && n.ui.pos ? n.ui.pos[0] : 0)));
  const y0 = Math.min(...chosen.map((n) => (n.ui && n.ui.pos ? n.ui.pos[1] : 0)));
  const moved = (n) => ({ ...clone(n), ui: { ...(n.ui || {}), pos: [(n.ui?.pos?.[0] || 0) - x0, (n.ui?.pos?.[1] || 0) - y0] } });
  const def = { description: "", nodes: chosen.map(moved), links: [], inputs: [], outputs: [], params: [] };
  const taken = new Set(scene.nodes.map((n) => n.id));
  let stem = name.toLowerCase().replace(/[^a-z0-9_]/g, "") || "group";
  const id = instanceId || (() => { let i = 1; while (taken.has(`${stem}${i}`)) i++; return `${stem}${i}`; })();
  const ins = new Map(), outs = new Map(), inNames = new Set(), outNames = new Set();
  const kept = [], crossing = [];
  for (const l of scene.links) {
    const s = inside.has(l.from[0]), d = inside.has(l.to[0]);
    if (s && d) def.links.push(clone(l));
    else if (d) {
      const key = l.from.join(".");
      if (skipIn.has(key)) continue;
      if (!ins.has(key)) {
        const e = { name: unique(l.to[1], inNames), to: [] };
        ins.set(key, e);
        def.inputs.push(e);
        crossing.push({ from: [...l.from], to: [id, e.name] });
      }
      ins.get(key).to.push([...l.to]);
    } else if (s) {
      const key = l.from.join(".");
      if (skipOut.has(key)) continue;
      if (!outs.has(key)) {
        const e = { name: unique(l.from[1], outNames), from: [...l.from] };
        outs.set(key, e);
        def.outputs.push(e);
      }
      crossing.push({ from: [id, outs.get(key).name], to: [...l.to] });
    } else kept.push(l);
  }
  const paramNames = new Set();
  for (const item of params) {
    const [node, param] = item.split(".");
    if (inside.has(node) && param) def.params.push({ name: unique(param, paramNames), to: [[node, param]] });
  }
  const outer = exposed ? clone(exposed) : null;
  if (outer) {
    for (const e of outer.outputs || []) {
      if (!inside.has(e.from[0])) continue;
      const key = e.from.join(".");
      if (!outs.has(key)) {
        const o = { name: unique(e.from[1], outNames), from: [...e.from] };
        outs.set(key, o);
        def.outputs.push(o);
      }
      e.from = [id, outs.get(key).name];
    }
    for (const e of outer.inputs || []) {
      const to = [];
      let through = null;
      for (const t of e.to) {
        if (!inside.has(t[0])) { to.push(t); continue; }
        if (!through) {
          through = { name: unique(e.name, inNames), to: [] };
          def.inputs.push(through);
          to.push([id, through.name]);
        }
        through.to.push([...t]);
      }
      e.to = to;
    }
    for (const e of outer.params || []) {
      e.to = e.to.map((t) => {
        if (!inside.has(t[0])) return t;
        const p = { name: unique(e.name, paramNames), to: [[...t]] };
        def.params.push(p);
        return [id, p.name];
      });
    }
  }
  const instance = { id, type: GROUP_PREFIX + name, params: {}, ui: { pos: [x0, y0] } };
  return { scene: { nodes: [...scene.nodes.filter((n) => !inside.has(n.id)), instance], links: [...kept, ...crossing] },
           definition: def, instanceId: id, exposed: outer };
}

// The ports grouping `ids` would expose by default: one input per outside output read inside, one output per
// inside output read outside, each {key: "node.port" of that output, label}.
export function crossingPorts(scene, ids) {
  const inside = new Set(ids);
  const inputs = new Map(), outputs = new Map();
  for (const l of scene.links) {
    const s = inside.has(l.from[0]), d = inside.has(l.to[0]);
    const key = l.from.join(".");
    const into = s && !d ? outputs : d && !s ? inputs : null;
    if (!into) continue;
    if (!into.has(key)) into.set(key, { key, label: `${key} → ` });
    const e = into.get(key);
    e.label += (e.label.endsWith("→ ") ? "" : ", ") + l.to.join(".");
  }
  return { inputs: [...inputs.values()], outputs: [...outputs.values()] };
}

// The instance `id` of the scene replaced by copies of its definition's nodes (as nodegraph.grouping.ungroup).
// Inside a group, `exposed` (what it exposes) is re-pointed from the instance to the copies.
export function ungroupScene(scene, id, defs, exposed = null) {
  const inst = scene.nodes.find((n) => n.id === id);
  const def = inst && defs[groupName(inst.type)];
  if (!def) return null;
  const taken = new Set(scene.nodes.filter((n) => n.id !== id).map((n) => n.id));
  const ids = {};
  for (const n of def.nodes) ids[n.id] = taken.has(n.id) ? unique(`${id}_${n.id}`, taken) : (taken.add(n.id), n.id);
  const base = inst.ui && inst.ui.pos ? inst.ui.pos : [0, 0];
  const nodes = def.nodes.map((n) => ({ ...clone(n), id: ids[n.id], ...(inst.mode || n.mode ? { mode: inst.mode || n.mode } : {}),
    ui: { ...(n.ui || {}), pos: [base[0] + (n.ui?.pos?.[0] || 0), base[1] + (n.ui?.pos?.[1] || 0)] } }));
  for (const e of def.params || []) if (e.name in (inst.params || {}))
    for (const [n, p] of e.to) { const c = nodes.find((x) => x.id === ids[n]); if (c) c.params = { ...c.params, [p]: inst.params[e.name] }; }
  const ins = Object.fromEntries((def.inputs || []).map((e) => [e.name, e.to]));
  const outs = Object.fromEntries((def.outputs || []).map((e) => [e.name, e.from]));
  const links = def.links.map((l) => ({ from: [ids[l.from[0]], l.from[1]], to: [ids[l.to[0]], l.to[1]] }));
  for (const l of scene.links) {
    if (l.to[0] === id) for (const [n, p] of ins[l.to[1]] || []) links.push({ from: [...l.from], to: [ids[n], p] });
    else if (l.from[0] === id) { const o = outs[l.from[1]]; if (o) links.push({ from: [ids[o[0]], o[1]], to: [...l.to] }); }
    else links.push(l);
  }
  let outer = null;
  if (exposed) {
    outer = clone(exposed);
    const pars = Object.fromEntries((def.params || []).map((e) => [e.name, e.to]));
    const remap = (list) => (list || []).map(([n, p]) => [ids[n], p]);
    for (const e of outer.outputs || []) if (e.from[0] === id && outs[e.from[1]]) e.from = remap([outs[e.from[1]]])[0];
    for (const e of outer.inputs || []) e.to = e.to.flatMap((t) => (t[0] === id ? remap(ins[t[1]]) : [t]));
    for (const e of outer.params || []) e.to = e.to.flatMap((t) => (t[0] === id ? remap(pars[t[1]]) : [t]));
  }
  return { nodes: [...scene.nodes.filter((n) => n.id !== id), ...nodes], links, ids: Object.values(ids), exposed: outer };
}

// Definitions `name` needs (itself and the groups inside it), to carry a group into another graph.
export function neededDefinitions(defs, name) {
  const out = {};
  const todo = [name];
  while (todo.length) {
    const n = todo.pop();
    if (out[n] || !defs[n]) continue;
    out[n] = defs[n];
    for (const x of defs[n].nodes || []) { const g = groupName(x.type); if (g) todo.push(g); }
  }
  return out;
}

// ---------------------------------------------------------------------------------------- the editor
// Mixed into the editor component; the editor calls adoptDoc/assembleDoc around its own document code.
export const GroupsMixin = {
  data() {
    // gdoc: what the canvas does not show: the format read, the definitions, the graph's own nodes and links
    // while a group is entered
    return { scopes: [], groupsTick: 0, groupDialog: null, libraryGroups: [],
             gdoc: { format: undefined, definitions: {}, top: null } };
  },
  computed: {
    scopePrefix() { return this.scopes.map((s) => s.instance + "/").join(""); },
    // run state of each instance drawn in this scope, summed up from the states of the nodes inside it
    instanceRuns() {
      const out = {};
      const prefix = this.scopePrefix;
      for (const [id, st] of Object.entries(this.run)) {
        if (!id.startsWith(prefix)) continue;
        const cut = id.indexOf("/", prefix.length);
        if (cut < 0) continue;
        const key = id.slice(0, cut);
        const agg = out[key] || (out[key] = { states: {}, seconds: 0 });
        agg.states[st.state || ""] = (agg.states[st.state || ""] || 0) + 1;
        agg.seconds += st.seconds || 0;
      }
      for (const [key, agg] of Object.entries(out)) {
        const s = agg.states;
        const state = s.error ? "error" : s.running ? "running" : s.waiting ? "waiting" : s.stale ? "stale"
          : s.done ? "done" : s.cached ? "cached" : "";
        out[key] = { state, seconds: agg.seconds };
      }
      return out;
    },
  },
  methods: {
    // ---- the document across scopes
    adoptDoc(doc, fresh = false) {
      // Keep what the canvas does not show (format, definitions, and the graph's own nodes while inside a
      // group); return the scene the canvas shows: the graph, or the definition of the innermost scope.
      // A fresh document (opened, new) is shown from its top.
      if (fresh) this.scopes = [];
      this.gdoc.format = "format" in doc ? doc.format : null;  // null: a file without one (the oldest)
      this.gdoc.definitions = clone(doc.definitions || {});
      while (this.scopes.length && !this.gdoc.definitions[this.scopes[this.scopes.length - 1].name]) this.scopes.pop();
      this.refreshGroupSpecs();
      if (!this.scopes.length) return doc;
      this.gdoc.top = { nodes: doc.nodes, links: doc.links, ui: doc.ui };
      const def = this.gdoc.definitions[this.scopes[this.scopes.length - 1].name];
      // the canvas's annotations (ui: frames, comments, reroute points) are the definition's own inside it
      return { ...doc, nodes: def.nodes || [], links: def.links || [], ui: def.ui || {} };
    },
    assembleDoc(scene) {
      // The whole document from the scene on the canvas (flowToDoc's result).
      const defs = clone(this.gdoc.definitions || {});
      let doc = scene;
      if (this.scopes.length) {
        const cur = defs[this.scopes[this.scopes.length - 1].name];
        if (cur) {
          cur.nodes = scene.nodes;
          cur.links = scene.links;
          if (scene.ui && Object.keys(scene.ui).length) cur.ui = scene.ui; else delete cur.ui;
        }
        const { ui, ...rest } = scene;
        const top = this.gdoc.top;
        doc = { ...rest, nodes: top.nodes, links: top.links, ...(top.ui && Object.keys(top.ui).length ? { ui: top.ui } : {}) };
      }
      const out = { ...doc };
      if (Object.keys(defs).length) out.definitions = defs;
      const v2 = Object.keys(defs).length || (out.nodes || []).some((n) => n.mode);
      out.format = v2 || this.gdoc.format === undefined ? FORMAT2 : this.gdoc.format;
      if (out.format == null) delete out.format;
      return out;
    },
    refreshGroupSpecs() {
      const defs = this.gdoc.definitions || {};
      const specs = Object.keys(defs).map((n) => groupSpec(defs, n, this.catalogue)).filter(Boolean);
      const local = new Set(Object.keys(defs));
      for (const g of this.libraryGroups) {
        if (local.has(g.name)) continue;
        const spec = groupSpec(g.definitions, g.name, this.catalogue);
        if (spec) specs.push({ ...spec, category: "library groups", library: g });
      }
      const signature = JSON.stringify(specs);
      if (signature === this.groupsSignature) return;
      this.groupsSignature = signature;
      this.catalogue.setGroups(specs);
      this.groupsTick++;  // the palette redraws
    },
    async loadLibraryGroups() {
      try { this.libraryGroups = (await this.api.get("/groups")).groups || []; } catch (e) { this.libraryGroups = []; }
      this.refreshGroupSpecs();
    },
    importLibraryGroup(spec) {
      // A library group added to this graph brings its definitions (names this graph already has stay its own).
      if (!spec || !spec.library) return;
      for (const [name, def] of Object.entries(spec.library.definitions))
        if (!this.gdoc.definitions[name]) this.gdoc.definitions[name] = clone(def);
      this.refreshGroupSpecs();
    },
    sceneDoc() {
      // The canvas as document nodes and links (the graph's, or the entered group's).
      const { meta } = this;
      return flowToDoc(meta, this.flow.nodes.value, this.links());
    },
    clipDefinitions(nodes) {
      // Copied group instances carry their definitions, so they paste into another graph (or tab).
      const out = {};
      for (const n of nodes) { const g = groupName(n.type); if (g) Object.assign(out, neededDefinitions(this.gdoc.definitions, g)); }
      return out;
    },
    pasteDefinitions(clip) {
      let added = false;
      for (const [name, def] of Object.entries(clip.definitions || {}))
        if (!this.gdoc.definitions[name]) { this.gdoc.definitions[name] = clone(def); added = true; }
      if (added) this.refreshGroupSpecs();
    },
    // ---- ids: flat path ids of the engine <-> the canvas
    flatId(id) { return this.scopePrefix + id; },
    localId(flat) {
      // The canvas node a flat id belongs to (an instance for ids inside it), or null.
      const prefix = this.scopePrefix;
      if (!flat || !flat.startsWith(prefix)) return null;
      return flat.slice(prefix.length).split("/")[0];
    },
    echoes(p, list) {
      // Inside a group, the same problem of another instance's copy of a node shown here (one definition,
      // one problem): not repeated in the banner.
      if (!this.scopes.length || !p.node || !p.node.includes("/")) return false;
      const tail = this.flatId(p.node.slice(p.node.lastIndexOf("/") + 1));
      return list.some((q) => q.node === tail && q.field === p.field && q.message === p.message);
    },
    flatOutput(id, port) {
      // The flat node and port an output drawn here comes from: a group instance's output is an inner node's.
      const n = this.flow.findNode(id);
      let flat = this.flatId(id), type = n ? n.data.type : "";
      const defs = this.gdoc.definitions || {};
      for (let depth = 0; depth < 32; depth++) {
        const def = defs[groupName(type)];
        const e = def && (def.outputs || []).find((x) => x.name === port);
        if (!e) break;
        const inner = (def.nodes || []).find((x) => x.id === e.from[0]);
        flat = `${flat}/${e.from[0]}`;
        port = e.from[1];
        type = inner ? inner.type : "";
      }
      return [flat, port];
    },
    runOf(id) { return this.run[this.flatId(id)] || this.instanceRuns[this.flatId(id)] || {}; },
    previewsOf(id) { return this.previews[this.flatId(id)] || {}; },
    problemsOf(id) {
      const key = this.flatId(id);
      const own = this.problems[key] || [];
      const inner = [];
      for (const [k, list] of Object.entries(this.problems))
        if (k.startsWith(key + "/")) for (const p of list) inner.push({ ...p, field: null, message: `${k.slice(key.length + 1)}${p.field ? "." + p.field : ""}: ${p.message}` });
      return inner.length ? [...own, ...inner] : own;
    },
    // ---- scopes
    enterGroup(id) {
      const n = this.flow.findNode(id);
      const name = n && groupName(n.data.type);
      if (!name || !(this.gdoc.definitions || {})[name]) return false;
      const doc = this.doc();
      this.scopes = [...this.scopes, { name, instance: id }];
      this.applyDoc(doc, { fit: true, keepRun: true });
      return true;
    },
    leaveGroup(depth = this.scopes.length - 1) {
      if (!this.scopes.length) return;
      const doc = this.doc();
      this.scopes = this.scopes.slice(0, Math.max(0, depth));
      this.applyDoc(doc, { fit: true, keepRun: true });
    },
    // ---- grouping
    openGroupDialog(ids = null) {
      ids = ids || this.flow.getSelectedNodes.value.map((n) => n.id);
      if (!ids.length) { this.notify("Select the nodes to group first"); return; }
      const taken = this.gdoc.definitions || {};
      let i = 1;
      while (taken[`group${i}`]) i++;
      const params = [];
      for (const id of ids) {
        const spec = this.catalogue.spec(this.flow.findNode(id).data.type);
        for (const p of (spec ? spec.params : [])) params.push(`${id}.${p.name}`);
      }
      const ports = crossingPorts(flowScene(this), ids);
      this.groupDialog = { ids, name: `group${i}`, params, chosen: [], ports,
                           keepInputs: ports.inputs.map((p) => p.key), keepOutputs: ports.outputs.map((p) => p.key) };
    },
    finishGroupDialog(st) {
      const skip = { inputs: st.ports.inputs.map((p) => p.key).filter((k) => !st.keepInputs.includes(k)),
                     outputs: st.ports.outputs.map((p) => p.key).filter((k) => !st.keepOutputs.includes(k)) };
      return this.groupSelected(st.name, st.ids, st.chosen, skip);
    },
    groupSelected(name, ids, params = [], skip = {}) {
      if (!name || name.includes("/") || (this.gdoc.definitions || {})[name]) {
        this.notify(`"${name}" is not a free group name`, "error");
        return null;
      }
      const scene = flowScene(this);
      const { scene: next, definition, instanceId, exposed } = groupScene(scene, ids, name, params, null, skip,
                                                                           this.scopeExposed());
      this.gdoc.definitions = { ...(this.gdoc.definitions || {}), [name]: definition };
      this.groupDialog = null;
      this.showScene(next, exposed);
      this.notify(`Grouped ${ids.length} node${ids.length > 1 ? "s" : ""} as ${name}; double-click it to enter`);
      return instanceId;
    },
    ungroupSelected(id = this.selectedId) {
      const next = id && ungroupScene(flowScene(this), id, this.gdoc.definitions || {}, this.scopeExposed());
      if (!next) { this.notify("Select one group to ungroup"); return null; }
      this.showScene(next, next.exposed);
      return next.ids;
    },
    scopeExposed() {
      // What the entered group exposes (null on the graph itself).
      if (!this.scopes.length) return null;
      const def = this.gdoc.definitions[this.scopes[this.scopes.length - 1].name];
      return { inputs: def.inputs || [], outputs: def.outputs || [], params: def.params || [] };
    },
    showScene(scene, exposed = null) {
      // Put an edited scene (and, inside a group, what it now exposes) on the canvas as one undoable edit.
      const doc = this.doc();
      const at = this.scopes.length ? doc.definitions[this.scopes[this.scopes.length - 1].name] : doc;
      at.nodes = scene.nodes;
      at.links = scene.links;
      if (exposed && this.scopes.length) Object.assign(at, exposed);
      this.applyDoc(doc, { keepRun: true });
      this.commit();
    },
    async saveGroupToLibrary(name) {
      await this.syncNow();
      try {
        const res = await this.api.post("/groups/save", { name });
        this.notify(`Saved the group ${name} as ${res.path} in the library`);
        await this.loadLibraryGroups();
      } catch (e) { this.notify(`Group not saved: ${e.message}`, "error"); }
    },
    // ---- modes
    toggleMode(mode, ids = null) {
      ids = ids || this.flow.getSelectedNodes.value.map((n) => n.id);
      if (!ids.length) return;
      const nodes = ids.map((id) => this.flow.findNode(id)).filter(Boolean);
      const on = !nodes.every((n) => n.data.mode === mode);
      for (const n of nodes) n.data = { ...n.data, mode: on ? mode : undefined };
      this.markStale(ids);
      this.commit();
    },
    groupKey(e) {
      // Ctrl+B bypass, Ctrl+M mute, Ctrl+G group, Ctrl+Shift+G ungroup, Ctrl+E enter, Escape leaves; true
      // when handled.
      const mod = e.ctrlKey || e.metaKey;
      const k = e.key.toLowerCase();
      if (e.key === "Escape" && this.scopes.length && !this.quick && !this.groupDialog) { this.leaveGroup(); return true; }
      if (!mod) return false;
      if (k === "b") this.toggleMode("bypass");
      else if (k === "m") this.toggleMode("mute");
      else if (k === "g" && e.shiftKey) this.ungroupSelected();
      else if (k === "g") this.openGroupDialog();
      else if (k === "e" && this.selectedId) this.enterGroup(this.selectedId);
      else return false;
      e.preventDefault();
      return true;
    },
  },
};

function flowScene(ed) {
  // The scene on the canvas as document nodes and links.
  const { nodes, links } = ed.sceneDoc();
  return { nodes, links };
}

// Context-menu entries (menus.js): bypass, mute and group a node (or the selection it belongs to); enter and
// ungroup a group instance; leave an entered group from the canvas.
addMenuItems((kind, t, ed) => {
  if (kind === "canvas")
    return ed.scopes.length ? [{ label: "Leave group", key: "leave-group", hint: "Esc", action: () => ed.leaveGroup() }] : [];
  if (kind !== "node") return [];
  const ids = t.ids;
  const nodes = ids.map((id) => ed.flow.findNode(id)).filter(Boolean);
  const all = (mode) => nodes.length && nodes.every((n) => n.data.mode === mode);
  const one = nodes.length === 1 && groupName(nodes[0].data.type) ? ids[0] : null;
  return [
    { label: all("bypass") ? "Stop bypassing" : "Bypass", key: "bypass", hint: "Ctrl+B", action: () => ed.toggleMode("bypass", ids) },
    { label: all("mute") ? "Unmute" : "Mute", key: "mute", hint: "Ctrl+M", action: () => ed.toggleMode("mute", ids) },
    { label: ids.length > 1 ? `Group ${ids.length} nodes…` : "Group…", key: "group", hint: "Ctrl+G", action: () => ed.openGroupDialog(ids) },
    ...(one ? [{ label: "Enter group", key: "enter-group", hint: "Ctrl+E", action: () => ed.enterGroup(one) },
               { label: "Ungroup", key: "ungroup", hint: "Ctrl+Shift+G", action: () => ed.ungroupSelected(one) }] : []),
  ];
});

// The breadcrumb and the group actions, over the canvas; `ed` is the editor (as the toolbar's).
export const GroupBar = {
  name: "GroupBar",
  props: ["ed"],
  computed: {
    selectedGroup() {
      const id = this.ed.selectedId;
      const n = id && this.ed.flow.findNode(id);
      return n ? groupName(n.data.type) : null;
    },
  },
  template: `
  <div v-if="ed.scopes.length || ed.selection.length" class="ng-groupbar">
    <span class="ng-crumbs" data-role="breadcrumb">
      <a class="ng-link" :class="{'ng-crumb-here': !ed.scopes.length}" @click="ed.leaveGroup(0)">{{ ed.meta.name || 'graph' }}</a>
      <template v-for="(s, i) in ed.scopes" :key="i">
        <span class="ng-dim">›</span>
        <a class="ng-link" :class="{'ng-crumb-here': i === ed.scopes.length - 1}" :data-scope="s.name"
           @click="ed.leaveGroup(i + 1)">{{ s.name }} <span class="ng-dim">({{ s.instance }})</span></a>
      </template>
    </span>
    <template v-if="ed.selection.length">
      <button class="ng-gb-btn" @click="ed.openGroupDialog()" aria-label="Group the selection" title="Ctrl+G">Group</button>
      <button class="ng-gb-btn" @click="ed.toggleMode('bypass')" aria-label="Bypass the selection" title="Ctrl+B">Bypass</button>
      <button class="ng-gb-btn" @click="ed.toggleMode('mute')" aria-label="Mute the selection" title="Ctrl+M">Mute</button>
    </template>
    <template v-if="selectedGroup">
      <button class="ng-gb-btn" @click="ed.enterGroup(ed.selectedId)" aria-label="Enter the group">Enter</button>
      <button class="ng-gb-btn" @click="ed.ungroupSelected()" aria-label="Ungroup" title="Ctrl+Shift+G">Ungroup</button>
      <button class="ng-gb-btn" @click="ed.saveGroupToLibrary(selectedGroup)" aria-label="Save the group to the library">Save group</button>
    </template>
  </div>`,
};

// Name the new group and pick the params it exposes (its ports are the links crossing the selection).
export const GroupDialog = {
  name: "GroupDialog",
  props: ["state"],
  emits: ["done", "cancel"],
  template: `
  <div class="ng-group-dialog" role="dialog" aria-label="Group nodes" @keydown.stop @mousedown.stop>
    <div class="ng-dialog-title">Group {{ state.ids.length }} node{{ state.ids.length > 1 ? 's' : '' }}</div>
    <label>Name <input v-model="state.name" aria-label="Group name" @keydown.enter="$emit('done', state)"></label>
    <div class="ng-dim">Links crossing the selection become the group's inputs and outputs (untick one to drop its
      links):</div>
    <div class="ng-group-params" data-role="group-ports">
      <label v-for="p in state.ports.inputs" :key="'in' + p.key"><input type="checkbox" :value="p.key" v-model="state.keepInputs"> in: {{ p.label }}</label>
      <label v-for="p in state.ports.outputs" :key="'out' + p.key"><input type="checkbox" :value="p.key" v-model="state.keepOutputs"> out: {{ p.label }}</label>
      <div v-if="!state.ports.inputs.length && !state.ports.outputs.length" class="ng-dim">no link crosses the selection</div>
    </div>
    <div class="ng-dim">Params to expose on the group:</div>
    <div class="ng-group-params">
      <label v-for="p in state.params" :key="p"><input type="checkbox" :value="p" v-model="state.chosen"> {{ p }}</label>
    </div>
    <div class="ng-group-actions">
      <button class="ng-gb-btn" @click="$emit('cancel')">Cancel</button>
      <button class="ng-gb-btn ng-gb-primary" @click="$emit('done', state)" aria-label="Make the group">Group</button>
    </div>
  </div>`,
};
