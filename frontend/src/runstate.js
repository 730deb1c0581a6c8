// The run state as a pure reducer: (state, event) -> new state, no DOM, no Vue, no clock of its own.
// Node states are the server's (nodegraph/server/workspace.py `_remember`): a node a run did not finish ends
// "idle", so a page that was open during the run and a page reloaded after it show the same thing.
// Client actions ("run_requested", "run_refused", "run_accepted", "edited", "forget") go through it too, so
// the toolbar's text can never stay on "starting…" after a refused run.

export const IDLE = "idle";

/** A fresh run state: no node has run, nothing is running. */
export function initialRun() {
  return { nodes: {}, running: false, info: "", detail: "", ok: null, finished: 0, outDir: "",
           computed: {}, startedAt: null };
}

function put(s, id, patch, replace = false) {
  return { ...s.nodes, [id]: replace ? patch : { ...(s.nodes[id] || {}), ...patch } };
}

/** The state after `e` (a server event or a client action; `now` in seconds for rates). */
export function reduceRun(s, e, now = 0) {
  switch (e.type) {
    case "hello": {
      const nodes = {};
      for (const [id, st] of Object.entries(e.nodes || {})) nodes[id] = { ...st };
      return { ...s, nodes, running: !!e.running, outDir: e.out_dir || s.outDir };
    }
    case "run_requested":
      return { ...s, info: "starting…", detail: "", ok: null, requested: s.finished };
    case "run_refused":
      return { ...s, info: `not started: ${e.message}`, detail: e.detail || e.message, ok: false };
    case "run_accepted":
      // the run may have started and finished before the answer came: then its result stays shown
      if (s.finished !== s.requested) return { ...s, outDir: e.out_dir || s.outDir };
      return { ...s, outDir: e.out_dir || s.outDir, ok: null, detail: "",
               info: e.targets ? `running up to ${e.targets.join(", ")}…` : "running…" };
    case "edited": {  // params or links changed: what ran downstream no longer shows the current graph
      const nodes = { ...s.nodes };
      for (const id of e.ids) if (nodes[id] && nodes[id].state && nodes[id].state !== IDLE)
        nodes[id] = { ...nodes[id], state: "stale", progress: null };
      return { ...s, nodes };
    }
    case "forget": {  // nodes deleted, or a document replaced
      if (!e.ids) return { ...s, nodes: {} };
      const nodes = { ...s.nodes };
      for (const id of e.ids) delete nodes[id];
      return { ...s, nodes };
    }
    case "run_started": {
      const nodes = { ...s.nodes };
      // a node keeps the files it wrote last until it finishes again (a cached node still has them)
      for (const id of e.order || []) nodes[id] = { state: "waiting", files: (s.nodes[id] || {}).files };
      return { ...s, nodes, running: true, computed: {}, startedAt: now };
    }
    case "node_started":
      return { ...s, nodes: put(s, e.node, { state: "running", progress: null, startedAt: now }) };
    case "node_finished": {
      // a node computed earlier in this run and then reused (e.g. by a training loop) stays "done"
      if (e.cached && s.computed[e.node]) return s;
      const before = s.nodes[e.node] || {};
      const computed = e.cached ? s.computed : { ...s.computed, [e.node]: true };
      return { ...s, computed, nodes: put(s, e.node, { state: e.cached ? "cached" : "done", seconds: e.seconds,
        outputs: e.outputs, files: e.files || (e.cached ? before.files : null) }) };
    }
    case "progress": {
      const before = (s.nodes[e.node] || {}).progress;
      const elapsed = e.elapsed_s != null ? e.elapsed_s : null;
      const progress = { iteration: e.iteration, total: e.total, loss: e.loss, losses: e.losses, elapsed_s: elapsed,
                         ...rates(e.iteration, e.total, elapsed, before) };
      return { ...s, nodes: put(s, e.node, { progress }) };
    }
    case "node_error":
      if (!e.node) return s;
      return { ...s, nodes: put(s, e.node, { state: "error", message: e.message, field: e.field,
                                             traceback: e.traceback }) };
    case "run_finished": {
      const nodes = { ...s.nodes };
      for (const [id, st] of Object.entries(nodes))
        if (st.state === "waiting" || st.state === "running") nodes[id] = { ...st, state: IDLE };
      if (e.status === "error" && e.error && e.error.node && (nodes[e.error.node] || {}).state !== "error")
        nodes[e.error.node] = { ...(nodes[e.error.node] || {}), state: "error", message: e.error.message,
                                field: e.error.field };
      const info = e.status === "ok" ? `done in ${fmtSeconds(e.seconds)}` : e.status === "cancelled"
        ? (e.cache_dropped ? "stopped · worker ended, cache dropped" : "stopped")
        : `failed${e.error && e.error.node ? " in " + e.error.node : ""}: ${(e.error && e.error.message) || ""}`;
      // a worker ended by Stop (a node stuck in one long call) or one that died takes its cache with it
      const detail = e.cache_dropped ? (e.message || (e.error && e.error.message) || "") +
        " The next run starts a fresh worker and computes every node again." : (e.status === "error" ? info : "");
      return { ...s, nodes, running: false, ok: e.status === "ok", finished: s.finished + 1, info, detail };
    }
    default:
      return s;
  }
}

/** Iterations per second and seconds left, from the loop's own clock (elapsed_s) when the event has it. */
export function rates(iteration, total, elapsed, before) {
  if (!elapsed || !iteration) return { rate: before ? before.rate : null, left_s: before ? before.left_s : null };
  const rate = iteration / elapsed;
  return { rate, left_s: rate > 0 ? Math.max(0, (total - iteration) / rate) : null };
}

/** Downstream nodes of a failed node keep old previews: they are marked stale ("from an earlier run"). */
export function staleBehindErrors(s, downstreamOf) {
  const failed = Object.entries(s.nodes).filter(([, st]) => st.state === "error").map(([id]) => id);
  if (!failed.length) return new Set();
  const out = downstreamOf(failed);
  for (const id of failed) out.delete(id);
  return out;
}

export function fmtSeconds(s) {
  if (s < 0.001) return "<1 ms";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
}
