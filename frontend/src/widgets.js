// Param widgets generated from a param spec (nodegraph.spec.Param.to_json): native inputs, light enough for
// hundreds of nodes. Each emits `change(value)` with a value the spec accepts (or null for "not set").

function hex(rgb) {
  const c = (v) => Math.max(0, Math.min(255, Math.round((Number(v) || 0) * 255))).toString(16).padStart(2, "0");
  return `#${c(rgb[0])}${c(rgb[1])}${c(rgb[2])}`;
}
function rgb(h) {
  return [1, 3, 5].map((i) => Math.round((parseInt(h.slice(i, i + 2), 16) / 255) * 1000) / 1000);
}
// A log slider moves in powers of ten: LOG_STEPS positions between min and max.
const LOG_STEPS = 1000;
function toLog(v, p) {
  const a = Math.log10(p.min), b = Math.log10(p.max);
  return Math.round(((Math.log10(Math.max(p.min, Math.min(p.max, v))) - a) / (b - a)) * LOG_STEPS);
}
function fromLog(pos, p) {
  const a = Math.log10(p.min), b = Math.log10(p.max);
  return Number((10 ** (a + (pos / LOG_STEPS) * (b - a))).toPrecision(3));
}

function num(text, integer) {
  if (text === "" || text === null || text === undefined) return null;
  const v = integer ? parseInt(text, 10) : parseFloat(text);
  return Number.isFinite(v) ? v : null;
}

export const ParamWidget = {
  name: "ParamWidget",
  props: ["param", "value", "problem", "nodeId"],
  emits: ["change"],
  inject: ["ng"],
  data() {
    return { files: null };
  },
  computed: {
    v() { return this.value === undefined ? this.param.default : this.value; },
    kind() {
      const p = this.param;
      if (p.widget === "file" && p.must_exist === false) return "text";
      if (p.widget === "number" && p.log && p.min > 0 && p.max > p.min) return "logslider";
      if (p.widget === "number" && p.kind === "float" && p.min !== null && p.max !== null &&
          p.max - p.min <= 1000) return "slider";
      if (p.widget === "number" && p.kind === "int" && p.min !== null && p.max !== null &&
          p.max - p.min <= 64) return "slider";
      return p.widget;
    },
    step() {
      const p = this.param;
      if (p.kind === "int") return 1;
      if (p.step) return p.step;
      if (p.min !== null && p.max !== null) return Math.max((p.max - p.min) / 200, 1e-6);
      return "any";
    },
    listText() { return Array.isArray(this.v) ? this.v.join(", ") : ""; },
    fileOptions() {
      const list = (this.files || []).map((f) => f.value);
      if (this.v && !list.includes(this.v)) list.unshift(this.v);
      return list;
    },
  },
  methods: {
    set(value) { this.$emit("change", value); },
    setNumber(text, el = null) {
      const v = num(text, this.param.kind === "int");
      if (v === null && !this.param.optional) {
        // not a number (typing "1e", a cleared field): show the value the graph keeps, never a blank
        if (el) el.value = this.v ?? "";
        return;
      }
      this.set(v);
    },
    setLog(pos) { this.set(fromLog(Number(pos), this.param)); },
    logPos(v) { return toLog(v ?? this.param.default ?? this.param.min, this.param); },
    setVec(i, text, el = null) {
      const v = num(text, false);
      if (v === null) { if (el && this.v) el.value = this.v[i]; return; }
      const next = [...(this.v || [0, 0, 0])];
      next[i] = v;
      this.set(next);
    },
    setList(text, numeric) {
      const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
      if (numeric) {
        const vals = parts.map((s) => parseFloat(s));
        if (vals.some((x) => !Number.isFinite(x))) return;
        this.set(vals);
      } else this.set(parts);
    },
    async loadFiles() {
      if (this.files !== null) return;
      this.files = [];
      try { this.files = await this.ng.listFiles(this.param.extensions || []); } catch (e) { this.files = []; }
    },
    hex, rgb, LOG_STEPS: () => LOG_STEPS,
  },
  template: `
  <label class="ng-param nodrag" :class="{'ng-bad': problem}" :title="(problem ? problem + ' — ' : '') + (param.doc || param.name)"
         :data-param="param.name">
    <span class="ng-pname">{{ param.name }}</span>
    <span class="ng-pval">
      <template v-if="kind === 'logslider'">
        <input type="range" class="ng-range ng-range-log" min="0" :max="LOG_STEPS()" step="1" :value="logPos(v)"
               :title="'log scale: ' + param.min + ' … ' + param.max" @input="setLog($event.target.value)">
        <input type="number" class="ng-num ng-num-short" :min="param.min" :max="param.max" step="any"
               :value="v" @change="setNumber($event.target.value, $event.target)">
      </template>
      <template v-else-if="kind === 'slider'">
        <input type="range" class="ng-range" :min="param.min" :max="param.max" :step="step" :value="v ?? param.min"
               @input="setNumber($event.target.value)">
        <input type="number" class="ng-num ng-num-short" :min="param.min" :max="param.max" :step="step"
               :value="v" @change="setNumber($event.target.value, $event.target)">
      </template>
      <input v-else-if="kind === 'number'" type="number" class="ng-num" :min="param.min ?? undefined"
             :max="param.max ?? undefined" :step="step" :value="v" :placeholder="param.optional ? 'auto' : ''"
             @change="setNumber($event.target.value, $event.target)">
      <select v-else-if="kind === 'checkbox' && param.optional" :value="v === null || v === undefined ? '' : String(v)"
              @change="set($event.target.value === '' ? null : $event.target.value === 'true')">
        <option value="">default</option><option value="true">on</option><option value="false">off</option>
      </select>
      <input v-else-if="kind === 'checkbox'" type="checkbox" :checked="!!v" @change="set($event.target.checked)">
      <select v-else-if="kind === 'select'" :value="v" @change="set($event.target.value)">
        <option v-for="c in param.choices" :key="c" :value="c">{{ c }}</option>
      </select>
      <span v-else-if="kind === 'vec3'" class="ng-vec">
        <input v-for="i in [0,1,2]" :key="i" type="number" step="any" class="ng-num ng-num-vec"
               :value="v ? v[i] : ''" @change="setVec(i, $event.target.value, $event.target)">
      </span>
      <span v-else-if="kind === 'color'" class="ng-color">
        <input type="color" :value="hex(v || [1,1,1])" @input="set(rgb($event.target.value))">
        <span class="ng-dim">{{ (v || []).map(x => (+x).toFixed(2)).join(' ') }}</span>
      </span>
      <input v-else-if="kind === 'floats'" type="text" :value="listText" placeholder="1, 2, 3"
             @change="setList($event.target.value, true)">
      <input v-else-if="kind === 'texts'" type="text" :value="listText" placeholder="a, b"
             @change="setList($event.target.value, false)">
      <select v-else-if="kind === 'file'" class="ng-file" :value="v" @focus="loadFiles" @mousedown="loadFiles"
              @change="set($event.target.value)">
        <option v-if="!v" value="" disabled>choose a file…</option>
        <option v-for="f in fileOptions" :key="f" :value="f">{{ f }}</option>
      </select>
      <textarea v-else-if="param.multiline" rows="2" :value="v ?? ''" @change="set($event.target.value)"></textarea>
      <input v-else type="text" :value="v ?? ''" :placeholder="param.optional ? 'not set' : ''"
             @change="set($event.target.value === '' && param.optional ? null : $event.target.value)">
      <span v-if="param.unit" class="ng-unit">{{ param.unit }}</span>
    </span>
  </label>
  <div v-if="problem" class="ng-param-why" :data-why="param.name">{{ problem }}</div>`,
};
