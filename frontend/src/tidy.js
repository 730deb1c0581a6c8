// Tidy layout: columns left to right by dependency depth (a node sits one column right of its deepest
// input), rows in the current top-to-bottom order, using each node's measured size, so grown nodes (previews,
// plots) are reflowed instead of covering their neighbours. One undoable edit.

/** {id: {x, y}} for nodes [{id, w, h, y}] and links [{source, target}]. */
export function tidyPositions(nodes, links, { gapX = 60, gapY = 30, x0 = 40, y0 = 40 } = {}) {
  const ids = new Set(nodes.map((n) => n.id));
  const preds = {};
  for (const l of links) if (ids.has(l.source) && ids.has(l.target)) (preds[l.target] = preds[l.target] || []).push(l.source);
  const depth = {};
  const visiting = new Set();
  const depthOf = (id) => {
    if (id in depth) return depth[id];
    if (visiting.has(id)) return 0;  // a cycle (refused by the editor, but a file could hold one)
    visiting.add(id);
    const d = Math.max(-1, ...(preds[id] || []).map(depthOf)) + 1;
    visiting.delete(id);
    return (depth[id] = d);
  };
  const columns = [];
  for (const n of [...nodes].sort((a, b) => a.y - b.y)) (columns[depthOf(n.id)] = columns[depthOf(n.id)] || []).push(n);
  const out = {};
  let x = x0;
  for (const col of columns) {
    if (!col) continue;
    let y = y0;
    for (const n of col) { out[n.id] = { x, y }; y += n.h + gapY; }
    x += Math.max(...col.map((n) => n.w)) + gapX;
  }
  return out;
}

export const tidyMixin = {
  methods: {
    tidy() {
      const nodes = this.flow.nodes.value.map((n) => ({
        id: n.id, y: n.position.y,
        w: (n.dimensions && n.dimensions.width) || 240, h: (n.dimensions && n.dimensions.height) || 120 }));
      const pos = tidyPositions(nodes, this.flow.edges.value);
      for (const n of this.flow.nodes.value) if (pos[n.id]) n.position = pos[n.id];
      this.commit();
      this.$nextTick(() => this.fit());
    },
    onDragStop() {
      this.commit();
    },
  },
};
