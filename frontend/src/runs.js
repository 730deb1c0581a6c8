// The Runs panel: the open graph's past runs (time, status, duration, key metrics) from the run history;
// re-open a run's graph exactly as it ran, delete runs, pick two and Compare them (compare.js).
// It mounts as one toolbar element of the editor and reads the editor it is given (`ed`, as the toolbar).
import { CompareView } from "nodegraph-ui/compare.js";
import { SweepPanel } from "nodegraph-ui/sweep.js";

const STYLE_ID = "ng-runs-css";

function addStyle(prefix) {
  if (document.getElementById(STYLE_ID)) return;
  const link = document.createElement("link");
  link.id = STYLE_ID;
  link.rel = "stylesheet";
  link.href = `${prefix}/nodegraph/src/runs.css`;
  document.head.appendChild(link);
}

function seconds(s) {
  if (s == null) return "–";
  return s < 60 ? `${s.toFixed(s < 10 ? 2 : 1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export const RunsPanel = {
  name: "RunsPanel",
  components: { CompareView, SweepPanel },
  props: ["ed"],
  data() { return { open: false, tab: "runs", all: false, runs: [], picked: [], compare: null, folder: "", size: "" }; },
  mounted() {
    addStyle(this.ed.api.prefix);
    // A finished run is recorded just after its last event: look again shortly after.
    this.$watch(() => this.ed.runsFinished, () => {
      if (!this.open) return;
      setTimeout(() => this.refresh(), 400);
      setTimeout(() => this.refresh(), 1500);
    });
    this.$watch(() => this.ed.meta.name, () => this.open && this.refresh());
  },
  methods: {
    toggle() { this.open = !this.open; if (this.open) this.refresh(); },
    async refresh() {
      const q = this.all ? "" : `?graph=${encodeURIComponent(this.ed.meta.name || "")}`;
      try {
        const data = await this.ed.api.get(`/runs${q}`);
        this.runs = data.runs;
        this.folder = data.folder;
        this.size = `${(data.bytes / 2 ** 20).toFixed(1)} of ${(data.max_bytes / 2 ** 20).toFixed(0)} MB`;
        this.picked = this.picked.filter((id) => this.runs.some((r) => r.id === id));
      } catch (e) {
        this.ed.notify(`Cannot list runs: ${e.message}`, "error");
      }
    },
    when(run) { return new Date(run.started * 1000).toLocaleString(); },
    seconds,
    keyMetrics(run) {
      return Object.entries(run.metrics || {}).slice(0, 3)
        .map(([k, v]) => `${k} ${Math.abs(v) >= 0.01 && Math.abs(v) < 1e5 ? v.toFixed(4) : v.toExponential(2)}`);
    },
    pick(id, on) {
      this.picked = on ? [...this.picked.filter((p) => p !== id), id].slice(-2) : this.picked.filter((p) => p !== id);
    },
    async reopen(run) {
      if (!(await this.ed.confirmDiscard())) return;
      try {
        this.ed.loaded(await this.ed.api.post(`/runs/${run.id}/open`));
        this.ed.notify(`Opened ${run.graph} as it ran (${this.when(run)}); save it to keep it`);
      } catch (e) {
        this.ed.notify(`Cannot open run ${run.id}: ${e.message}`, "error");
      }
    },
    async reopenId(id) {
      try {
        await this.reopen(await this.ed.api.get(`/runs/${id}`));
      } catch (e) {
        this.ed.notify(`Cannot open run ${id}: ${e.message}`, "error");
      }
    },
    async remove(run) {
      try {
        await this.ed.api.post(`/runs/${run.id}/delete`);
        await this.refresh();
      } catch (e) {
        this.ed.notify(`Cannot delete run ${run.id}: ${e.message}`, "error");
      }
    },
    async compareRuns() {
      const [a, b] = [...this.picked].sort();  // older run is A
      try {
        this.compare = await this.ed.api.get(`/compare?a=${a}&b=${b}`);
      } catch (e) {
        this.ed.notify(`Cannot compare: ${e.message}`, "error");
      }
    },
    imageUrl(id, key) {
      const q = this.ed.api.token ? `&token=${encodeURIComponent(this.ed.api.token)}` : "";
      return this.ed.api.url(`/runs/${id}/preview?key=${encodeURIComponent(key)}${q}`);
    },
  },
  template: `
  <span class="ng-runs-hook">
    <q-btn flat dense no-caps icon="history" label="Runs" class="ng-tb" aria-label="Runs" @click="toggle"><q-tooltip>Past runs of this graph</q-tooltip></q-btn>
    <div v-if="open" class="ng-runs-panel" data-role="runs-panel">
      <div class="ng-runs-head">
        <b>Runs</b> <span class="ng-dim">{{ all ? 'all graphs' : (ed.meta.name || 'untitled') }}</span>
        <label class="ng-runs-all"><input type="checkbox" v-model="all" @change="refresh"> all graphs</label>
        <span class="ng-spacer"></span>
        <q-btn dense unelevated no-caps color="primary" label="Compare" :disable="picked.length !== 2"
               @click="compareRuns" aria-label="Compare runs"/>
        <a class="ng-link" @click="refresh">refresh</a>
        <a class="ng-link" @click="open = false" aria-label="Close runs">close</a>
      </div>
      <div class="ng-runs-tabs"><a class="ng-link" :class="{'ng-ab-on': tab === 'runs'}" @click="tab = 'runs'">runs</a>
        <a class="ng-link" :class="{'ng-ab-on': tab === 'sweep'}" @click="tab = 'sweep'" aria-label="Sweep tab">sweep</a></div>
      <SweepPanel :ed="ed" v-if="tab === 'sweep'" @open-run="reopenId"/>
      <table v-if="tab === 'runs'" class="ng-table ng-runs-table">
        <tr><th></th><th>time</th><th>status</th><th>duration</th><th>key metrics</th><th></th></tr>
        <tr v-for="run in runs" :key="run.id" :data-run="run.id" class="ng-run-row">
          <td><input type="checkbox" :checked="picked.includes(run.id)" @change="pick(run.id, $event.target.checked)"
                     :aria-label="'pick run ' + run.id"></td>
          <td :title="run.id + ' · ' + run.source">{{ when(run) }}<span v-if="all" class="ng-dim"> {{ run.graph }}</span></td>
          <td :class="run.status === 'ok' ? 'ng-ok' : 'ng-fail'">{{ run.status }}</td>
          <td>{{ seconds(run.seconds) }}</td>
          <td class="ng-runs-metrics"><div v-for="m in keyMetrics(run)" :key="m">{{ m }}</div></td>
          <td class="ng-runs-actions"><a class="ng-link" @click="reopen(run)" data-role="run-open">open</a>
            <a class="ng-link" @click="remove(run)" data-role="run-delete">delete</a></td>
        </tr>
        <tr v-if="!runs.length"><td colspan="6" class="ng-dim">No runs recorded yet.</td></tr>
      </table>
      <div class="ng-dim ng-runs-foot">{{ folder }} · {{ size }} (oldest runs go first past the cap)</div>
    </div>
    <CompareView v-if="compare" :data="compare" :image-url="imageUrl" @close="compare = null"/>
  </span>`,
};
