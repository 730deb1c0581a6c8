// The editor page: toolbar, palette, canvas (Vue Flow), inspector with the 3D view, dialogs.
// It owns the document in the browser, keeps the server's working copy in sync (autosave), and turns the
// executor's events (websocket) into node states, progress and previews.
import { markRaw, nextTick } from "vue";
import { VueFlow, useVueFlow } from "@vue-flow/core";
import { MiniMap } from "@vue-flow/minimap";
import { Api, EventSocket } from "nodegraph-ui/api.js";
import { Catalogue, History, docToFlow, downstream, emptyDoc, flowToDoc, freshId, linkProblem, makeEdge } from "nodegraph-ui/model.js";
import { COMPACT_BELOW, FLOW_ID, GraphNode, categoryColor, fmtSeconds } from "nodegraph-ui/node.js";
import { Palette, QuickAdd } from "nodegraph-ui/palette.js";
import { GroupBar, GroupDialog, GroupsMixin } from "nodegraph-ui/groups.js";
import { RunsPanel } from "nodegraph-ui/runs.js";
import { summaryLines } from "nodegraph-ui/summary.js";
import { exportPython } from "nodegraph-ui/export.js";

const IS_TYPING = (el) => el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);

export default {
  name: "NodegraphEditor",
  components: { VueFlow, MiniMap, Palette, QuickAdd, GroupBar, GroupDialog, RunsPanel },
  mixins: [GroupsMixin],
  props: { token: String },
  setup() {
    const flow = useVueFlow(FLOW_ID);
    return { flow, flowId: FLOW_ID, nodeTypes: { ng: markRaw(GraphNode) } };
  },
  provide() {
    return { ng: this };
  },
  data() {
    return {
      ready: false, loadError: "", catalogue: null, api: null,
      meta: emptyDoc(), path: null, collection: null, libraryDir: "", dirty: false,
      run: {}, previews: {}, problems: {}, graphProblems: [],
      running: false, runInfo: "", runDetail: "", runOk: null, connected: false, outDir: "",
      hint: "", tip: null, quick: null, toast: null,
      dialogs: { open: false, save: false, error: null, image: null, details: false },
      library: [], examples: [], saveName: "", selection: [],
      side: false, has3d: false, view3dError: "", view3dKeys: [],
      showMap: true, historyTick: 0, runsFinished: 0, zoom: 1,
    };
  },
  computed: {
    title() { return (this.meta.name || "untitled") + (this.dirty ? " •" : ""); },
    docPlace() {
      if (!this.path) return "not saved yet";
      if (this.collection === "examples") return `the example ${this.path}: read only, Save makes a copy in the library`;
      return this.collection === "library" ? `saved as ${this.libraryDir}/${this.path}` : `opened from ${this.path}`;
    },
    canUndo() { return this.historyTick >= 0 && this.history.canUndo(); },
    canRedo() { return this.historyTick >= 0 && this.history.canRedo(); },
    selectedId() { return this.selection.length === 1 ? this.selection[0] : null; },
    selectedSpec() {
      const n = this.selectedId && this.flow.findNode(this.selectedId);
      return n ? this.catalogue.spec(n.data.type) : null;
    },
  },
  created() {
    this.api = markRaw(new Api(this.token));
    this.history = markRaw(new History());
    this.syncTimer = null;
    this.clipboard = null;
    this.fileCache = {};
    this.lastCoalesce = { key: null, t: 0 };
  },
  async mounted() {
    await nextTick();  // window.path_prefix is set after the first tick
    this.api.prefix = window.path_prefix || "";
    try {
      const [cat, info, examples] = await Promise.all([
        this.api.get("/catalogue"), this.api.get("/document"), this.api.get("/graphs?collection=examples")]);
      this.catalogue = markRaw(new Catalogue(cat));
      this.examples = examples.graphs;
      this.ready = true;
      await nextTick();
      this.applyDoc(info.doc, { fit: true, resetHistory: true, keepRun: true });
      this.path = info.path;
      this.collection = info.collection;
      this.libraryDir = info.library_dir || "";
      this.dirty = info.dirty;
      this.setProblems(info.problems);
      this.loadLibraryGroups();
      if (info.startup_problems && info.startup_problems.length)
        this.notify(`Could not open the start graph: ${info.startup_problems[0].message}`, "error");
    } catch (e) {
      this.loadError = `Cannot reach the nodegraph server: ${e.message}`;
      return;
    }
    this.socket = markRaw(new EventSocket(this.api, (e) => this.onEvent(e), (s) => (this.connected = s === "open")));
    this.keyHandler = (e) => this.onKey(e);
    window.addEventListener("keydown", this.keyHandler);
    this.unloadHandler = (e) => {
      if (this.dirty) { e.preventDefault(); e.returnValue = ""; }
    };
    window.addEventListener("beforeunload", this.unloadHandler);
    this.hideHandler = () => { if (this.syncTimer) this.api.beacon("/document", { doc: this.doc(), dirty: this.dirty }); };
    window.addEventListener("pagehide", this.hideHandler);
    window.nodegraphEditor = this;  // for tests and the console
  },
  unmounted() {
    if (this.socket) this.socket.close();
    window.removeEventListener("keydown", this.keyHandler);
    window.removeEventListener("beforeunload", this.unloadHandler);
    window.removeEventListener("pagehide", this.hideHandler);
    if (this.viewer) this.viewer.dispose();
  },
  methods: {
    // ------------------------------------------------------------------ document
    doc() {
      return this.assembleDoc(flowToDoc(this.meta, this.flow.nodes.value, this.links()));
    },
    links() {
      return this.pendingEdges || this.flow.edges.value;
    },
    applyDoc(doc, { fit = false, resetHistory = false, keepRun = false } = {}) {
      const { nodes, edges } = docToFlow(this.adoptDoc(doc, resetHistory), this.catalogue);
      if (fit && nodes.length) this.preFit(nodes);  // draw at the final zoom at once (level of detail)
      this.meta = { name: doc.name, description: doc.description || "", seed: doc.seed || 0, ui: doc.ui || {} };
      this.flow.setNodes(nodes);
      // An opened graph draws its links once its nodes are measured: links drawn before that are drawn
      // twice (unmeasured, then measured), which was a third of the time to open a 200-node graph.
      this.pendingEdges = fit && edges.length ? edges : null;
      this.setEdgesTrusted(this.pendingEdges ? [] : edges);
      if (!keepRun) { this.run = {}; this.clearPreviews(); this.problems = {}; this.graphProblems = []; }
      if (resetHistory) { this.history.reset(this.doc()); this.historyTick++; }
      if (fit) {
        this.pendingLayout = true;
        setTimeout(() => this.afterLayout(), 1500);  // in case the nodes-initialized event came early (or never)
      }
    },
    preFit(nodes) {
      // Set the final viewport before the nodes are drawn, from estimated node sizes, so they are drawn once at
      // the right level of detail; afterLayout corrects it from the measured sizes only if it is visibly off.
      this.canvasBox = this.$refs.canvas ? this.$refs.canvas.getBoundingClientRect() : { width: 1200, height: 800 };
      const sized = (full) => nodes.map((n) => ({ x: n.position.x, y: n.position.y, ...this.estimateSize(n.data.type, full) }));
      let view = this.viewportFor(sized(false));
      if (view.zoom >= COMPACT_BELOW) view = this.viewportFor(sized(true));
      this.flow.setViewport(view);
      this.zoom = view.zoom;
    },
    estimateSize(type, full) {
      // A node's drawn size before it is measured: compact (ports only) or full (with a row per param).
      const spec = this.catalogue.spec(type);
      const rows = spec ? Math.max(spec.inputs.length, spec.outputs.length) : 0;
      return { w: 240, h: 40 + rows * 20 + (full && spec ? spec.params.length * 25 : 0) };
    },
    viewportFor(boxes, padding = 0.06) {
      const x0 = Math.min(...boxes.map((b) => b.x)), y0 = Math.min(...boxes.map((b) => b.y));
      const x1 = Math.max(...boxes.map((b) => b.x + b.w)), y1 = Math.max(...boxes.map((b) => b.y + b.h));
      const { width, height } = this.canvasBox;
      const zoom = Math.max(0.1, Math.min(1, width / ((x1 - x0) * (1 + 2 * padding)), height / ((y1 - y0) * (1 + 2 * padding))));
      return { x: (width - zoom * (x1 - x0)) / 2 - zoom * x0, y: (height - zoom * (y1 - y0)) / 2 - zoom * y0, zoom };
    },
    fitMeasured() {
      const boxes = this.flow.nodes.value.filter((n) => n.dimensions && n.dimensions.width).map((n) => (
        { x: n.position.x, y: n.position.y, w: n.dimensions.width, h: n.dimensions.height }));
      if (!boxes.length || !this.canvasBox) { this.flow.fitView({ padding: 0.08, maxZoom: 1 }).then(() => this.onMoveEnd()); return; }
      const want = this.viewportFor(boxes), now = this.flow.viewport.value;
      // Moving the viewport forces a layout of every node: skip it when the estimate was close enough.
      if (Math.abs(want.zoom - now.zoom) > 0.02 * now.zoom || Math.abs(want.x - now.x) > 12 || Math.abs(want.y - now.y) > 12)
        this.flow.setViewport(want).then(() => this.onMoveEnd());
    },
    onMoveEnd() {
      this.zoom = this.flow.viewport.value.zoom;
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
    },
    afterLayout() {
      this.drawPendingEdges();
      if (!this.pendingLayout) return;
      this.pendingLayout = false;
      if (this.spread()) this.history.stack[this.history.index] = JSON.stringify(this.doc());
      this.fitMeasured();
    },
    spread(gap = 18) {
      // Positions written by hand or by the CLI's auto layout do not know how tall a node is drawn: push
      // overlapping nodes down (a view fix, not an edit).
      const boxes = [];
      let moved = false;
      const nodes = [...this.flow.nodes.value].sort((a, b) => a.position.y - b.position.y || a.position.x - b.position.x);
      for (const n of nodes) {
        const full = this.estimateSize(n.data.type, true);  // as drawn zoomed in, whatever the zoom is now
        const w = (n.dimensions && n.dimensions.width) || full.w;
        const h = Math.max((n.dimensions && n.dimensions.height) || 0, full.h);
        const x = n.position.x;
        let y = n.position.y;
        for (let again = true; again;) {
          again = false;
          for (const b of boxes) {
            if (x < b.x + b.w && x + w > b.x && y < b.y + b.h + gap && y + h + gap > b.y) {
              y = b.y + b.h + gap; again = true;
            }
          }
        }
        if (y !== n.position.y) { n.position = { x, y }; moved = true; }
        boxes.push({ x, y, w, h });
      }
      return moved;
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
        if (p.node && this.flow.findNode(this.localId(p.node) || "")) (byNode[p.node] = byNode[p.node] || []).push(p);
        else if (!this.echoes(p, list)) graph.push(p);
      }
      this.problems = byNode;
      this.graphProblems = graph;
    },
    markStale(ids) {
      const all = downstream(ids, this.links());
      const run = { ...this.run };
      const flats = [...all].map((x) => this.flatId(x));  // and what is inside an edited group instance
      for (const id of Object.keys(run))
        if (flats.some((f) => id === f || id.startsWith(f + "/"))) run[id] = { ...run[id], state: "stale", progress: null };
      this.run = run;
    },
    async confirmDiscard() {
      return !this.dirty || window.confirm("Discard the unsaved changes to this graph?");
    },
    // ------------------------------------------------------------------ editing
    setParam(id, name, value) {
      const node = this.flow.findNode(id);
      if (!node) return;
      node.data.params = { ...node.data.params, [name]: value };
      this.markStale([id]);
      this.commit(`${id}.${name}`);
    },
    addNode(type, position) {
      const spec = this.catalogue.spec(type);
      if (!spec) return null;
      const taken = new Set(this.flow.nodes.value.map((n) => n.id));
      if (spec.library) this.importLibraryGroup(spec);
      const id = freshId(spec.group || spec.name, taken);
      if (!position) {
        const el = this.$refs.canvas.getBoundingClientRect();
        position = this.flow.screenToFlowCoordinate({ x: el.left + el.width / 2 - 120, y: el.top + el.height / 3 });
      }
      this.flow.addNodes([{ id, type: "ng", position, data: { type: spec.name, params: {}, ui: {} } }]);
      this.commit();
      return id;
    },
    onDrop(e) {
      const type = e.dataTransfer.getData("application/x-nodegraph-type");
      if (!type) return;
      e.preventDefault();
      this.addNode(type, this.flow.screenToFlowCoordinate({ x: e.clientX, y: e.clientY }));
    },
    onDblClick(e) {
      if (!e.target.classList || !e.target.classList.contains("vue-flow__pane")) return;
      const box = this.$refs.canvas.getBoundingClientRect();
      this.quick = { x: e.clientX - box.left, y: e.clientY - box.top,
                     at: this.flow.screenToFlowCoordinate({ x: e.clientX, y: e.clientY }) };
    },
    quickAdd(type) {
      const at = this.quick && this.quick.at;
      this.quick = null;
      this.addNode(type, at);
    },
    validConnection(conn) {
      if (this.trustLinks) return true;
      const problem = linkProblem(conn, this.flow.nodes.value, this.flow.edges.value, this.catalogue);
      this.hint = problem || "";
      return !problem;
    },
    onConnect(conn) {
      this.hint = "";
      const edges = this.flow.edges.value;
      if (linkProblem(conn, this.flow.nodes.value, edges, this.catalogue)) return;
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
      this.commit();
    },
    onConnectEnd() { setTimeout(() => (this.hint = ""), 1200); },
    deleteSelection() {
      const nodes = this.flow.getSelectedNodes.value.map((n) => n.id);
      const edges = this.flow.getSelectedEdges.value;
      if (!nodes.length && !edges.length) return;
      this.markStale([...nodes, ...edges.map((e) => e.target)]);
      if (edges.length) this.flow.removeEdges(edges.map((e) => e.id));
      if (nodes.length) this.flow.removeNodes(nodes, true);
      for (const id of nodes) { delete this.run[id]; this.clearPreviews(id); }
      this.commit();
    },
    copy() {
      const nodes = this.flow.getSelectedNodes.value;
      if (!nodes.length) return;
      const ids = new Set(nodes.map((n) => n.id));
      const doc = this.sceneDoc();  // the nodes on the canvas (a group's, when one is entered)
      this.clipboard = { nodes: doc.nodes.filter((n) => ids.has(n.id)),
                         links: doc.links.filter((l) => ids.has(l.from[0]) && ids.has(l.to[0])) };
      this.clipboard.definitions = this.clipDefinitions(this.clipboard.nodes);
      try { localStorage.setItem("nodegraph-clipboard", JSON.stringify(this.clipboard)); } catch (e) { /* private mode */ }
      this.notify(`Copied ${nodes.length} node${nodes.length > 1 ? "s" : ""}`);
    },
    paste() {
      let clip = this.clipboard;
      try { clip = JSON.parse(localStorage.getItem("nodegraph-clipboard")) || clip; } catch (e) { /* keep */ }
      if (!clip || !clip.nodes.length) return;
      this.pasteDefinitions(clip);
      const taken = new Set(this.flow.nodes.value.map((n) => n.id));
      const rename = {};
      for (const n of clip.nodes) { rename[n.id] = freshId(n.type, taken); taken.add(rename[n.id]); }
      this.flow.nodes.value.forEach((n) => (n.selected = false));
      const nodes = clip.nodes.map((n) => ({
        id: rename[n.id], type: "ng", selected: true,
        position: { x: (n.ui?.pos?.[0] || 0) + 40, y: (n.ui?.pos?.[1] || 0) + 40 },
        data: { type: n.type, params: JSON.parse(JSON.stringify(n.params || {})), ui: {} },
      }));
      this.flow.addNodes(nodes);
      const edges = clip.links.map((l) => {
        const spec = this.catalogue.spec(clip.nodes.find((n) => n.id === l.from[0]).type);
        const out = spec && spec.outputs.find((o) => o.name === l.from[1]);
        return makeEdge({ src: rename[l.from[0]], srcPort: l.from[1], dst: rename[l.to[0]], dstPort: l.to[1] },
                        out ? this.catalogue.color(out.type) : "#888");
      });
      if (edges.length) this.flow.addEdges(edges);
      this.commit();
    },
    undo() { const d = this.history.undo(); if (d) this.restore(d); },
    redo() { const d = this.history.redo(); if (d) this.restore(d); },
    restore(doc) {
      this.applyDoc(doc, { keepRun: true });
      this.historyTick++;
      this.dirty = true;
      this.scheduleSync();
    },
    selectAll() { this.flow.nodes.value.forEach((n) => (n.selected = true)); },
    fit() { this.flow.fitView({ padding: 0.12, maxZoom: 1.2, duration: 200 }); },
    onKey(e) {
      const mod = e.ctrlKey || e.metaKey;
      const k = e.key.toLowerCase();
      if (mod && k === "s") { e.preventDefault(); this.save(); return; }
      if (mod && k === "enter") { e.preventDefault(); this.startRun(); return; }
      if (IS_TYPING(document.activeElement) || Object.values(this.dialogs).some((d) => d)) return;
      if (this.groupKey(e)) return;
      if (mod && k === "z" && !e.shiftKey) { e.preventDefault(); this.undo(); }
      else if (mod && (k === "y" || (k === "z" && e.shiftKey))) { e.preventDefault(); this.redo(); }
      else if (mod && k === "c") this.copy();
      else if (mod && k === "v") this.paste();
      else if (mod && k === "a") { e.preventDefault(); this.selectAll(); }
      else if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); this.deleteSelection(); }
      else if (!mod && k === "f") this.fit();
      else if (e.key === "Escape") this.quick = null;
    },
    onSelection() {
      this.selection = this.flow.getSelectedNodes.value.map((n) => n.id);
    },
    // ------------------------------------------------------------------ files
    async newGraph() {
      if (!(await this.confirmDiscard())) return;
      const info = await this.api.post("/document/new");
      this.loaded(info);
    },
    loaded(info) {
      this.applyDoc(info.doc, { fit: true, resetHistory: true });
      this.path = info.path;
      this.collection = info.collection;
      this.libraryDir = info.library_dir || "";
      this.dirty = info.dirty;
      this.setProblems(info.problems);
      if (this.viewer) this.viewer.clear();
      this.has3d = false;
    },
    async openDialog() {
      this.library = (await this.api.get("/graphs?collection=library")).graphs;
      this.dialogs.open = true;
    },
    async openGraph(collection, path) {
      if (!(await this.confirmDiscard())) return;
      try {
        this.loaded(await this.api.post("/open", { collection, path }));
        this.dialogs.open = false;
        this.notify(`Opened ${path}`);
      } catch (e) {
        this.notify(`Cannot open ${path}: ${e.message}`, "error");
      }
    },
    pickUpload() { this.$refs.upload.value = ""; this.$refs.upload.click(); },
    async upload(e) {
      const file = e.target.files[0];
      if (!file || !(await this.confirmDiscard())) return;
      try {
        this.loaded(await this.api.post("/upload", { text: await file.text(), filename: file.name }));
        this.dialogs.open = false;
        this.notify(`Opened ${file.name}; save it to keep it in the library`);
      } catch (err) {
        this.notify(`Cannot open ${file.name}: ${err.message}`, "error");
      }
    },
    async save() {
      // Examples are read only: saving one asks for a name in the library (its own name is offered).
      if (!this.path || this.collection !== "library") { this.saveAs(); return; }
      await this.saveNamed(this.path.replace(/\.json$/, ""));
    },
    async saveAs() {
      this.saveName = (this.path || this.meta.name || "untitled").replace(/\.json$/, "");
      this.dialogs.save = true;
      try { this.library = (await this.api.get("/graphs?collection=library")).graphs; } catch (e) { /* offline: no overwrite check */ }
    },
    async saveNamed(name) {
      const file = name.replace(/\.json$/, "") + ".json";
      const isCurrent = this.collection === "library" && this.path === file;
      if (!isCurrent && this.library.some((g) => g.path === file) &&
          !window.confirm(`${file} is already in the library. Replace it?`)) return;
      await this.syncNow();
      try {
        const res = await this.api.post("/save", { name });
        this.path = res.path;
        this.collection = res.collection;
        this.dirty = false;
        this.dialogs.save = false;
        this.notify(`Saved ${res.path} in the library`);
      } catch (e) {
        this.notify(`Not saved: ${e.message}`, "error");
      }
    },
    async download() {
      await this.syncNow();
      const a = document.createElement("a");
      a.href = this.api.url("/download") + (this.token ? `?token=${encodeURIComponent(this.token)}` : "");
      a.download = `${this.meta.name || "graph"}.json`;
      document.body.appendChild(a);
      a.click();
      a.remove();
    },
    async exportPython() {
      await this.syncNow();
      try { await exportPython(this.api, this.meta.name); } catch (e) { this.notify(`Not exported: ${e.message}`, "error"); }
    },
    async listFiles(exts) {
      const key = exts.join(",");
      const hit = this.fileCache[key];
      if (hit && performance.now() - hit.t < 10000) return hit.files;
      const res = await this.api.get(`/files?ext=${encodeURIComponent(key)}`);
      this.fileCache[key] = { t: performance.now(), files: res.files };
      return res.files;
    },
    // ------------------------------------------------------------------ running
    async startRun(targets = null) {
      if (this.running) return;
      this.runInfo = "starting…";
      await this.syncNow();
      try {
        const res = await this.api.post("/run", targets ? { targets } : {});
        if (res.out_dir) this.outDir = res.out_dir;
        this.runInfo = targets ? `running up to ${targets.join(", ")}…` : "running…";
        this.runDetail = "";
        this.runOk = null;
      } catch (e) {
        if (e.problems && e.problems.length) {
          this.setProblems(e.problems);
          this.notify(`Cannot run: ${e.problems.length} problem${e.problems.length > 1 ? "s" : ""} (marked on the nodes)`, "error");
        } else this.notify(`Cannot run: ${e.message}`, "error");
      }
    },
    runTo(id) { this.startRun([this.flatId(id)]); },
    async stopRun() {
      await this.api.post("/stop");
      this.runInfo = "stopping…";
    },
    setRun(id, patch, replace = false) {
      this.run[id] = replace ? patch : { ...(this.run[id] || {}), ...patch };
    },
    onEvent(e) {
      switch (e.type) {
        case "hello":
          this.running = !!e.running;
          if (e.out_dir) this.outDir = e.out_dir;
          for (const [id, st] of Object.entries(e.nodes || {})) this.setRun(id, st, true);
          break;
        case "run_started":
          this.running = true;
          this.runStarted = performance.now();
          this.computedThisRun = new Set();
          // a node keeps the files it wrote last until it finishes again (a cached node still has them)
          for (const id of e.order || []) this.setRun(id, { state: "waiting", files: (this.run[id] || {}).files }, true);
          this.problems = {};
          break;
        case "node_started":
          this.setRun(e.node, { state: "running", progress: null });
          break;
        case "node_finished":
          // a node computed earlier in this run and then reused (e.g. by a training loop) stays "done"
          if (e.cached && this.computedThisRun && this.computedThisRun.has(e.node)) break;
          if (!e.cached && this.computedThisRun) this.computedThisRun.add(e.node);
          this.setRun(e.node, { state: e.cached ? "cached" : "done", seconds: e.seconds, outputs: e.outputs,
                                files: e.files || (e.cached ? (this.run[e.node] || {}).files : null) });
          break;
        case "progress":
          this.setRun(e.node, { progress: { iteration: e.iteration, total: e.total, loss: e.loss, losses: e.losses } });
          break;
        case "preview":
          this.onPreview(e);
          break;
        case "node_error":
          if (e.node) this.setRun(e.node, { state: "error", message: e.message, field: e.field, traceback: e.traceback });
          else this.notify(e.message, "error");
          break;
        case "problems":
          this.setProblems(e.problems);
          break;
        case "run_finished": {
          this.running = false;
          for (const [id, st] of Object.entries(this.run)) if (st.state === "waiting" || st.state === "running") this.setRun(id, { state: "" });
          if (e.status === "error" && e.error && e.error.node && (this.run[e.error.node] || {}).state !== "error")
            this.setRun(e.error.node, { state: "error", message: e.error.message, field: e.error.field });
          this.runOk = e.status === "ok";
          this.runsFinished += 1;
          this.runInfo = e.status === "ok" ? `done in ${fmtSeconds(e.seconds)}` : e.status === "cancelled"
            ? (e.cache_dropped ? "stopped · worker ended, cache dropped" : "stopped")
            : `failed${e.error && e.error.node ? " in " + e.error.node : ""}: ${(e.error && e.error.message) || ""}`;
          // a worker ended by Stop (a node stuck in one long call) or one that died takes its cache with it
          this.runDetail = e.cache_dropped ? (e.message || (e.error && e.error.message) || "") +
            " The next run starts a fresh worker and computes every node again." : "";
          break;
        }
      }
    },
    onPreview(e) {
      const slot = { ...(this.previews[e.node] || {}) };
      const old = slot[e.port];
      if (e.kind === "image") {
        if (old && old.url) URL.revokeObjectURL(old.url);
        slot[e.port] = { kind: "image", url: URL.createObjectURL(new Blob([e.data], { type: e.mime || "image/png" })),
                         width: e.width, height: e.height, t: e.t };
      } else if (e.kind === "plot") {
        slot[e.port] = { kind: "plot", series: e.series };
      } else if (e.kind === "mesh" || e.kind === "points") {
        slot[e.port] = { kind: e.kind, count: e.verts || e.points };
        this.show3d(`${e.node}.${e.port}`, e);
      }
      this.previews[e.node] = slot;
      this.previewCount = (this.previewCount || 0) + 1;
    },
    clearPreviews(id = null) {
      const ids = id ? [id] : Object.keys(this.previews);
      for (const n of ids) {
        for (const p of Object.values(this.previews[n] || {})) if (p.url) URL.revokeObjectURL(p.url);
        delete this.previews[n];
      }
    },
    async show3d(key, e) {
      this.has3d = true;
      if (!this.side) { this.side = true; await nextTick(); }
      if (!this.viewerReady) {  // one viewer, however many previews arrive while it loads
        this.viewerReady = import("nodegraph-ui/viewer3d.js").then(({ Viewer3D }) => {
          this.viewer = markRaw(new Viewer3D(this.$refs.view3d));
        }).catch((err) => { this.view3dError = `3D view unavailable: ${err.message}`; });
      }
      await this.viewerReady;
      if (this.viewer) this.viewer.show(key, e);
      if (!this.view3dKeys.includes(key)) this.view3dKeys = [...this.view3dKeys, key];
    },
    focus3d(id) {
      this.side = true;
      if (this.viewer) this.viewer.only(this.view3dKeys.filter((k) => k.startsWith(id + ".")));
    },
    showAll3d() { if (this.viewer) this.viewer.only(this.view3dKeys); },
    // ------------------------------------------------------------------ tooltips and dialogs
    showPort(ev, id, port, dir) {
      const lines = [`<b>${port.name}</b> <span class="ng-type" style="color:${this.catalogue.color(port.type)}">${port.type}</span>` +
                     (port.optional ? " <i>optional</i>" : "") + (port.multiple ? " <i>takes several links</i>" : "")];
      if (port.doc) lines.push(esc(port.doc));
      let summary = null;
      const held = (node, out) => { const [f, p] = this.flatOutput(node, out); return ((this.run[f] || {}).outputs || {})[p]; };
      if (dir === "out") summary = held(id, port.name);
      else {
        const e = this.flow.edges.value.find((x) => x.target === id && x.targetHandle === port.name);
        if (e) summary = held(e.source, e.sourceHandle);
      }
      if (summary) lines.push(...summaryLines(summary).map((l) => `<code>${esc(l)}</code>`));
      else lines.push(`<span class="ng-dim">${dir === "out" ? "not computed yet: run the graph" : "no value yet"}</span>`);
      this.placeTip(ev, lines);
    },
    pinPort(ev, id, port) { this.showPort(ev, id, port, "out"); this.tip.pinned = true; },
    showDoc(ev, id) {
      const n = this.flow.findNode(id);
      const spec = n && this.catalogue.spec(n.data.type);
      if (!spec) return;
      this.placeTip(ev, [`<b>${spec.name}</b> <span class="ng-dim">${spec.category}</span>`,
                         ...spec.doc.split(/\n\n+/).map((p) => esc(p))]);
    },
    placeTip(ev, lines) {
      const r = ev.currentTarget.getBoundingClientRect();
      this.tip = { x: Math.min(r.right + 8, window.innerWidth - 340), y: r.top,
                   html: lines.map((l) => `<div>${l}</div>`).join(""), pinned: false };
    },
    hideTip() { if (this.tip && !this.tip.pinned) this.tip = null; },
    relPath(path) {
      // a file a node wrote, shown relative to the run's output folder
      const root = this.outDir ? this.outDir.replace(/\/+$/, "") + "/" : "";
      return root && path.startsWith(root) ? path.slice(root.length) : path;
    },
    async copyPath(path) {
      let ok = false;
      try {
        if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(path); ok = true; }
      } catch (e) { ok = false; }
      if (!ok) {  // plain http on a non-local host has no clipboard API
        const area = document.createElement("textarea");
        area.value = path;
        document.body.appendChild(area);
        area.select();
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        area.remove();
      }
      this.lastCopied = path;
      this.notify(ok ? `Copied ${path}` : `Could not copy: ${path}`, ok ? "info" : "error");
    },
    showError(id) { this.dialogs.error = { id, ...(this.run[id] || {}) }; },
    zoomImage(id, port) { this.dialogs.image = { id, port }; },
    notify(message, kind = "info") {
      clearTimeout(this.toastTimer);
      this.toast = { message, kind };
      this.toastTimer = setTimeout(() => (this.toast = null), kind === "error" ? 7000 : 2500);
    },
    color: categoryColor,
    summaryLines,
  },
  template: `
  <div class="ng-app" @click="tip && tip.pinned && (tip = null)">
    <header class="ng-toolbar">
      <div class="ng-logo">◆ nodegraph</div>
      <q-btn flat dense no-caps label="File" icon-right="arrow_drop_down" class="ng-tb" aria-label="File">
        <q-menu dark class="ng-menu">
          <q-list dense style="min-width: 200px">
            <q-item clickable v-close-popup @click="newGraph"><q-item-section>New</q-item-section></q-item>
            <q-item clickable v-close-popup @click="openDialog"><q-item-section>Open…</q-item-section></q-item>
            <q-item clickable v-close-popup @click="pickUpload"><q-item-section>Upload a graph file…</q-item-section></q-item>
            <q-separator dark/>
            <q-item clickable v-close-popup @click="save"><q-item-section>Save</q-item-section><q-item-section side>Ctrl+S</q-item-section></q-item>
            <q-item clickable v-close-popup @click="saveAs"><q-item-section>Save as…</q-item-section></q-item>
            <q-item clickable v-close-popup @click="download"><q-item-section>Download .json</q-item-section></q-item>
            <q-item clickable v-close-popup @click="exportPython"><q-item-section>Export as Python</q-item-section></q-item>
          </q-list>
        </q-menu>
      </q-btn>
      <q-btn flat dense no-caps label="Examples" icon-right="arrow_drop_down" class="ng-tb" aria-label="Examples">
        <q-menu dark class="ng-menu">
          <q-list dense style="max-width: 460px">
            <q-item v-for="g in examples" :key="g.path" clickable v-close-popup @click="openGraph('examples', g.path)" class="ng-example">
              <q-item-section>
                <q-item-label>{{ g.name }}</q-item-label>
                <q-item-label caption class="ng-caption">{{ g.description }}</q-item-label>
              </q-item-section>
            </q-item>
            <q-item v-if="!examples.length"><q-item-section class="ng-dim">no example graphs found</q-item-section></q-item>
          </q-list>
        </q-menu>
      </q-btn>
      <q-separator vertical dark inset class="q-mx-xs"/>
      <q-btn flat dense round icon="undo" :disable="!canUndo" @click="undo" class="ng-tb" aria-label="Undo"><q-tooltip>Undo (Ctrl+Z)</q-tooltip></q-btn>
      <q-btn flat dense round icon="redo" :disable="!canRedo" @click="redo" class="ng-tb" aria-label="Redo"><q-tooltip>Redo (Ctrl+Shift+Z)</q-tooltip></q-btn>
      <q-btn flat dense round icon="content_copy" @click="copy" class="ng-tb" aria-label="Copy"><q-tooltip>Copy (Ctrl+C)</q-tooltip></q-btn>
      <q-btn flat dense round icon="content_paste" @click="paste" class="ng-tb" aria-label="Paste"><q-tooltip>Paste (Ctrl+V)</q-tooltip></q-btn>
      <q-btn flat dense round icon="delete_outline" @click="deleteSelection" class="ng-tb" aria-label="Delete"><q-tooltip>Delete (Del)</q-tooltip></q-btn>
      <q-btn flat dense round icon="fit_screen" @click="fit" class="ng-tb" aria-label="Fit view"><q-tooltip>Fit view (F)</q-tooltip></q-btn>
      <div class="ng-docname" :title="docPlace">
        <input class="ng-name-input" :value="meta.name" aria-label="Graph name"
               @change="meta.name = $event.target.value; commit()">
        <span v-if="dirty" class="ng-dirty" title="unsaved changes (autosaved in the workspace)">●</span>
        <span class="ng-dim ng-path" data-role="doc-path">{{ collection === 'examples' ? 'example · ' + path : (path || 'not saved') }}</span>
      </div>
      <div class="ng-spacer"></div>
      <span class="ng-runinfo" :class="{'ng-ok': runOk === true, 'ng-fail': runOk === false && !running}" :data-runs="runsFinished" data-role="run-info" :title="runDetail">{{ runInfo }}</span>
      <q-btn v-if="!running" unelevated dense no-caps color="positive" icon="play_arrow" label="Run" class="ng-run" @click="startRun()" aria-label="Run"><q-tooltip>Run the graph (Ctrl+Enter); unchanged nodes come from the cache</q-tooltip></q-btn>
      <q-btn v-if="!running" flat dense no-caps icon="skip_next" label="Run to selected" :disable="!selectedId" @click="runTo(selectedId)" class="ng-tb" aria-label="Run to selected"/>
      <q-btn v-if="running" unelevated dense no-caps color="negative" icon="stop" label="Stop" class="ng-run" @click="stopRun" aria-label="Stop"/>
      <RunsPanel/>
      <q-btn flat dense round :icon="side ? 'chevron_right' : 'view_in_ar'" @click="side = !side" class="ng-tb" aria-label="Toggle side panel"><q-tooltip>Inspector and 3D view</q-tooltip></q-btn>
      <input ref="upload" type="file" accept=".json,application/json" style="display:none" @change="upload">
    </header>
    <div v-if="loadError" class="ng-fatal">{{ loadError }}</div>
    <div class="ng-main" v-if="ready">
      <Palette :catalogue="catalogue" :key="groupsTick" @add="t => addNode(t)"/>
      <div class="ng-canvas" ref="canvas" @drop="onDrop" @dragover.prevent @dblclick="onDblClick">
        <VueFlow :id="flowId" :node-types="nodeTypes" :min-zoom="0.1" :max-zoom="2.5" :zoom-on-double-click="false"
                 :delete-key-code="null" :connect-on-click="false" :is-valid-connection="validConnection"
                 :selection-key-code="'Shift'" :multi-selection-key-code="['Control', 'Meta']"
                 :snap-to-grid="false" :default-edge-options="{type: 'default'}" :elevate-edges-on-select="true"
                 @connect="onConnect" @connect-end="onConnectEnd" @node-drag-stop="commit()" @node-double-click="e => enterGroup(e.node.id)"
                 @selection-change="onSelection" @nodes-initialized="afterLayout" @move-end="onMoveEnd" @nodes-change="onSelection" class="ng-flow">
          <MiniMap v-if="showMap" pannable zoomable :node-color="n => color(catalogue.spec(n.data.type)?.category || '?')"
                   mask-color="rgba(10,12,18,0.7)" class="ng-minimap"/>
        </VueFlow>
        <GroupBar/>
        <GroupDialog v-if="groupDialog" :state="groupDialog" @done="finishGroupDialog" @cancel="groupDialog = null"/>
        <div v-if="hint" class="ng-hint" role="alert">✕ {{ hint }}</div>
        <QuickAdd v-if="quick" :catalogue="catalogue" :x="quick.x" :y="quick.y" @add="quickAdd" @close="quick = null"/>
        <div v-if="graphProblems.length" class="ng-banner">
          <div v-for="p in graphProblems" :key="p.message">⚠ <b v-if="p.node">{{ p.node }}<span v-if="p.field">.{{ p.field }}</span>:</b> {{ p.message }}</div>
        </div>
        <div v-if="!flow.nodes.value.length" class="ng-empty-canvas">
          <div>Drag a node from the palette, or double-click the canvas to search.</div>
          <div class="ng-dim">Or open one of the Examples.</div>
        </div>
      </div>
      <aside v-show="side" class="ng-side">
        <div class="ng-side-head">3D view <span class="ng-spacer"></span>
          <a v-if="view3dKeys.length > 1" @click="showAll3d" class="ng-link">show all</a></div>
        <div class="ng-view3d" ref="view3d">
          <div v-if="!has3d" class="ng-empty">Meshes and point clouds appear here when a node previews them.</div>
          <div v-if="view3dError" class="ng-empty">{{ view3dError }}</div>
        </div>
        <div class="ng-side-head">Inspector</div>
        <div class="ng-inspector">
          <template v-if="selectedSpec">
            <div class="ng-insp-title">{{ selectedSpec.name }} <span class="ng-dim">{{ selectedId }}</span></div>
            <div class="ng-insp-doc">{{ selectedSpec.doc }}</div>
            <div v-for="o in selectedSpec.outputs" :key="o.name" class="ng-insp-port">
              <b>{{ o.name }}</b> <span :style="{color: catalogue.color(o.type)}">{{ o.type }}</span>
              <div v-if="(run[selectedId] || {}).outputs && run[selectedId].outputs[o.name]">
                <code v-for="l in summaryLines(run[selectedId].outputs[o.name])" :key="l" class="ng-code-line">{{ l }}</code>
              </div>
            </div>
            <div v-if="(run[selectedId] || {}).state === 'error'" class="ng-errline">{{ run[selectedId].message }}
              <a class="ng-link" @click="showError(selectedId)">details</a></div>
          </template>
          <div v-else class="ng-empty">Select one node to see its documentation and outputs.</div>
        </div>
      </aside>
    </div>
    <footer class="ng-status">
      <span :class="connected ? 'ng-ok' : 'ng-fail'">{{ connected ? '● live' : '○ reconnecting' }}</span>
      <span>{{ flow.nodes.value.length }} nodes · {{ flow.edges.value.length }} links</span>
      <span v-if="selection.length">{{ selection.length }} selected</span>
      <span v-if="outDir" class="ng-outdir" data-role="out-dir" :title="'runs of this graph write here: ' + outDir">output folder
        <code>{{ outDir }}</code> <a class="ng-link" @click="copyPath(outDir)" aria-label="Copy the output folder">copy</a></span>
      <span class="ng-spacer"></span>
      <span class="ng-dim">double-click: add node · drag output → input: link · Shift-drag: select · Del · Ctrl+Z/C/V</span>
    </footer>
    <div v-if="tip" class="ng-tip" :style="{left: tip.x + 'px', top: tip.y + 'px'}" v-html="tip.html" role="tooltip"></div>
    <div v-if="toast" class="ng-toast" :class="'ng-toast-' + toast.kind" role="status">{{ toast.message }}</div>
    <q-dialog v-model="dialogs.open">
      <q-card dark class="ng-dialog">
        <q-card-section class="ng-dialog-title">Open a graph</q-card-section>
        <q-card-section class="ng-dialog-body">
          <div class="ng-dim">Library</div>
          <div v-for="g in library" :key="g.path" class="ng-lib-item" @click="openGraph('library', g.path)">
            <b>{{ g.name }}</b> <span class="ng-dim">{{ g.path }} · {{ g.nodes }} nodes</span>
            <div class="ng-caption">{{ g.description }}</div>
          </div>
          <div v-if="!library.length" class="ng-empty">The library is empty.</div>
        </q-card-section>
        <q-card-actions align="right">
          <q-btn flat no-caps label="Upload a file…" @click="pickUpload"/>
          <q-btn flat no-caps label="Cancel" v-close-popup/>
        </q-card-actions>
      </q-card>
    </q-dialog>
    <q-dialog v-model="dialogs.save">
      <q-card dark class="ng-dialog">
        <q-card-section class="ng-dialog-title">Save to the library</q-card-section>
        <q-card-section>
          <div v-if="collection === 'examples'" class="ng-dim">Examples stay as they are: this saves a copy.</div>
          <div class="ng-dim ng-lib-dir">{{ libraryDir }}</div>
          <q-input dark dense autofocus v-model="saveName" label="File name" suffix=".json" aria-label="File name"
                   @keydown.enter="saveNamed(saveName)"/>
        </q-card-section>
        <q-card-actions align="right">
          <q-btn flat no-caps label="Cancel" v-close-popup/>
          <q-btn unelevated no-caps color="primary" label="Save" @click="saveNamed(saveName)" aria-label="Save graph"/>
        </q-card-actions>
      </q-card>
    </q-dialog>
    <q-dialog :model-value="!!dialogs.error" @update:model-value="v => !v && (dialogs.error = null)">
      <q-card dark class="ng-dialog ng-dialog-wide" v-if="dialogs.error">
        <q-card-section class="ng-dialog-title">Error in {{ dialogs.error.id }}<span v-if="dialogs.error.field">.{{ dialogs.error.field }}</span></q-card-section>
        <q-card-section><div class="ng-errline">{{ dialogs.error.message }}</div>
          <pre v-if="dialogs.error.traceback" class="ng-trace">{{ dialogs.error.traceback }}</pre></q-card-section>
        <q-card-actions align="right"><q-btn flat no-caps label="Close" v-close-popup/></q-card-actions>
      </q-card>
    </q-dialog>
    <q-dialog :model-value="!!dialogs.image" @update:model-value="v => !v && (dialogs.image = null)">
      <q-card dark class="ng-dialog ng-dialog-wide" v-if="dialogs.image && previews[dialogs.image.id]">
        <q-card-section class="ng-dialog-title">{{ dialogs.image.id }}.{{ dialogs.image.port }}</q-card-section>
        <img :src="(previews[dialogs.image.id][dialogs.image.port] || {}).url" class="ng-zoomed">
      </q-card>
    </q-dialog>
  </div>`,
};

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}
