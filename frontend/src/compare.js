// Compare two recorded runs: the params that differ, both loss curves on one plot, metrics side by side, and
// for every image both runs produced an A/B slider (drag the divider) and a difference view.
import { LossPlot } from "nodegraph-ui/plot.js";

function fmt(v) {
  if (v == null) return "–";
  if (typeof v === "number") return Math.abs(v) >= 0.01 && Math.abs(v) < 1e5 ? v.toFixed(4) : v.toExponential(3);
  return JSON.stringify(v);
}

// One image pair: the slider shows A left of the divider and B right of it; "difference" shows |A - B|.
export const ABImage = {
  name: "ABImage",
  props: { name: String, a: String, b: String },
  data() { return { pos: 50, mode: "slider", gain: 4, dragging: false, diffError: "" }; },
  methods: {
    place(e) {
      const box = this.$refs.box.getBoundingClientRect();
      this.pos = Math.max(0, Math.min(100, ((e.clientX - box.left) / box.width) * 100));
    },
    down(e) { this.dragging = true; this.$refs.box.setPointerCapture?.(e.pointerId); this.place(e); },
    move(e) { if (this.dragging) this.place(e); },
    up() { this.dragging = false; },
    async showDiff() {
      this.mode = "diff";
      await this.$nextTick();
      try {
        const [ia, ib] = await Promise.all([this.load(this.a), this.load(this.b)]);
        const w = Math.min(ia.width, ib.width), h = Math.min(ia.height, ib.height);
        const pixels = (img) => {
          const c = document.createElement("canvas");
          c.width = w; c.height = h;
          const g = c.getContext("2d");
          g.drawImage(img, 0, 0, w, h);
          return g.getImageData(0, 0, w, h).data;
        };
        const pa = pixels(ia), pb = pixels(ib);
        const canvas = this.$refs.diff;
        canvas.width = w; canvas.height = h;
        const g = canvas.getContext("2d");
        const out = g.createImageData(w, h);
        let total = 0;
        for (let i = 0; i < pa.length; i += 4) {
          for (let k = 0; k < 3; k++) {
            const d = Math.abs(pa[i + k] - pb[i + k]);
            total += d;
            out.data[i + k] = Math.min(255, d * this.gain);
          }
          out.data[i + 3] = 255;
        }
        g.putImageData(out, 0, 0);
        canvas.dataset.meanDiff = (total / (w * h * 3)).toFixed(3);
      } catch (err) {
        this.diffError = `cannot compute the difference: ${err.message || err}`;
      }
    },
    load(src) {
      return new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error(`cannot load ${src}`));
        img.src = src;
      });
    },
  },
  template: `
  <div class="ng-ab" :data-image="name">
    <div class="ng-ab-head"><b>{{ name }}</b>
      <span class="ng-spacer"></span>
      <a class="ng-link" :class="{'ng-ab-on': mode === 'slider'}" @click="mode = 'slider'" data-role="ab-slider-mode">A/B slider</a>
      <a class="ng-link" :class="{'ng-ab-on': mode === 'diff'}" @click="showDiff" data-role="ab-diff-mode">difference ×{{ gain }}</a>
    </div>
    <div v-show="mode === 'slider'" ref="box" class="ng-ab-box" data-role="ab-box" :data-pos="pos.toFixed(1)"
         @pointerdown="down" @pointermove="move" @pointerup="up" @pointercancel="up">
      <img :src="b" class="ng-ab-img" draggable="false" alt="B">
      <img :src="a" class="ng-ab-img ng-ab-top" draggable="false" alt="A"
           :style="{clipPath: 'inset(0 ' + (100 - pos) + '% 0 0)'}" data-role="ab-top">
      <div class="ng-ab-divider" :style="{left: pos + '%'}" data-role="ab-divider"></div>
      <span class="ng-ab-tag ng-ab-tag-a">A</span><span class="ng-ab-tag ng-ab-tag-b">B</span>
    </div>
    <div v-show="mode === 'diff'" class="ng-ab-diffbox">
      <canvas ref="diff" class="ng-ab-img" data-role="ab-diff"></canvas>
      <div v-if="diffError" class="ng-errline">{{ diffError }}</div>
    </div>
  </div>`,
};

export const CompareView = {
  name: "CompareView",
  components: { LossPlot, ABImage },
  props: { data: Object, imageUrl: Function },
  emits: ["close"],
  computed: {
    series() {
      // {"A · term": [[iteration, value], ...], "B · term": ...}: every trainer's every term of both runs
      const out = {};
      for (const side of ["a", "b"]) {
        const curves = this.data.curves[side] || {};
        const many = Object.keys(curves).length > 1;
        for (const [trainer, terms] of Object.entries(curves)) {
          for (const [term, values] of Object.entries(terms)) {
            out[`${side.toUpperCase()} · ${many ? trainer + "." : ""}${term}`] = values.map((v, i) => [i + 1, v]);
          }
        }
      }
      return out;
    },
    params() { return Object.entries(this.data.params || {}); },
    metrics() { return Object.entries(this.data.metrics || {}); },
  },
  methods: {
    fmt,
    when(run) { return run.started ? new Date(run.started * 1000).toLocaleString() : ""; },
    delta(pair) {
      return typeof pair[0] === "number" && typeof pair[1] === "number" ? fmt(pair[1] - pair[0]) : "";
    },
  },
  template: `
  <div class="ng-compare" data-role="compare" @click.self="$emit('close')">
    <div class="ng-compare-card">
      <div class="ng-compare-title">Compare
        <span class="ng-compare-run"><b>A</b> {{ data.a.id }} <span class="ng-dim">{{ when(data.a) }} · {{ data.a.status }}</span></span>
        <span class="ng-compare-run"><b>B</b> {{ data.b.id }} <span class="ng-dim">{{ when(data.b) }} · {{ data.b.status }}</span></span>
        <span class="ng-spacer"></span>
        <a class="ng-link" @click="$emit('close')" aria-label="Close compare">close</a>
      </div>
      <div class="ng-compare-grid">
        <section>
          <h4>Params that differ</h4>
          <table class="ng-table" data-role="params-diff">
            <tr><th>param</th><th>A</th><th>B</th></tr>
            <tr v-for="[k, pair] in params" :key="k" :data-param="k"><td>{{ k }}</td><td>{{ fmt(pair[0]) }}</td><td>{{ fmt(pair[1]) }}</td></tr>
            <tr v-if="!params.length"><td colspan="3" class="ng-dim">the two graphs ran with the same params</td></tr>
          </table>
          <h4>Metrics</h4>
          <table class="ng-table" data-role="metrics">
            <tr><th>metric</th><th>A</th><th>B</th><th>B − A</th></tr>
            <tr v-for="[k, pair] in metrics" :key="k" :data-metric="k"><td>{{ k }}</td><td>{{ fmt(pair[0]) }}</td><td>{{ fmt(pair[1]) }}</td><td>{{ delta(pair) }}</td></tr>
            <tr v-if="!metrics.length"><td colspan="4" class="ng-dim">no metrics</td></tr>
          </table>
        </section>
        <section data-role="curves">
          <h4>Loss curves</h4>
          <LossPlot v-if="Object.keys(series).length" :series="series" :width="520" :height="220"/>
          <div v-else class="ng-dim">neither run trained</div>
        </section>
      </div>
      <h4>Images both runs made</h4>
      <div class="ng-compare-images">
        <ABImage v-for="key in data.previews" :key="key" :name="key"
                 :a="imageUrl(data.a.id, key)" :b="imageUrl(data.b.id, key)"/>
        <div v-if="!data.previews.length" class="ng-dim">no image in common</div>
      </div>
    </div>
  </div>`,
};
