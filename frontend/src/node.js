// One node on the canvas: header (type, id, state), ports coloured by type, param widgets, progress,
// live previews (image, loss plot) and errors. Everything it shows comes from the spec and from run events.
import { Handle, Position } from "@vue-flow/core";
import { ParamWidget } from "nodegraph-ui/widgets.js";
import { LossPlot } from "nodegraph-ui/plot.js";

const STATE_TEXT = { waiting: "waiting", running: "running", cached: "cached", done: "done", error: "error",
                     stale: "edited" };

export const GraphNode = {
  name: "GraphNode",
  components: { Handle, ParamWidget, LossPlot },
  props: ["id", "data", "selected"],
  inject: ["ng"],
  setup() {
    return { Position };
  },
  computed: {
    compact() { return this.ng.zoom < 0.45 && !this.selected; },  // level of detail: params hidden when far out
    spec() { return this.ng.catalogue.spec(this.data.type); },
    run() { return this.ng.run[this.id] || {}; },
    state() { return this.run.state || ""; },
    problems() { return this.ng.problems[this.id] || []; },
    fieldProblems() {
      const out = {};
      for (const p of this.problems) if (p.field) out[p.field] = p.message;
      return out;
    },
    nodeProblems() {
      const ports = new Set((this.spec ? this.spec.params.map((p) => p.name) : []));
      return this.problems.filter((p) => !p.field || !ports.has(p.field));
    },
    rows() {
      const s = this.spec;
      if (!s) return [];
      const n = Math.max(s.inputs.length, s.outputs.length);
      return Array.from({ length: n }, (_, i) => [s.inputs[i] || null, s.outputs[i] || null]);
    },
    previews() { return this.ng.previews[this.id] || {}; },
    images() { return Object.entries(this.previews).filter(([, p]) => p.kind === "image"); },
    plot() { return Object.values(this.previews).find((p) => p.kind === "plot"); },
    has3d() { return Object.values(this.previews).some((p) => p.kind === "mesh" || p.kind === "points"); },
    progress() { return this.state === "running" || this.spec?.flags?.trainer ? this.run.progress : null; },
    badge() {
      if (!this.state) return "";
      const t = STATE_TEXT[this.state] || this.state;
      if (this.state === "done" && this.run.seconds != null)
        return `${t} · ${fmtSeconds(this.run.seconds)}`;
      return t;
    },
    catColor() { return categoryColor(this.spec ? this.spec.category : "?"); },
  },
  methods: {
    color(type) { return this.ng.catalogue.color(type); },
    setParam(name, value) { this.ng.setParam(this.id, name, value); },
    fmtLoss(v) { return v == null ? "–" : Math.abs(v) >= 0.01 ? v.toFixed(4) : v.toExponential(2); },
  },
  template: `
  <div class="ng-node" :class="['ng-state-' + (state || 'idle'), {'ng-compact': compact, 'ng-selected': selected, 'ng-has-error': state === 'error' || nodeProblems.length, 'ng-unknown': !spec}]"
       :style="{'--cat': catColor}" :data-node-id="id">
    <div class="ng-head" @mouseenter="ng.showDoc($event, id)" @mouseleave="ng.hideTip()">
      <span class="ng-title">{{ data.type }}</span>
      <span class="ng-id">{{ id }}</span>
      <span v-if="spec && spec.flags.learnable" class="ng-flag" title="learnable: trained by an Optimize node">L</span>
      <span v-if="spec && spec.flags.stochastic" class="ng-flag" title="stochastic: a new value each run">~</span>
      <span class="ng-spacer"></span>
      <span v-if="badge" class="ng-badge" :class="'ng-badge-' + state" :data-state="state">{{ badge }}</span>
      <button class="ng-icon nodrag" title="run up to this node" @click.stop="ng.runTo(id)">▶</button>
    </div>
    <div v-if="!spec" class="ng-errline">unknown node type {{ data.type }}</div>
    <div v-if="progress" class="ng-progress">
      <div class="ng-bar"><div class="ng-bar-fill" :style="{width: (100 * progress.iteration / Math.max(1, progress.total)) + '%'}"></div></div>
      <div class="ng-progress-text"><span>{{ progress.iteration }} / {{ progress.total }}</span><span>loss {{ fmtLoss(progress.loss) }}</span></div>
    </div>
    <div class="ng-ports" v-if="rows.length">
      <div v-for="(row, i) in rows" :key="i" class="ng-row">
        <div class="ng-in" v-if="row[0]" @mouseenter="ng.showPort($event, id, row[0], 'in')" @mouseleave="ng.hideTip()">
          <Handle type="target" :position="Position.Left" :id="row[0].name" class="ng-handle"
                  :class="{'ng-handle-multi': row[0].multiple}"
                  :style="{background: color(row[0].type)}" :data-port="row[0].name" :data-type="row[0].type"/>
          <span class="ng-port-label" :class="{'ng-optional': row[0].optional}">{{ row[0].name }}</span>
        </div>
        <div v-else></div>
        <div class="ng-out" v-if="row[1]" @mouseenter="ng.showPort($event, id, row[1], 'out')" @mouseleave="ng.hideTip()"
             @click.stop="ng.pinPort($event, id, row[1])">
          <span class="ng-port-label">{{ row[1].name }}</span>
          <Handle type="source" :position="Position.Right" :id="row[1].name" class="ng-handle"
                  :style="{background: color(row[1].type)}" :data-port="row[1].name" :data-type="row[1].type"/>
        </div>
      </div>
    </div>
    <div class="ng-params" v-if="spec && spec.params.length && !compact">
      <ParamWidget v-for="p in spec.params" :key="p.name" :param="p" :value="data.params[p.name]" :node-id="id"
                   :problem="fieldProblems[p.name]" @change="v => setParam(p.name, v)"/>
    </div>
    <div v-for="p in nodeProblems" :key="p.field + p.message" class="ng-errline">
      <b v-if="p.field">{{ p.field }}:</b> {{ p.message }}
    </div>
    <div v-if="state === 'error'" class="ng-errline ng-run-error">
      <span>{{ run.message }}</span>
      <a class="nodrag" @click.stop="ng.showError(id)">details</a>
    </div>
    <div v-for="[port, img] in images" :key="port" class="ng-preview nodrag" @click.stop="ng.zoomImage(id, port)">
      <img :src="img.url" :alt="id + '.' + port" :data-preview="port" :width="img.width" :height="img.height">
      <span class="ng-preview-label">{{ port }} · {{ img.width }}×{{ img.height }}</span>
    </div>
    <LossPlot v-if="plot" :series="plot.series" class="nodrag"/>
    <div v-if="has3d" class="ng-3d-link nodrag" @click.stop="ng.focus3d(id)">◈ shown in the 3D view</div>
  </div>`,
};

export function fmtSeconds(s) {
  if (s < 0.001) return "<1 ms";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
}

const CAT_COLORS = {};
const PALETTE = ["#5c7cfa", "#20c997", "#f59f00", "#e64980", "#7950f2", "#15aabf", "#82c91e", "#fd7e14",
                 "#be4bdb", "#4dabf7", "#fab005", "#12b886", "#ff6b6b", "#94d82d"];
export function categoryColor(cat) {
  if (!CAT_COLORS[cat]) {
    let h = 0;
    for (const c of cat) h = (h * 31 + c.charCodeAt(0)) >>> 0;
    CAT_COLORS[cat] = PALETTE[h % PALETTE.length];
  }
  return CAT_COLORS[cat];
}
