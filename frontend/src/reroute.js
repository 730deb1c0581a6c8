// A link drawn through its reroute points (`ui.reroutes` of the graph: [{id, link, pos}]): one horizontal-
// tangent curve per stretch, like the default link. Only links that have reroute points use this edge type,
// so opening a large graph costs nothing more.
import { BaseEdge } from "@vue-flow/core";

/** An SVG path from (sx, sy) through `via` ([[x, y], ...]) to (tx, ty). */
export function routedPath(sx, sy, via, tx, ty) {
  const pts = [[sx, sy], ...via, [tx, ty]];
  let d = `M ${sx},${sy}`;
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
    const dx = Math.max(30, Math.abs(x1 - x0) / 2);
    d += ` C ${x0 + dx},${y0} ${x1 - dx},${y1} ${x1},${y1}`;
  }
  return d;
}

export const RoutedEdge = {
  name: "RoutedEdge",
  components: { BaseEdge },
  inject: ["ng"],
  props: ["id", "sourceX", "sourceY", "targetX", "targetY", "style", "markerEnd", "markerStart", "interactionWidth"],
  computed: {
    path() {
      const via = this.ng.reroutes(this.id).map((r) => r.pos).sort((a, b) => a[0] - b[0]);
      return routedPath(this.sourceX, this.sourceY, via, this.targetX, this.targetY);
    },
  },
  template: `<BaseEdge :id="id" :path="path" :style="style" :marker-end="markerEnd" :interaction-width="20"/>`,
};

export const rerouteMixin = {
  watch: {
    reroutes: { handler() { this.applyRoutes(); }, deep: true },
  },
  methods: {
    applyRoutes() {
      const routed = new Set(this.reroutes.map((r) => r.link));
      for (const e of this.flow.edges.value) {
        const want = routed.has(e.id) ? "routed" : "default";
        if ((e.type || "default") !== want) e.type = want;
      }
    },
  },
};
