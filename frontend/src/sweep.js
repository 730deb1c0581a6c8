// The editor's sweep: pick params on the canvas (select a node, choose one of its params, give values), start a
// sweep of the working graph on Ray, and watch the table fill in; each finished row opens as a run.
function values(text) {
  return text.split(",").map((t) => t.trim()).filter((t) => t.length).map((t) => {
    try { return JSON.parse(t); } catch (e) { return t; }
  });
}

export const SweepPanel = {
  name: "SweepPanel",
  props: ["ed"],
  emits: ["open-run"],
  data() {
    return { picks: [], node: "", param: "", text: "", metric: "", mode: "min", state: null, timer: null };
  },
  computed: {
    nodeId() { return this.node || this.ed.selectedId || ""; },
    params() {
      const n = this.nodeId && this.ed.flow.findNode(this.nodeId);
      const spec = n && this.ed.catalogue.spec(n.data.type);
      return spec ? spec.params.map((p) => p.name) : [];
    },
    rows() { return (this.state && this.state.sweep && this.state.sweep.rows) || []; },
    running() { return !!(this.state && this.state.running); },
  },
  mounted() { this.poll(); },
  beforeUnmount() { clearTimeout(this.timer); },
  methods: {
    add() {
      if (!this.nodeId || !this.param || !values(this.text).length) {
        this.ed.notify("select a node on the canvas, pick one of its params and give values (a, b, c)", "error");
        return;
      }
      // the engine's id of the node: inside an entered group, its flat path id (the server then says to sweep one of
      // the instance's exposed params), never a same-named node of the graph's top level
      const key = `${this.ed.flatId(this.nodeId)}.${this.param}`;
      this.picks = [...this.picks.filter((p) => p.key !== key), { key, values: values(this.text) }];
      this.text = "";
    },
    drop(key) { this.picks = this.picks.filter((p) => p.key !== key); },
    async start() {
      const grid = Object.fromEntries(this.picks.map((p) => [p.key, p.values]));
      try {
        await this.ed.syncNow?.();
        this.state = await this.ed.api.post("/sweep", { grid, metric: this.metric, mode: this.mode });
        this.poll();
      } catch (e) {
        this.ed.notify(`Cannot start the sweep: ${e.message}`, "error");
      }
    },
    async stop() { this.state = await this.ed.api.post("/sweep/stop"); },
    async poll() {
      clearTimeout(this.timer);
      try { this.state = await this.ed.api.get("/sweep"); } catch (e) { /* the next poll tries again */ }
      if (this.running) this.timer = setTimeout(() => this.poll(), 1000);
    },
    fmt(v) { return v == null ? "–" : typeof v === "number" ? v.toPrecision(5) : JSON.stringify(v); },
    shown(overrides) { return Object.entries(overrides).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("  "); },
  },
  template: `
  <div class="ng-sweep" data-role="sweep-panel">
    <div class="ng-sweep-pick">
      <select v-model="node" aria-label="Sweep node"><option value="">{{ ed.selectedId ? 'selected: ' + ed.selectedId : 'select a node' }}</option>
        <option v-for="n in ed.flow.nodes.value" :key="n.id" :value="n.id">{{ n.id }}</option></select>
      <select v-model="param" aria-label="Sweep param"><option value="">param</option>
        <option v-for="p in params" :key="p" :value="p">{{ p }}</option></select>
      <input v-model="text" placeholder="values: 0.01, 0.05, 0.1" aria-label="Sweep values" @keydown.enter="add">
      <a class="ng-link" @click="add" aria-label="Add sweep param">add</a>
    </div>
    <div v-for="p in picks" :key="p.key" class="ng-sweep-row" :data-pick="p.key"><code>{{ p.key }}</code> = {{ p.values.map(v => JSON.stringify(v)).join(', ') }}
      <a class="ng-link" @click="drop(p.key)">remove</a></div>
    <div class="ng-sweep-pick">
      <input v-model="metric" placeholder="metric (node.output), e.g. silhouette.loss" aria-label="Sweep metric">
      <select v-model="mode" aria-label="Sweep mode"><option>min</option><option>max</option></select>
      <q-btn v-if="!running" dense unelevated no-caps color="positive" label="Start sweep" :disable="!picks.length" @click="start" aria-label="Start sweep"/>
      <q-btn v-else dense unelevated no-caps color="negative" label="Stop sweep" @click="stop" aria-label="Stop sweep"/>
    </div>
    <div v-if="state && state.sweep" class="ng-dim ng-sweep-status" data-role="sweep-status">
      {{ state.sweep.status }} · {{ rows.length }} of {{ state.sweep.trials }} trials · {{ state.sweep.folder }}
      <span v-if="state.error" class="ng-fail">{{ state.error }}</span></div>
    <table v-if="rows.length" class="ng-table" data-role="sweep-table">
      <tr><th>#</th><th>params</th><th>status</th><th>{{ state.sweep.metric || 'metric' }}</th><th></th></tr>
      <tr v-for="r in rows" :key="r.trial" :data-trial="r.trial">
        <td>{{ r.trial }}</td><td class="ng-runs-metrics">{{ shown(r.overrides) }}</td>
        <td :class="r.status === 'ok' ? 'ng-ok' : 'ng-fail'" :title="r.error || ''">{{ r.status }}</td>
        <td>{{ fmt(r.metric) }}</td>
        <td><a v-if="r.run_id" class="ng-link" @click="$emit('open-run', r.run_id)">open</a></td>
      </tr>
    </table>
  </div>`,
};
