// Tooltips (a port's value, a node's documentation) and toasts; copying and showing output paths.
import { summaryLines } from "nodegraph-ui/summary.js";

export function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

export const tipsMixin = {
  data() {
    return { tip: null, toast: null };
  },
  methods: {
    portSummary(id, port, dir) {
      // the value an output of a canvas node holds: a group instance's output is an inner node's (flat ids)
      const held = (node, out) => { const [f, p] = this.flatOutput(node, out); return ((this.run[f] || {}).outputs || {})[p] || null; };
      if (dir === "out") return held(id, port.name);
      const e = this.flow.edges.value.find((x) => x.target === id && x.targetHandle === port.name);
      return e ? held(e.source, e.sourceHandle) : null;
    },
    showPort(ev, id, port, dir) {
      const lines = [`<b>${port.name}</b> <span class="ng-type" style="color:${this.catalogue.color(port.type)}">${port.type}</span>` +
                     (port.optional ? " <i>optional</i>" : "") + (port.multiple ? " <i>takes several links</i>" : "")];
      if (port.doc) lines.push(esc(port.doc));
      const summary = this.portSummary(id, port, dir);
      if (summary) lines.push(...summaryLines(summary).map((l) => `<code>${esc(l)}</code>`));
      else lines.push(`<span class="ng-dim">${dir === "out" ? "not computed yet: run the graph" : "no value yet"}</span>`);
      this.placeTip(ev, lines);
    },
    pinPort(ev, id, port) { this.showPort(ev, id, port, "out"); this.tip.pinned = true; },
    showDoc(ev, id) {
      const n = this.flow.findNode(id);
      const spec = n && this.catalogue.spec(n.data.type);
      if (!spec) return;
      const label = n.data.ui && n.data.ui.label;
      this.placeTip(ev, [`<b>${spec.name}</b> <span class="ng-dim">${spec.category}${label ? " · id " + esc(id) : ""}</span>`,
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
    notify(message, kind = "info") {
      clearTimeout(this.toastTimer);
      this.toast = { message, kind };
      this.toastTimer = setTimeout(() => (this.toast = null), kind === "error" ? 7000 : 2500);
    },
    summaryLines,
  },
};
