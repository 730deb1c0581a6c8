// Editing the graph on the canvas: params, adding nodes, links (checked while dragging), delete, copy / cut /
// paste / duplicate, select, and the keyboard shortcuts.
import { downstream, freshId, linkProblem, makeEdge } from "nodegraph-ui/model.js";

const IS_TYPING = (el) => el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
const CLIP_KEY = "nodegraph-clipboard";

export const editingMixin = {
  data() {
    return { hint: "", quick: null, selection: [] };
  },
  created() {
    this.clipboard = null;
    this.pointer = null;  // the last pointer position over the canvas, in flow coordinates (paste lands there)
  },
  methods: {
    markStale(ids) {
      // what ran downstream of the edited nodes, and what is inside an edited group instance (run states are
      // under the engine's flat path ids)
      const flats = [...downstream(ids, this.links())].map((x) => this.flatId(x));
      const hit = Object.keys(this.run).filter((id) => flats.some((f) => id === f || id.startsWith(f + "/")));
      this.dispatchRun({ type: "edited", ids: hit });
    },
    setParam(id, name, value) {
      const node = this.flow.findNode(id);
      if (!node) return;
      node.data.params = { ...node.data.params, [name]: value };
      this.markStale([id]);
      this.commit(`${id}.${name}`);
    },
    setUi(id, patch) {
      // the node's `ui` section: saved in the graph, ignored by the engine (labels, colours...)
      const node = this.flow.findNode(id);
      if (!node) return;
      const ui = { ...(node.data.ui || {}), ...patch };
      for (const [k, v] of Object.entries(patch)) if (v === null || v === "") delete ui[k];
      node.data.ui = ui;
      this.commit();
    },
    centerPosition() {
      const el = this.$refs.canvas.getBoundingClientRect();
      return this.flow.screenToFlowCoordinate({ x: el.left + el.width / 2 - 120, y: el.top + el.height / 3 });
    },
    addNode(type, position) {
      const spec = this.catalogue.spec(type);
      if (!spec) return null;
      const taken = new Set(this.flow.nodes.value.map((n) => n.id));
      if (spec.library) this.importLibraryGroup(spec);  // a library group brings its definitions
      const id = freshId(spec.group || spec.name, taken);
      this.flow.addNodes([{ id, type: "ng", position: position || this.centerPosition(),
                            data: { type: spec.name, params: {}, ui: {} } }]);
      this.commit();
      return id;
    },
    onDrop(e) {
      const type = e.dataTransfer.getData("application/x-nodegraph-type");
      if (!type) return;
      e.preventDefault();
      this.addNode(type, this.flow.screenToFlowCoordinate({ x: e.clientX, y: e.clientY }));
    },
    onPointer(e) {
      this.pointer = this.flow.screenToFlowCoordinate({ x: e.clientX, y: e.clientY });
    },
    openQuick(clientX, clientY, link = null) {
      const box = this.$refs.canvas.getBoundingClientRect();
      this.quick = { x: clientX - box.left, y: clientY - box.top, link,
                     at: this.flow.screenToFlowCoordinate({ x: clientX, y: clientY }) };
    },
    onDblClick(e) {
      if (!e.target.classList || !e.target.classList.contains("vue-flow__pane")) return;
      this.openQuick(e.clientX, e.clientY);
    },
    quickAdd(type) {
      const q = this.quick;
      this.quick = null;
      const id = this.addNode(type, q && q.at);
      if (id && q && q.link) this.linkNew(q.link, id);
    },
    validConnection(conn) {
      if (this.trustLinks) return true;
      const problem = linkProblem(conn, this.flow.nodes.value, this.flow.edges.value, this.catalogue);
      this.hint = problem || "";
      return !problem;
    },
    connect(conn) {
      // one link, replacing the old link of an input that takes one; false when it is refused
      const edges = this.flow.edges.value;
      if (linkProblem(conn, this.flow.nodes.value, edges, this.catalogue)) return false;
      const dst = this.flow.findNode(conn.target);
      const inp = this.catalogue.spec(dst.data.type).inputs.find((i) => i.name === conn.targetHandle);
      if (!inp.multiple) {
        const old = edges.filter((e) => e.target === conn.target && e.targetHandle === conn.targetHandle);
        if (old.length) this.flow.removeEdges(old.map((e) => e.id));
      }
      const src = this.flow.findNode(conn.source);
      const out = this.catalogue.spec(src.data.type).outputs.find((o) => o.name === conn.sourceHandle);
      const edge = makeEdge({ src: conn.source, srcPort: conn.sourceHandle, dst: conn.target, dstPort: conn.targetHandle },
                            this.catalogue.color(out.type));
      if (!this.flow.edges.value.some((e) => e.id === edge.id)) this.flow.addEdges([edge]);
      this.markStale([conn.target]);
      return true;
    },
    onConnect(conn) {
      this.hint = "";
      this.linkDropped = true;
      if (this.connect(conn)) this.commit();
    },
    onConnectStart(ev) {
      this.linkDropped = false;
      this.dragFrom = ev && ev.nodeId ? { node: ev.nodeId, port: ev.handleId, side: ev.handleType } : null;
    },
    onConnectEnd(ev) {
      setTimeout(() => (this.hint = ""), 1200);
      const from = this.dragFrom;
      this.dragFrom = null;
      // a link dropped on the empty canvas: search the nodes that can take (or give) it, link the chosen one
      const target = ev && ev.target;
      if (from && !this.linkDropped && target && target.classList && target.classList.contains("vue-flow__pane"))
        this.openQuick(ev.clientX, ev.clientY, from);
    },
    linkNew(from, id) {
      const spec = this.catalogue.spec(this.flow.findNode(id).data.type);
      const mine = this.catalogue.spec(this.flow.findNode(from.node).data.type);
      let conn = null;
      if (from.side === "source") {
        const out = mine.outputs.find((o) => o.name === from.port);
        const inp = spec.inputs.find((i) => i.type === out.type) || spec.inputs.find((i) => i.type === "Any");
        if (inp) conn = { source: from.node, sourceHandle: from.port, target: id, targetHandle: inp.name };
      } else {
        const inp = mine.inputs.find((i) => i.name === from.port);
        const out = spec.outputs.find((o) => o.type === inp.type || inp.type === "Any");
        if (out) conn = { source: id, sourceHandle: out.name, target: from.node, targetHandle: from.port };
      }
      if (conn && this.connect(conn)) this.commit();
    },
    selectedIds() {
      return this.flow.getSelectedNodes.value.map((n) => n.id);
    },
    deleteNodes(nodes, edges = []) {
      if (!nodes.length && !edges.length) return;
      this.markStale([...nodes, ...edges.map((e) => e.target)]);
      if (edges.length) this.flow.removeEdges(edges.map((e) => e.id));
      if (nodes.length) this.flow.removeNodes(nodes, true);
      const flats = nodes.map((id) => this.flatId(id));
      this.dispatchRun({ type: "forget", ids: Object.keys(this.run).filter((id) => flats.some((f) => id === f || id.startsWith(f + "/"))) });
      for (const id of Object.keys(this.previews)) if (flats.some((f) => id === f || id.startsWith(f + "/"))) this.clearPreviews(id);
      this.onSelection();  // the status line's "N selected" follows at once
      this.commit();
    },
    deleteSelection() {
      this.deleteNodes(this.selectedIds(), this.flow.getSelectedEdges.value);
    },
    clip(ids) {
      const set = new Set(ids);
      const doc = this.sceneDoc();  // the nodes on the canvas (a group's, when one is entered)
      const nodes = doc.nodes.filter((n) => set.has(n.id));
      // copied group instances carry their definitions, so they paste into another graph (or tab)
      return { nodes, links: doc.links.filter((l) => set.has(l.from[0]) && set.has(l.to[0])),
               definitions: this.clipDefinitions(nodes) };
    },
    copy(ids = null) {
      ids = ids || this.selectedIds();
      if (!ids.length) return false;
      this.clipboard = this.clip(ids);
      try { localStorage.setItem(CLIP_KEY, JSON.stringify(this.clipboard)); } catch (e) { /* private mode */ }
      this.notify(`Copied ${ids.length} node${ids.length > 1 ? "s" : ""}`);
      return true;
    },
    cut() {
      const ids = this.selectedIds();
      if (this.copy(ids)) this.deleteNodes(ids);
    },
    paste(at = undefined) {
      let clip = this.clipboard;
      try { clip = JSON.parse(localStorage.getItem(CLIP_KEY)) || clip; } catch (e) { /* keep */ }
      if (!clip || !clip.nodes.length) return;
      this.insertClip(clip, at === undefined ? this.pointer : at);
    },
    duplicate(ids = null) {
      ids = ids || this.selectedIds();
      if (ids.length) this.insertClip(this.clip(ids), null);
    },
    insertClip(clip, at) {
      // new ids, selected; `at` (flow coordinates) is where the top-left of the pasted nodes lands, else +40
      this.pasteDefinitions(clip);
      const taken = new Set(this.flow.nodes.value.map((n) => n.id));
      const rename = {};
      for (const n of clip.nodes) { rename[n.id] = freshId(n.type, taken); taken.add(rename[n.id]); }
      const xs = clip.nodes.map((n) => n.ui?.pos?.[0] || 0), ys = clip.nodes.map((n) => n.ui?.pos?.[1] || 0);
      const dx = at ? at.x - Math.min(...xs) : 40, dy = at ? at.y - Math.min(...ys) : 40;
      this.flow.nodes.value.forEach((n) => (n.selected = false));
      const nodes = clip.nodes.map((n) => {
        const { pos, ...ui } = n.ui || {};
        return { id: rename[n.id], type: "ng", selected: true,
                 position: { x: (pos?.[0] || 0) + dx, y: (pos?.[1] || 0) + dy },
                 data: { type: n.type, params: JSON.parse(JSON.stringify(n.params || {})), ui: JSON.parse(JSON.stringify(ui)),
                         ...(n.mode ? { mode: n.mode } : {}) } };
      });
      this.flow.addNodes(nodes);
      const edges = clip.links.map((l) => {
        const spec = this.catalogue.spec(clip.nodes.find((n) => n.id === l.from[0]).type);
        const out = spec && spec.outputs.find((o) => o.name === l.from[1]);
        return makeEdge({ src: rename[l.from[0]], srcPort: l.from[1], dst: rename[l.to[0]], dstPort: l.to[1] },
                        out ? this.catalogue.color(out.type) : "#888");
      });
      if (edges.length) this.flow.addEdges(edges);
      this.commit();
      this.$nextTick(() => this.onSelection());
      return nodes.map((n) => n.id);
    },
    selectAll() { this.flow.nodes.value.forEach((n) => (n.selected = true)); },
    onKey(e) {
      const mod = e.ctrlKey || e.metaKey;
      const k = e.key.toLowerCase();
      if (mod && k === "s") { e.preventDefault(); this.save(); return; }
      if (mod && k === "enter") { e.preventDefault(); this.startRun(); return; }
      if (IS_TYPING(document.activeElement) || Object.values(this.dialogs).some((d) => d)) return;
      if (this.groupKey(e)) return;  // bypass, mute, group, ungroup, enter, leave (groups.js)
      if (mod && k === "z" && !e.shiftKey) { e.preventDefault(); this.undo(); }
      else if (mod && (k === "y" || (k === "z" && e.shiftKey))) { e.preventDefault(); this.redo(); }
      else if (mod && k === "c") this.copy();
      else if (mod && k === "x") { e.preventDefault(); this.cut(); }
      else if (mod && k === "v") this.paste();
      else if (mod && k === "d") { e.preventDefault(); this.duplicate(); }
      else if (mod && k === "a") { e.preventDefault(); this.selectAll(); }
      else if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); this.deleteSelection(); }
      else if (!mod && k === "f") this.fit();
      else if (e.key === "Escape") { this.quick = null; this.menu = null; }
    },
    onSelection() {
      this.selection = this.flow.getSelectedNodes.value.map((n) => n.id);
    },
  },
};
