// A small SVG line plot of loss terms: series = {name: [[iteration, value], ...]} (see docs/protocol.md).
const COLORS = ["#f8f9fa", "#ff6b6b", "#4dabf7", "#ffd43b", "#69db7c", "#da77f2", "#ffa94d", "#3bc9db"];

export const LossPlot = {
  name: "LossPlot",
  props: { series: Object, width: { default: 260 }, height: { default: 120 } },
  computed: {
    lines() {
      const entries = Object.entries(this.series || {}).filter(([, pts]) => pts && pts.length);
      const all = entries.flatMap(([, pts]) => pts.map((p) => p[1]).filter((v) => v != null && Number.isFinite(v)));
      if (!all.length) return { paths: [], log: false };
      const positive = all.every((v) => v > 0);
      let lo = Math.min(...all), hi = Math.max(...all);
      const log = positive && hi / lo > 100;
      const f = log ? Math.log10 : (v) => v;
      lo = f(lo); hi = f(hi);
      if (hi - lo < 1e-12) { hi += 0.5; lo -= 0.5; }
      const maxIt = Math.max(...entries.map(([, pts]) => pts[pts.length - 1][0]), 1);
      const W = this.width, H = this.height, pad = 4;
      const paths = entries.map(([name, pts], i) => {
        const d = pts.filter((p) => p[1] != null && (!log || p[1] > 0)).map((p, j) => {
          const x = pad + ((W - 2 * pad) * (p[0] - 1)) / Math.max(1, maxIt - 1);
          const y = H - pad - ((H - 2 * pad) * (f(p[1]) - lo)) / (hi - lo);
          return `${j ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
        }).join("");
        const last = pts[pts.length - 1][1];
        return { name, d, color: COLORS[i % COLORS.length], last };
      });
      return { paths, log };
    },
  },
  methods: {
    fmt(v) { return v == null ? "–" : Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toFixed(4) : v.toExponential(2); },
  },
  template: `
  <div class="ng-plot">
    <svg :width="width" :height="height" :viewBox="'0 0 ' + width + ' ' + height" class="ng-plot-svg">
      <path v-for="p in lines.paths" :key="p.name" :d="p.d" :stroke="p.color" fill="none"
            :stroke-width="p.name === 'total' ? 2 : 1.3" vector-effect="non-scaling-stroke"/>
    </svg>
    <div class="ng-legend">
      <span v-for="p in lines.paths" :key="p.name"><i :style="{background: p.color}"></i>{{ p.name }} {{ fmt(p.last) }}</span>
      <span v-if="lines.log" class="ng-dim">log scale</span>
    </div>
  </div>`,
};
