// Frames (a titled, coloured box behind a set of nodes), free comments on the canvas, and reroute points on
// links. All live in the graph's `ui` section (`ui.frames`, `ui.comments`, `ui.reroutes`), which the engine
// ignores and nodegraph/graph.py keeps through load and save. Drawn in the canvas's zoomed pane, in flow
// coordinates; dragging a frame's title moves the frame and the nodes inside it.

const FRAME_COLORS = ["#5c7cfa", "#20c997", "#f59f00", "#e64980", "#7950f2", "#868e96"];

function nextId(list, stem) {
  const taken = new Set(list.map((a) => a.id));
  let i = 1;
  while (taken.has(`${stem}${i}`)) i += 1;
  return `${stem}${i}`;
}

export const annotationsMixin = {
  computed: {
    frames() { return (this.meta.ui && this.meta.ui.frames) || []; },
    comments() { return (this.meta.ui && this.meta.ui.comments) || []; },
    reroutes() { return (this.meta.ui && this.meta.ui.reroutes) || []; },
  },
  methods: {
    setMetaUi(key, list) {
      const ui = { ...(this.meta.ui || {}) };
      if (list && list.length) ui[key] = list; else delete ui[key];
      this.meta = { ...this.meta, ui };
      this.commit(`ui.${key}`);
    },
    addNote(kind, at, ids = null) {
      if (kind === "comment") {
        const id = nextId(this.comments, "comment");
        this.setMetaUi("comments", [...this.comments, { id, text: "comment", pos: [Math.round(at.x), Math.round(at.y)] }]);
        return id;
      }
      // a frame around the selected nodes, else an empty one at `at`
      const sel = ids ? this.flow.nodes.value.filter((n) => ids.includes(n.id)) : this.flow.getSelectedNodes.value;
      let box = { x: at.x, y: at.y, w: 400, h: 260 };
      if (sel.length) {
        const xs = sel.map((n) => n.position.x), ys = sel.map((n) => n.position.y);
        const x1 = Math.max(...sel.map((n) => n.position.x + ((n.dimensions && n.dimensions.width) || 240)));
        const y1 = Math.max(...sel.map((n) => n.position.y + ((n.dimensions && n.dimensions.height) || 120)));
        box = { x: Math.min(...xs) - 20, y: Math.min(...ys) - 50, w: x1 - Math.min(...xs) + 40, h: y1 - Math.min(...ys) + 70 };
      }
      const id = nextId(this.frames, "frame");
      const color = FRAME_COLORS[this.frames.length % FRAME_COLORS.length];
      this.setMetaUi("frames", [...this.frames, { id, title: "frame", color,
        rect: [box.x, box.y, box.w, box.h].map(Math.round) }]);
      return id;
    },
    updateNote(key, id, patch) {
      const list = key === "frames" ? this.frames : key === "comments" ? this.comments : this.reroutes;
      this.setMetaUi(key, list.map((a) => (a.id === id ? { ...a, ...patch } : a)));
    },
    removeNote(key, id) {
      const list = key === "frames" ? this.frames : key === "comments" ? this.comments : this.reroutes;
      this.setMetaUi(key, list.filter((a) => a.id !== id));
    },
    nodesInFrame(f) {
      const [x, y, w, h] = f.rect;
      return this.flow.nodes.value.filter((n) => n.position.x >= x && n.position.y >= y &&
                                                  n.position.x < x + w && n.position.y < y + h);
    },
    dragNote(ev, key, item) {
      // move a frame (with its nodes) or a comment by its title; one history step when the drag ends
      ev.preventDefault();
      ev.stopPropagation();
      const zoom = this.flow.viewport.value.zoom;
      const start = { x: ev.clientX, y: ev.clientY };
      const inside = key === "frames" ? this.nodesInFrame(item).map((n) => [n, { ...n.position }]) : [];
      const from = key === "frames" ? [...item.rect] : [...item.pos];
      const move = (e) => {
        const dx = (e.clientX - start.x) / zoom, dy = (e.clientY - start.y) / zoom;
        if (key === "frames") item.rect = [from[0] + dx, from[1] + dy, from[2], from[3]].map(Math.round);
        else item.pos = [from[0] + dx, from[1] + dy].map(Math.round);
        for (const [n, p] of inside) n.position = { x: p.x + dx, y: p.y + dy };
      };
      const up = () => {
        window.removeEventListener("pointermove", move);
        window.removeEventListener("pointerup", up);
        this.meta = { ...this.meta, ui: { ...this.meta.ui } };
        this.commit();
      };
      window.addEventListener("pointermove", move);
      window.addEventListener("pointerup", up);
    },
    resizeFrame(ev, item) {
      ev.preventDefault();
      ev.stopPropagation();
      const zoom = this.flow.viewport.value.zoom;
      const start = { x: ev.clientX, y: ev.clientY }, from = [...item.rect];
      const move = (e) => {
        item.rect = [from[0], from[1], Math.max(120, from[2] + (e.clientX - start.x) / zoom),
                     Math.max(80, from[3] + (e.clientY - start.y) / zoom)].map(Math.round);
      };
      const up = () => {
        window.removeEventListener("pointermove", move);
        window.removeEventListener("pointerup", up);
        this.commit();
      };
      window.addEventListener("pointermove", move);
      window.addEventListener("pointerup", up);
    },
    addReroute(edge, at) {
      const id = nextId(this.reroutes, "reroute");
      this.setMetaUi("reroutes", [...this.reroutes, { id, link: edge.id, pos: [Math.round(at.x), Math.round(at.y)] }]);
      return id;
    },
  },
};

/** Frames, comments and reroute points, drawn in the zoomed pane (flow coordinates). */
export const Annotations = {
  name: "Annotations",
  props: ["ed"],
  data() {
    return { colors: FRAME_COLORS };
  },
  computed: {
    // points of links drawn on this canvas (a link grouped away into a definition, or deleted, leaves none)
    shownReroutes() {
      const ids = new Set(this.ed.flow.edges.value.map((e) => e.id));
      return this.ed.reroutes.filter((r) => ids.has(r.link));
    },
  },
  methods: {
    promptTitle(f) {
      const t = window.prompt("Frame title", f.title);
      if (t !== null) this.ed.updateNote("frames", f.id, { title: t });
    },
    cycleColor(f) {
      const i = FRAME_COLORS.indexOf(f.color);
      this.ed.updateNote("frames", f.id, { color: FRAME_COLORS[(i + 1) % FRAME_COLORS.length] });
    },
    editText(c, ev) {
      const text = ev.target.innerText.trim();
      if (text !== c.text) this.ed.updateNote("comments", c.id, { text });
    },
    rerouteStyle(r) {
      const e = this.ed.flow.edges.value.find((x) => x.id === r.link);
      return { left: r.pos[0] + "px", top: r.pos[1] + "px", background: e ? e.data.color : "#888" };
    },
  },
  template: `
  <div class="ng-annotations">
    <div v-for="f in ed.frames" :key="f.id" class="ng-frame" :data-frame="f.id"
         :style="{left: f.rect[0] + 'px', top: f.rect[1] + 'px', width: f.rect[2] + 'px', height: f.rect[3] + 'px', '--frame': f.color}">
      <div class="ng-frame-title" @pointerdown="ed.dragNote($event, 'frames', f)" @dblclick.stop="promptTitle(f)">
        <span class="ng-frame-name">{{ f.title }}</span>
        <span class="ng-spacer"></span>
        <button class="ng-icon" title="colour" aria-label="frame colour" @pointerdown.stop @click.stop="cycleColor(f)">●</button>
        <button class="ng-icon" title="remove the frame (keeps its nodes)" aria-label="remove frame" @pointerdown.stop @click.stop="ed.removeNote('frames', f.id)">✕</button>
      </div>
      <div class="ng-frame-resize" @pointerdown="ed.resizeFrame($event, f)"></div>
    </div>
    <div v-for="c in ed.comments" :key="c.id" class="ng-comment" :data-comment="c.id"
         :style="{left: c.pos[0] + 'px', top: c.pos[1] + 'px'}">
      <div class="ng-comment-grip" @pointerdown="ed.dragNote($event, 'comments', c)">
        <span class="ng-spacer"></span>
        <button class="ng-icon" aria-label="remove comment" @pointerdown.stop @click.stop="ed.removeNote('comments', c.id)">✕</button></div>
      <div class="ng-comment-text" contenteditable="true" @blur="editText(c, $event)" @keydown.stop>{{ c.text }}</div>
    </div>
  </div>
  <div class="ng-reroutes">
    <div v-for="r in shownReroutes" :key="r.id" class="ng-reroute" :data-reroute="r.id" :style="rerouteStyle(r)"
         @pointerdown="ed.dragNote($event, 'reroutes', r)" @dblclick.stop="ed.removeNote('reroutes', r.id)" title="reroute point (double-click removes)"></div>
  </div>`,
};
