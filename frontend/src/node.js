// One node on the canvas: header (type, id, state), ports coloured by type, param widgets, progress,
// live previews (image, loss plot) and errors. Everything it shows comes from the spec and from run events.
import { Handle, Position } from "@vue-flow/core";
import { ParamWidget } from "nodegraph-ui/widgets.js";
import { LossPlot } from "nodegraph-ui/plot.js";
import { IDLE, fmtSeconds } from "nodegraph-ui/runstate.js";

export { fmtSeconds };

export const FLOW_ID = "ng";  // the editor's one Vue Flow canvas; Vue Flow prefixes handle ids with it

// A port's connection point. Vue Flow's Handle is a component with its own reactive state and listeners;
// mounting hundreds of them dominates opening a large graph. Edges only need an element with Handle's classes
// and data attributes (Vue Flow measures handles from the DOM, and finds link targets the same way), so a
// node far out draws that plain element and switches to the real Handle, which can start a drag, once the
// pointer reaches it.
const PortHandle = {
  name: "PortHandle",
  components: { Handle },
  props: ["live", "nodeId", "port", "type", "color"],
  setup() {
    return { Position, flowId: FLOW_ID };
  },
  computed: {
    side() { return this.type === "source" ? "right" : "left"; },
    plainClass() {
      return ["vue-flow__handle", `vue-flow__handle-${this.side}`, `vue-flow__handle-${this.port.name}`, "nodrag", "nopan",
              this.type, "connectable", "connectablestart", "connectableend", "connectionindicator"];
    },
  },
  template: `
  <Handle v-if="live" :type="type" :position="side === 'right' ? Position.Right : Position.Left" :id="port.name"
          class="ng-handle" :class="{'ng-handle-multi': port.multiple && type === 'target'}"
          :style="{background: color}" :data-port="port.name" :data-type="port.type"/>
  <div v-else class="ng-handle" :class="[plainClass, {'ng-handle-multi': port.multiple && type === 'target'}]"
       :style="{background: color}" :data-port="port.name" :data-type="port.type" :data-handleid="port.name"
       :data-nodeid="nodeId" :data-handlepos="side" :data-id="flowId + '-' + nodeId + '-' + port.name + '-' + type"></div>`,
};

export const COMPACT_BELOW = 0.45;  // zoom under which nodes are drawn in their compact form

const STATE_TEXT = { waiting: "waiting", running: "running", cached: "cached", done: "done", error: "error",
                     stale: "edited" };

const NodeBody = {
  name: "NodeBody",
  components: { PortHandle, ParamWidget, LossPlot },
  props: ["id", "data", "selected"],
  inject: ["ng"],
  data() {
    return { hovered: false };
  },
  computed: {
    // Level of detail: far out, labels, ids and params are unreadable, so they are not drawn, and ports are
    // plain elements until the pointer first reaches the node (see PortHandle).
    compact() { return this.ng.zoom < COMPACT_BELOW && !this.selected; },
    live() { return !this.compact || this.hovered || this.selected; },
    spec() { return this.ng.catalogue.spec(this.data.type); },
    run() { return this.ng.run(this.id); },
    state() { return this.run.state === IDLE ? "" : this.run.state || ""; },
    problems() { return this.ng.problems(this.id); },
    label() { return (this.data.ui && this.data.ui.label) || ""; },
    stale() { return this.ng.stale(this.id); },
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
    files() { return this.run.files || []; },  // the paths this node wrote in its last run (node_finished files)
    previews() { return this.ng.previews(this.id); },
    group() { return this.data.type.startsWith("group:") ? this.data.type.slice(6) : null; },
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
    fmtRate(p) {
      if (!p.rate) return "";
      const r = p.rate >= 10 ? p.rate.toFixed(0) : p.rate.toFixed(1);
      return `${r} it/s` + (p.left_s != null && p.iteration < p.total ? ` · ${fmtSeconds(p.left_s)} left` : "");
    },
    onTitleDblClick(event) {
      if (this.group) return;  // a group's title enters it, like the rest of the node (label it from the menu)
      event.stopPropagation();
      this.ng.rename(this.id);
    },
    fmtLoss(v) { return v == null ? "–" : Math.abs(v) >= 0.01 ? v.toFixed(4) : v.toExponential(2); },
  },
  template: `
  <div class="ng-node" @mouseenter.once="hovered = true" :class="['ng-state-' + (state || 'idle'), {'ng-compact': compact, 'ng-selected': selected, ['ng-mode-' + data.mode]: !!data.mode, 'ng-group-node': group, 'ng-has-error': state === 'error' || nodeProblems.length, 'ng-unknown': !spec}]"
       :style="{'--cat': catColor}" :data-node-id="id">
    <div class="ng-head" @mouseenter="ng.showDoc($event, id)" @mouseleave="ng.hideTip()">
      <span class="ng-title" :data-label="label || null" :title="group ? 'double-click: enter the group' : 'double-click: label this node'" @dblclick="onTitleDblClick">{{ label || data.type }}</span>
      <span v-if="!compact" class="ng-id">{{ label ? data.type + ' · ' + id : id }}</span>
      <template v-if="!compact">
      <span v-if="spec && spec.flags.learnable" class="ng-flag" title="learnable: trained by an Optimize node">L</span>
      <span v-if="spec && spec.flags.stochastic" class="ng-flag" title="stochastic: a new value each run">~</span>
      </template>
      <span v-if="data.mode" class="ng-mode-tag" :data-mode="data.mode">{{ data.mode === 'bypass' ? 'bypassed' : 'muted' }}</span>
      <span class="ng-spacer"></span>
      <span v-if="badge" class="ng-badge" :class="'ng-badge-' + state" :data-state="state">{{ badge }}</span>
      <button v-if="!compact" class="ng-icon nodrag" :class="{'ng-on': data.mode === 'bypass'}" title="bypass (Ctrl+B): pass the matching input through" aria-label="bypass" @click.stop="ng.toggleMode('bypass', [id])">B</button>
      <button v-if="!compact" class="ng-icon nodrag" :class="{'ng-on': data.mode === 'mute'}" title="mute (Ctrl+M): skip it and what only it feeds" aria-label="mute" @click.stop="ng.toggleMode('mute', [id])">M</button>
      <button v-if="!compact" class="ng-icon nodrag" title="run up to this node" @click.stop="ng.runTo(id)">▶</button>
    </div>
    <div v-if="!spec" class="ng-errline">unknown node type {{ data.type }}</div>
    <div v-if="group && !compact" class="ng-group-hint">group · double-click to enter</div>
    <div v-if="progress" class="ng-progress">
      <div class="ng-bar"><div class="ng-bar-fill" :style="{width: (100 * progress.iteration / Math.max(1, progress.total)) + '%'}"></div></div>
      <div class="ng-progress-text"><span>{{ progress.iteration }} / {{ progress.total }}</span><span>loss {{ fmtLoss(progress.loss) }}</span></div>
      <div v-if="progress.rate" class="ng-progress-rate" data-role="rate">{{ fmtRate(progress) }}</div>
    </div>
    <div class="ng-ports" v-if="rows.length">
      <div v-for="(row, i) in rows" :key="i" class="ng-row">
        <div class="ng-in" v-if="row[0]" @mouseenter="ng.showPort($event, id, row[0], 'in')" @mouseleave="ng.hideTip()">
          <PortHandle :live="live" :node-id="id" :port="row[0]" type="target" :color="color(row[0].type)"/>
          <span v-if="!compact" class="ng-port-label" :class="{'ng-optional': row[0].optional}">{{ row[0].name }}</span>
        </div>
        <div v-else></div>
        <div class="ng-out" v-if="row[1]" @mouseenter="ng.showPort($event, id, row[1], 'out')" @mouseleave="ng.hideTip()"
             @click.stop="ng.pinPort($event, id, row[1])">
          <span v-if="!compact" class="ng-port-label">{{ row[1].name }}</span>
          <PortHandle :live="live" :node-id="id" :port="row[1]" type="source" :color="color(row[1].type)"/>
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
      <a class="nodrag" @click.stop="ng.showError(ng.flatId(id))">details</a>
    </div>
    <div v-for="[port, img] in images" :key="port" class="ng-preview nodrag" :class="{'ng-preview-stale': stale}" :data-stale="stale ? 'true' : null" @click.stop="ng.zoomImage(ng.flatId(id), port)">
      <img :src="img.url" :alt="id + '.' + port" :data-preview="port" :width="img.width" :height="img.height">
      <span class="ng-preview-label">{{ port }} · {{ img.width }}×{{ img.height }}<span v-if="stale" class="ng-stale-note"> · from an earlier run (upstream failed)</span></span>
    </div>
    <div v-if="files.length && !compact" class="ng-files nodrag" data-role="files">
      <div v-for="f in files" :key="f" class="ng-file">
        <span class="ng-file-name" :title="f" :data-path="f">{{ ng.relPath(f) }}</span>
        <a class="ng-icon" :href="ng.fileUrl(f)" target="_blank" rel="noopener" title="open the file" aria-label="open the file" @click.stop>↗</a>
        <button class="ng-icon" title="copy the full path" aria-label="copy the full path" @click.stop="ng.copyPath(f)">⧉</button>
      </div>
    </div>
    <LossPlot v-if="plot" :series="plot.series" class="nodrag"/>
    <div v-if="has3d" class="ng-3d-link nodrag" @click.stop="ng.focus3d(ng.flatId(id))">◈ shown in the 3D view</div>
  </div>`,
};

// What Vue Flow passes to a custom node. Declared so that they do not land on the DOM as attributes.
const FLOW_NODE_PROPS = ["id", "type", "data", "events", "selected", "resizing", "dragging", "connectable", "position",
  "dimensions", "isValidTargetPos", "isValidSourcePos", "parent", "parentNodeId", "zIndex", "targetPosition",
  "sourcePosition", "label", "dragHandle"];

// The node type registered with Vue Flow: a thin shell. Vue Flow re-renders it whenever the node's wrapper
// renders (measuring, dragging: it passes a fresh `events` object each time); the shell hands NodeBody only
// what the body shows, so the body is not re-rendered for those.
export const GraphNode = {
  name: "GraphNode",
  components: { NodeBody },
  props: FLOW_NODE_PROPS,
  emits: ["updateNodeInternals"],
  template: `<NodeBody :id="id" :data="data" :selected="selected"/>`,
};


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
