// Right-click context menus for the canvas, a node and a link. Entries are built from a list of providers, so
// other modules add theirs (groups and bypass register with `addMenuItems`) without touching this one.
// A provider is (kind, target, ed) -> [{label, action, key?, hint?}] where kind is "canvas", "node" or "link".

const PROVIDERS = [];

/** Register a provider of context-menu entries (see the header). */
export function addMenuItems(provider) {
  PROVIDERS.push(provider);
}

function builtIn(kind, t, ed) {
  if (kind === "canvas") return [
    { label: "Add node…", key: "add", action: () => ed.openQuick(t.clientX, t.clientY) },
    { label: "Paste here", key: "paste", hint: "Ctrl+V", action: () => ed.paste(t.at) },
    { label: "Add comment", key: "comment", action: () => ed.addNote("comment", t.at) },
    { label: "Add frame", key: "frame", action: () => ed.addNote("frame", t.at) },
    { label: "Select all", key: "select-all", hint: "Ctrl+A", action: () => ed.selectAll() },
    { label: "Tidy layout", key: "tidy", action: () => ed.tidy() },
    { label: "Fit view", key: "fit", hint: "F", action: () => ed.fit() },
  ];
  if (kind === "node") {
    const ids = t.ids;
    const one = ids.length === 1;
    return [
      { label: "Run to here", key: "run-to", action: () => ed.runTo(ids) },
      ...(one ? [{ label: "Rename (label)…", key: "rename", action: () => ed.promptLabel(ids[0]) }] : []),
      { label: "Duplicate", key: "duplicate", hint: "Ctrl+D", action: () => ed.duplicate(ids) },
      { label: "Copy", key: "copy", hint: "Ctrl+C", action: () => ed.copy(ids) },
      { label: "Disconnect", key: "disconnect", action: () => ed.disconnect(ids) },
      { label: "Frame these nodes", key: "frame", action: () => ed.addNote("frame", t.at, ids) },
      { label: ids.length > 1 ? `Delete ${ids.length} nodes` : "Delete", key: "delete", hint: "Del", action: () => ed.deleteNodes(ids) },
    ];
  }
  if (kind === "link") return [
    { label: "Delete link", key: "delete-link", action: () => ed.deleteNodes([], [t.edge]) },
    { label: "Add reroute point", key: "reroute", action: () => ed.addReroute(t.edge, t.at) },
  ];
  return [];
}

/** Every entry for a menu on `kind` at `target`. */
export function menuItems(kind, target, ed) {
  const items = builtIn(kind, target, ed);
  for (const p of PROVIDERS) {
    try { items.push(...(p(kind, target, ed) || [])); } catch (e) { console.warn("menu provider failed", e); }
  }
  return items;
}

export const ContextMenu = {
  name: "ContextMenu",
  props: ["menu"],
  emits: ["close"],
  methods: {
    pick(item) { this.$emit("close"); item.action(); },
  },
  template: `
  <div class="ng-ctx" role="menu" :style="{left: menu.x + 'px', top: menu.y + 'px'}" @mousedown.stop @contextmenu.prevent.stop>
    <div v-for="item in menu.items" :key="item.key || item.label" class="ng-ctx-item" role="menuitem"
         :data-key="item.key" @click.stop="pick(item)">
      <span>{{ item.label }}</span><span v-if="item.hint" class="ng-dim">{{ item.hint }}</span>
    </div>
  </div>`,
};

export const menusMixin = {
  data() {
    return { menu: null };
  },
  methods: {
    openMenu(ev, kind, target = {}) {
      ev.preventDefault();
      const box = this.$refs.canvas.getBoundingClientRect();
      const at = this.flow.screenToFlowCoordinate({ x: ev.clientX, y: ev.clientY });
      let t = { ...target, at, clientX: ev.clientX, clientY: ev.clientY };
      if (kind === "node") {  // a node of a selection acts on the selection
        const sel = this.selectedIds();
        t.ids = sel.includes(target.id) ? sel : [target.id];
      }
      this.menu = { x: ev.clientX - box.left, y: ev.clientY - box.top, kind, items: menuItems(kind, t, this) };
    },
    onPaneMenu(ev) { this.openMenu(ev, "canvas"); },
    onNodeMenu({ event, node }) { this.openMenu(event, "node", { id: node.id }); },
    onEdgeMenu({ event, edge }) { this.openMenu(event, "link", { edge }); },
    disconnect(ids) {
      const set = new Set(ids);
      const edges = this.flow.edges.value.filter((e) => set.has(e.source) || set.has(e.target));
      if (edges.length) this.deleteNodes([], edges);
    },
    promptLabel(id) {
      const node = this.flow.findNode(id);
      if (!node) return;
      const label = window.prompt(`Label for ${id} (empty: show the type)`, node.data.ui.label || "");
      if (label !== null) this.setUi(id, { label: label.trim() });
    },
  },
};
