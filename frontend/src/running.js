// Runs: start (all, or up to some nodes), stop, and the executor's events. Node states, the toolbar's text and
// progress come from the pure reducer in runstate.js; previews (blob URLs, the 3D view) are handled here.
import { initialRun, reduceRun } from "nodegraph-ui/runstate.js";

export const runningMixin = {
  data() {
    return { runState: initialRun(), previews: {}, connected: false };
  },
  computed: {
    // names the rest of the editor (and the tests) read
    run() { return this.runState.nodes; },
    running() { return this.runState.running; },
    runInfo() { return this.runState.info; },
    runDetail() { return this.runState.detail; },
    runOk() { return this.runState.ok; },
    runsFinished() { return this.runState.finished; },
    outDir() { return this.runState.outDir; },
  },
  methods: {
    dispatchRun(action) {
      this.runState = reduceRun(this.runState, action, performance.now() / 1000);
    },
    async startRun(targets = null) {
      if (this.running) return;
      this.dispatchRun({ type: "run_requested" });
      await this.syncNow();
      try {
        const res = await this.api.post("/run", targets ? { targets } : {});
        this.dispatchRun({ type: "run_accepted", targets, out_dir: res.out_dir });
      } catch (e) {
        let message = e.message;
        if (e.problems && e.problems.length) {
          this.setProblems(e.problems);
          message = `${e.problems.length} problem${e.problems.length > 1 ? "s" : ""} (marked on the nodes)`;
        }
        this.dispatchRun({ type: "run_refused", message,
                           detail: (e.problems || []).map((p) => `${p.node || ""}${p.field ? "." + p.field : ""}: ${p.message}`).join("\n") || message });
        this.notify(`Cannot run: ${message}`, "error");
      }
    },
    runTo(ids) {
      // up to canvas nodes (one id or several): the engine knows them by flat path ids (inside a group)
      this.startRun((Array.isArray(ids) ? ids : [ids]).map((id) => this.flatId(id)));
    },
    async stopRun() {
      await this.api.post("/stop");
      this.runState = { ...this.runState, info: "stopping…" };
    },
    onEvent(e) {
      if (e.type === "preview") { this.onPreview(e); return; }
      if (e.type === "problems") { this.setProblems(e.problems); return; }
      if (e.type === "node_error" && !e.node) this.notify(e.message, "error");
      if (e.type === "run_started") this.problems = {};
      this.dispatchRun(e);
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
    forgetMissing() {
      // states of nodes no longer on the canvas (flat ids: inside an entered group, only that group's)
      const have = new Set(this.flow.nodes.value.map((n) => n.id));
      const gone = Object.keys(this.run).filter((id) => { const local = this.localId(id); return local !== null && !have.has(local); });
      if (gone.length) this.dispatchRun({ type: "forget", ids: gone });
    },
  },
};
