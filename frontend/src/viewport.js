// Viewport and level of detail: the first fit of an opened graph (set before the nodes are drawn, from
// estimated sizes, so they are drawn once at the right level of detail), fitting later, keeping `zoom` (which
// nodes read to choose their compact form) in step with the canvas, and pushing apart nodes that overlap.
import { COMPACT_BELOW } from "nodegraph-ui/node.js";

/** The viewport that shows every box ({x, y, w, h}) in a canvas of `box` ({width, height}). */
export function viewportFor(boxes, box, padding = 0.06, maxZoom = 1) {
  const x0 = Math.min(...boxes.map((b) => b.x)), y0 = Math.min(...boxes.map((b) => b.y));
  const x1 = Math.max(...boxes.map((b) => b.x + b.w)), y1 = Math.max(...boxes.map((b) => b.y + b.h));
  const { width, height } = box;
  const zoom = Math.max(0.1, Math.min(maxZoom, width / ((x1 - x0) * (1 + 2 * padding)), height / ((y1 - y0) * (1 + 2 * padding))));
  return { x: (width - zoom * (x1 - x0)) / 2 - zoom * x0, y: (height - zoom * (y1 - y0)) / 2 - zoom * y0, zoom };
}

/** Push overlapping boxes ({id, x, y, w, h}) down, in reading order; returns {id: y} of those that moved. */
export function spreadBoxes(items, gap = 18) {
  const placed = [];
  const moved = {};
  const sorted = [...items].sort((a, b) => a.y - b.y || a.x - b.x);
  for (const it of sorted) {
    let y = it.y;
    for (let again = true; again;) {
      again = false;
      for (const b of placed) {
        if (it.x < b.x + b.w && it.x + it.w > b.x && y < b.y + b.h + gap && y + it.h + gap > b.y) {
          y = b.y + b.h + gap; again = true;
        }
      }
    }
    if (y !== it.y) moved[it.id] = y;
    placed.push({ x: it.x, y, w: it.w, h: it.h });
  }
  return moved;
}

/** Boxes that a grown box now covers move down below it, and so on down the canvas; returns {id: y}. */
export function pushBelow(items, grownIds, gap = 18) {
  const byId = Object.fromEntries(items.map((b) => [b.id, { ...b }]));
  const moved = {};
  const queue = [...grownIds].filter((id) => byId[id]);
  for (let guard = 0; queue.length && guard < 10 * items.length; guard++) {
    const g = byId[queue.shift()];
    for (const b of Object.values(byId)) {
      if (b === g || b.y < g.y) continue;  // only what lies below the grown node's top
      if (b.x < g.x + g.w && b.x + b.w > g.x && b.y < g.y + g.h + gap) {
        b.y = g.y + g.h + gap;
        moved[b.id] = b.y;
        queue.push(b.id);
      }
    }
  }
  return moved;
}

export const viewportMixin = {
  data() {
    return { zoom: 1 };
  },
  methods: {
    preFit(nodes) {
      this.canvasBox = this.$refs.canvas ? this.$refs.canvas.getBoundingClientRect() : { width: 1200, height: 800 };
      const sized = (full) => nodes.map((n) => ({ x: n.position.x, y: n.position.y, ...this.estimateSize(n.data.type, full) }));
      let view = viewportFor(sized(false), this.canvasBox);
      if (view.zoom >= COMPACT_BELOW) view = viewportFor(sized(true), this.canvasBox);
      this.flow.setViewport(view);
      this.zoom = view.zoom;
    },
    estimateSize(type, full) {
      // A node's drawn size before it is measured: compact (ports only) or full (with a row per param).
      const spec = this.catalogue.spec(type);
      const rows = spec ? Math.max(spec.inputs.length, spec.outputs.length) : 0;
      return { w: 240, h: 40 + rows * 20 + (full && spec ? spec.params.length * 25 : 0) };
    },
    measuredBoxes() {
      return this.flow.nodes.value.filter((n) => n.dimensions && n.dimensions.width).map((n) => (
        { x: n.position.x, y: n.position.y, w: n.dimensions.width, h: n.dimensions.height }));
    },
    fitMeasured() {
      const boxes = this.measuredBoxes();
      if (!boxes.length || !this.canvasBox) { this.flow.fitView({ padding: 0.08, maxZoom: 1 }).then(() => this.onMoveEnd()); return; }
      const want = viewportFor(boxes, this.canvasBox), now = this.flow.viewport.value;
      // Moving the viewport forces a layout of every node: skip it when the estimate was close enough.
      if (Math.abs(want.zoom - now.zoom) > 0.02 * now.zoom || Math.abs(want.x - now.x) > 12 || Math.abs(want.y - now.y) > 12)
        this.flow.setViewport(want).then(() => this.onMoveEnd());
    },
    onMoveEnd() {
      this.zoom = this.flow.viewport.value.zoom;
    },
    fit() {
      // F: a fitted view at any zoom; `zoom` follows at once so nodes take the form that zoom draws (defect 8)
      return this.flow.fitView({ padding: 0.12, maxZoom: 1.2, duration: 200 }).then(() => this.onMoveEnd());
    },
    afterLayout() {
      this.drawPendingEdges();
      if (!this.pendingLayout) return;
      this.pendingLayout = false;
      if (this.spread()) this.history.stack[this.history.index] = JSON.stringify(this.doc());
      this.fitMeasured();
    },
    onNodesChange(changes) {
      this.onSelection();
      // A node that grows (a preview, a plot, an error arrives) must not cover the nodes below it: push them down.
      const heights = this.drawnHeights || (this.drawnHeights = {});
      const grown = [];
      for (const c of changes) {
        if (c.type !== "dimensions" || !c.dimensions) continue;
        const before = heights[c.id];
        heights[c.id] = c.dimensions.height;
        if (before !== undefined && c.dimensions.height > before + 2) grown.push(c.id);
      }
      if (grown.length && !this.pendingLayout) this.$nextTick(() => this.reflow(grown));
    },
    reflow(grown, gap = 18) {
      const nodes = this.flow.nodes.value.filter((n) => n.dimensions && n.dimensions.width);
      const moved = pushBelow(nodes.map((n) => (
        { id: n.id, x: n.position.x, y: n.position.y, w: n.dimensions.width, h: n.dimensions.height })), grown, gap);
      if (!Object.keys(moved).length) return false;
      for (const n of this.flow.nodes.value) if (n.id in moved) n.position = { x: n.position.x, y: moved[n.id] };
      // a view fix, not an edit to undo; saved with the next edit (a reload reflows again as previews arrive)
      this.history.stack[this.history.index] = JSON.stringify(this.doc());
      return true;
    },
    spread(gap = 18) {
      // Positions written by hand or by the CLI's auto layout do not know how tall a node is drawn: push
      // overlapping nodes down (a view fix, not an edit).
      const items = this.flow.nodes.value.map((n) => {
        const full = this.estimateSize(n.data.type, true);  // as drawn zoomed in, whatever the zoom is now
        return { id: n.id, x: n.position.x, y: n.position.y, w: (n.dimensions && n.dimensions.width) || full.w,
                 h: Math.max((n.dimensions && n.dimensions.height) || 0, full.h) };
      });
      const moved = spreadBoxes(items, gap);
      for (const n of this.flow.nodes.value) if (n.id in moved) n.position = { x: n.position.x, y: moved[n.id] };
      return Object.keys(moved).length > 0;
    },
  },
};
