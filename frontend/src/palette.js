// The palette (every node of the catalogue, grouped by category, type-to-search, drag onto the canvas)
// and the quick-add box that a double-click on the canvas opens.
import { categoryColor } from "nodegraph-ui/node.js";

export const Palette = {
  name: "Palette",
  props: ["catalogue"],
  emits: ["add"],
  data() {
    return { query: "", closed: {} };
  },
  computed: {
    groups() { return this.catalogue.categories(this.query); },
    count() { return this.groups.reduce((n, [, list]) => n + list.length, 0); },
  },
  methods: {
    color: categoryColor,
    drag(e, spec) {
      e.dataTransfer.setData("application/x-nodegraph-type", spec.name);
      e.dataTransfer.effectAllowed = "copy";
    },
    toggle(cat) { this.closed = { ...this.closed, [cat]: !this.closed[cat] }; },
    enter() { if (this.groups.length) this.$emit("add", this.groups[0][1][0].name); },
    firstLine(doc) { return (doc || "").split("\n")[0]; },
  },
  template: `
  <aside class="ng-palette">
    <div class="ng-palette-search">
      <input v-model="query" type="search" placeholder="Search nodes…" aria-label="Search nodes" @keydown.enter="enter">
      <span class="ng-dim">{{ count }}</span>
    </div>
    <div class="ng-palette-list">
      <div v-for="[cat, list] in groups" :key="cat" class="ng-group">
        <div class="ng-group-head" @click="toggle(cat)">
          <i class="ng-dot" :style="{background: color(cat)}"></i>{{ cat }}
          <span class="ng-dim">{{ list.length }}</span><span class="ng-caret">{{ closed[cat] && !query ? '▸' : '▾' }}</span>
        </div>
        <template v-if="!closed[cat] || query">
          <div v-for="spec in list" :key="spec.name" class="ng-palette-item" draggable="true" :data-type="spec.name"
               @dragstart="drag($event, spec)" @dblclick="$emit('add', spec.name)" :title="spec.doc">
            <div class="ng-item-name">{{ spec.name }}</div>
            <div class="ng-item-doc">{{ firstLine(spec.doc) }}</div>
          </div>
        </template>
      </div>
      <div v-if="!groups.length" class="ng-empty">No node matches “{{ query }}”.</div>
    </div>
  </aside>`,
};

export const QuickAdd = {
  name: "QuickAdd",
  props: ["catalogue", "x", "y", "link"],  // link: {side: "source"|"target", type}: only nodes that can take it
  emits: ["add", "close"],
  data() {
    return { query: "", active: 0 };
  },
  computed: {
    results() {
      const l = this.link;
      if (!l) return this.catalogue.search(this.query, 10);
      const fits = l.side === "source"
        ? (n) => n.inputs.some((i) => i.type === l.type || i.type === "Any")
        : (n) => n.outputs.some((o) => o.type === l.type || l.type === "Any");
      return this.catalogue.search(this.query, 10, fits);
    },
  },
  watch: { query() { this.active = 0; } },
  mounted() { this.$nextTick(() => this.$refs.input.focus()); },
  methods: {
    key(e) {
      if (e.key === "ArrowDown") { this.active = Math.min(this.active + 1, this.results.length - 1); e.preventDefault(); }
      else if (e.key === "ArrowUp") { this.active = Math.max(this.active - 1, 0); e.preventDefault(); }
      else if (e.key === "Enter" && this.results[this.active]) this.$emit("add", this.results[this.active].name);
      else if (e.key === "Escape") this.$emit("close");
    },
  },
  template: `
  <div class="ng-quickadd" :style="{left: x + 'px', top: y + 'px'}" @mousedown.stop @dblclick.stop>
    <div v-if="link" class="ng-dim ng-quick-for">nodes that {{ link.side === 'source' ? 'take' : 'give' }} {{ link.type }}</div>
    <input ref="input" v-model="query" placeholder="Add a node…" aria-label="Add a node" @keydown="key"
           @blur="setTimeout(() => $emit('close'), 150)">
    <div v-for="(spec, i) in results" :key="spec.name" class="ng-quick-item" :class="{active: i === active}"
         @mousedown.prevent="$emit('add', spec.name)" @mouseenter="active = i">
      <span>{{ spec.name }}</span><span class="ng-dim">{{ spec.category }}</span>
    </div>
  </div>`,
  setup() { return { setTimeout: (f, t) => window.setTimeout(f, t) }; },
};
