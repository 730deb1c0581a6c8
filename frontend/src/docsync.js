// The document in the browser and its copy on the server: the flow <-> JSON mapping, applying an opened
// document, the undo history (snapshots), and the autosave that keeps the server's working copy in step.
import { markRaw } from "vue";
import { History, docToFlow, emptyDoc, flowToDoc } from "nodegraph-ui/model.js";

export const docSyncMixin = {
  data() {
    return { meta: emptyDoc(), dirty: false, historyTick: 0, problems: {}, graphProblems: [] };
  },
  computed: {
    canUndo() { return this.historyTick >= 0 && this.history.canUndo(); },
    canRedo() { return this.historyTick >= 0 && this.history.canRedo(); },
  },
  created() {
    this.history = markRaw(new History());
    this.syncTimer = null;
    this.lastCoalesce = { key: null, t: 0 };
  },
  methods: {
    doc() {
      // the whole document: the canvas, with what it does not show (group definitions, the graph around an
      // entered group) put back by groups.js
      return this.assembleDoc(flowToDoc(this.meta, this.flow.nodes.value, this.links()));
    },
    links() {
      return this.pendingEdges || this.flow.edges.value;
    },
    applyDoc(doc, { fit = false, resetHistory = false, keepRun = false } = {}) {
      const shown = this.adoptDoc(doc, resetHistory);  // the graph, or the entered group's definition
      const { nodes, edges } = docToFlow(shown, this.catalogue);
      if (fit && nodes.length) this.preFit(nodes);  // draw at the final zoom at once (level of detail)
      // ui (frames, comments, reroute points) is the shown scene's own: a group's annotations are its definition's
      this.meta = { name: doc.name, description: doc.description || "", seed: doc.seed || 0, ui: shown.ui || {} };
      this.flow.setNodes(nodes);
      // An opened graph draws its links once its nodes are measured: links drawn before that are drawn
      // twice (unmeasured, then measured), which was a third of the time to open a 200-node graph.
      this.pendingEdges = fit && edges.length ? edges : null;
      this.setEdgesTrusted(this.pendingEdges ? [] : edges);
      if (!this.pendingEdges) this.$nextTick(() => this.applyRoutes());
      if (!keepRun) { this.dispatchRun({ type: "forget" }); this.clearPreviews(); this.problems = {}; this.graphProblems = []; }
      else this.forgetMissing();
      if (resetHistory) { this.history.reset(this.doc()); this.historyTick++; }
      if (fit) {
        this.pendingLayout = true;
        setTimeout(() => this.afterLayout(), 1500);  // in case the nodes-initialized event came early (or never)
      }
      this.onSelection();
    },
    setEdgesTrusted(edges) {
      // Links of a document were checked when it was made; checking each again as Vue Flow adds it is O(links^2).
      this.trustLinks = true;
      try { this.flow.setEdges(edges); } finally { this.trustLinks = false; }
    },
    drawPendingEdges() {
      if (!this.pendingEdges) return;
      const edges = this.pendingEdges;
      this.pendingEdges = null;
      this.setEdgesTrusted(edges);
      this.applyRoutes();
    },
    commit(coalesceKey = null) {
      const doc = this.doc();
      const now = performance.now();
      const merge = coalesceKey && this.lastCoalesce.key === coalesceKey && now - this.lastCoalesce.t < 1000;
      this.lastCoalesce = { key: coalesceKey, t: now };
      if (merge && this.history.index > 0) this.history.stack[this.history.index] = JSON.stringify(doc);
      else if (!this.history.push(doc)) return;
      this.historyTick++;
      this.dirty = true;
      this.scheduleSync();
    },
    scheduleSync() {
      clearTimeout(this.syncTimer);
      this.syncTimer = setTimeout(() => this.syncNow(), 300);
    },
    async syncNow() {
      clearTimeout(this.syncTimer);
      this.syncTimer = null;
      try {
        const res = await this.api.put("/document", { doc: this.doc(), dirty: this.dirty });
        this.setProblems(res.problems);
      } catch (e) {
        if (e.problems && e.problems.length) this.setProblems(e.problems);
        else this.notify(`Autosave failed: ${e.message}`, "error");
      }
    },
    setProblems(list) {
      const byNode = {};
      const graph = [];
      for (const p of list || []) {
        // p.node is a flat path id: a node inside a group is shown on its instance (or, entered, on itself)
        if (p.node && this.flow.findNode(this.localId(p.node) || "")) (byNode[p.node] = byNode[p.node] || []).push(p);
        else if (!this.echoes(p, list)) graph.push(p);
      }
      this.problems = byNode;
      this.graphProblems = graph;
    },
    async confirmDiscard() {
      return !this.dirty || window.confirm("Discard the unsaved changes to this graph?");
    },
    undo() { const d = this.history.undo(); if (d) this.restore(d); },
    redo() { const d = this.history.redo(); if (d) this.restore(d); },
    restore(doc) {
      const before = this.sceneDoc();
      this.applyDoc(doc, { keepRun: true });
      // what undo changed no longer shows what ran: its badges go stale like an edit's (compared on the canvas:
      // inside a group, its definition's nodes)
      this.markStale(changedNodes(before, this.sceneDoc()));
      this.historyTick++;
      this.dirty = true;
      this.scheduleSync();
    },
  },
};

/** Ids of nodes whose params or incoming links differ between two documents (present in `after`). */
export function changedNodes(before, after) {
  const key = (doc) => {
    const out = {};
    for (const n of doc.nodes) out[n.id] = JSON.stringify([n.type, n.params || {}]);
    for (const l of doc.links) out[l.to[0]] = (out[l.to[0]] || "") + `|${l.from.join(".")}>${l.to[1]}`;
    return out;
  };
  const a = key(before), b = key(after);
  return after.nodes.map((n) => n.id).filter((id) => a[id] !== b[id]);
}
