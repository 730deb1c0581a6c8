// The editor page: it composes the modules that each do one job and lays out the page.
//   docsync.js   the document, undo history, autosave        viewport.js  fit, zoom, level of detail
//   editing.js   params, links, clipboard, keyboard           files.js     open, save, download
//   running.js   runs and events (reducer: runstate.js)       view3d.js    the 3D view
//   tips.js      tooltips and toasts                          menus.js     context menus
//   toolbar.js, dialogs.js, sidepanel.js: parts of the page   nodeapi.js   what nodes and widgets may use
//   groups.js    groups (subgraphs), bypass and mute          runs.js      run history, compare, sweep (toolbar)
//   export.js    File > Export as Python (files.js)
import { markRaw, nextTick } from "vue";
import { VueFlow, useVueFlow } from "@vue-flow/core";
import { MiniMap } from "@vue-flow/minimap";
import { Api, EventSocket } from "nodegraph-ui/api.js";
import { Catalogue, downstream } from "nodegraph-ui/model.js";
import { FLOW_ID, GraphNode, categoryColor } from "nodegraph-ui/node.js";
import { Palette, QuickAdd } from "nodegraph-ui/palette.js";
import { docSyncMixin } from "nodegraph-ui/docsync.js";
import { viewportMixin } from "nodegraph-ui/viewport.js";
import { editingMixin } from "nodegraph-ui/editing.js";
import { filesMixin } from "nodegraph-ui/files.js";
import { runningMixin } from "nodegraph-ui/running.js";
import { staleBehindErrors } from "nodegraph-ui/runstate.js";
import { view3dMixin } from "nodegraph-ui/view3d.js";
import { tipsMixin } from "nodegraph-ui/tips.js";
import { ContextMenu, menusMixin } from "nodegraph-ui/menus.js";
import { annotationsMixin, Annotations } from "nodegraph-ui/annotations.js";
import { tidyMixin } from "nodegraph-ui/tidy.js";
import { RoutedEdge, rerouteMixin } from "nodegraph-ui/reroute.js";
import { Toolbar } from "nodegraph-ui/toolbar.js";
import { Dialogs, dialogsMixin } from "nodegraph-ui/dialogs.js";
import { SidePanel } from "nodegraph-ui/sidepanel.js";
import { nodeApi } from "nodegraph-ui/nodeapi.js";
import { GroupBar, GroupDialog, GroupsMixin } from "nodegraph-ui/groups.js";

export default {
  name: "NodegraphEditor",
  components: { VueFlow, MiniMap, Palette, QuickAdd, Toolbar, Dialogs, SidePanel, ContextMenu, Annotations, GroupBar, GroupDialog },
  mixins: [docSyncMixin, viewportMixin, editingMixin, filesMixin, runningMixin, view3dMixin, tipsMixin,
           menusMixin, annotationsMixin, rerouteMixin, tidyMixin, dialogsMixin, GroupsMixin],
  props: { token: String },
  setup() {
    const flow = useVueFlow(FLOW_ID);
    return { flow, flowId: FLOW_ID, nodeTypes: { ng: markRaw(GraphNode) }, edgeTypes: { routed: markRaw(RoutedEdge) } };
  },
  provide() {
    return { ng: nodeApi(this) };
  },
  data() {
    return { ready: false, loadError: "", catalogue: null, api: null, showMap: true, showDescription: false };
  },
  computed: {
    title() { return (this.meta.name || "untitled") + (this.dirty ? " •" : ""); },
    selectedId() { return this.selection.length === 1 ? this.selection[0] : null; },
    selectedSpec() {
      const n = this.selectedId && this.flow.findNode(this.selectedId);
      return n ? this.catalogue.spec(n.data.type) : null;
    },
    quickLink() {
      // the port a link was dragged from when it was dropped on the empty canvas
      const l = this.quick && this.quick.link;
      if (!l) return null;
      const n = this.flow.findNode(l.node);
      const spec = n && this.catalogue.spec(n.data.type);
      const port = spec && (l.side === "source" ? spec.outputs : spec.inputs).find((p) => p.name === l.port);
      return port ? { side: l.side, type: port.type } : null;
    },
    staleBehind() {
      // nodes downstream of a failed one: what they show is from an earlier run
      // (failed nodes are known by flat path ids: one inside a group marks its instance here as failed)
      const now = staleBehindErrors(this.runState, (ids) => {
        const here = ids.map((id) => this.localId(id)).filter(Boolean);
        const out = downstream(here, this.flow.edges.value);
        for (const id of here) out.delete(id);
        return out;
      });
      const last = this.lastStale;
      // the same set object while its members are the same: nodes reading it are not re-evaluated per event
      if (last && last.size === now.size && [...now].every((id) => last.has(id))) return last;
      return (this.lastStale = now);
    },
  },
  created() {
    this.api = markRaw(new Api(this.token));
  },
  async mounted() {
    await nextTick();  // window.path_prefix is set after the first tick
    this.api.prefix = window.path_prefix || "";
    try {
      const [cat, info, examples] = await Promise.all([
        this.api.get("/catalogue"), this.api.get("/document"), this.api.get("/graphs?collection=examples")]);
      this.catalogue = markRaw(new Catalogue(cat));
      this.examples = examples.graphs;
      this.ready = true;
      await nextTick();
      this.applyDoc(info.doc, { fit: true, resetHistory: true, keepRun: true });
      this.path = info.path;
      this.collection = info.collection;
      this.libraryDir = info.library_dir || "";
      this.dirty = info.dirty;
      this.setProblems(info.problems);
      this.loadLibraryGroups();
      if (info.startup_problems && info.startup_problems.length)
        this.notify(`Could not open the start graph: ${info.startup_problems[0].message}`, "error");
    } catch (e) {
      this.loadError = `Cannot reach the nodegraph server: ${e.message}`;
      return;
    }
    this.socket = markRaw(new EventSocket(this.api, (e) => this.onEvent(e), (s) => (this.connected = s === "open")));
    this.keyHandler = (e) => this.onKey(e);
    window.addEventListener("keydown", this.keyHandler);
    this.unloadHandler = (e) => {
      if (this.dirty) { e.preventDefault(); e.returnValue = ""; }
    };
    window.addEventListener("beforeunload", this.unloadHandler);
    this.hideHandler = () => { if (this.syncTimer) this.api.beacon("/document", { doc: this.doc(), dirty: this.dirty }); };
    window.addEventListener("pagehide", this.hideHandler);
    window.nodegraphEditor = this;  // for tests and the console
  },
  unmounted() {
    if (this.socket) this.socket.close();
    window.removeEventListener("keydown", this.keyHandler);
    window.removeEventListener("beforeunload", this.unloadHandler);
    window.removeEventListener("pagehide", this.hideHandler);
  },
  methods: {
    color: categoryColor,
    closeOverlays() {
      if (this.tip && this.tip.pinned) this.tip = null;
      this.menu = null;
    },
  },
  template: `
  <div class="ng-app" @click="closeOverlays">
    <Toolbar :ed="this"/>
    <input ref="upload" type="file" accept=".json,application/json" style="display:none" @change="upload">
    <div v-if="showDescription && meta.description" class="ng-description" data-role="description-text">{{ meta.description }}</div>
    <div v-if="loadError" class="ng-fatal">{{ loadError }}</div>
    <div class="ng-main" v-if="ready">
      <Palette :catalogue="catalogue" :key="groupsTick" @add="t => addNode(t)"/>
      <div class="ng-canvas" ref="canvas" @drop="onDrop" @dragover.prevent @dblclick="onDblClick" @mousemove="onPointer">
        <VueFlow :id="flowId" :node-types="nodeTypes" :edge-types="edgeTypes" :min-zoom="0.1" :max-zoom="2.5" :zoom-on-double-click="false"
                 :delete-key-code="null" :connect-on-click="false" :is-valid-connection="validConnection"
                 :selection-key-code="'Shift'" :multi-selection-key-code="['Control', 'Meta']"
                 :snap-to-grid="false" :default-edge-options="{type: 'default'}" :elevate-edges-on-select="true"
                 @connect="onConnect" @connect-start="onConnectStart" @connect-end="onConnectEnd" @node-drag-stop="onDragStop" @node-double-click="e => enterGroup(e.node.id)"
                 @pane-context-menu="onPaneMenu" @node-context-menu="onNodeMenu" @edge-context-menu="onEdgeMenu"
                 @selection-change="onSelection" @nodes-initialized="afterLayout" @move-end="onMoveEnd" @nodes-change="onNodesChange" class="ng-flow">
          <template #zoom-pane><Annotations :ed="this"/></template>
          <MiniMap v-if="showMap" pannable zoomable :node-color="n => color(catalogue.spec(n.data.type)?.category || '?')"
                   mask-color="rgba(10,12,18,0.7)" class="ng-minimap"/>
        </VueFlow>
        <GroupBar :ed="this"/>
        <GroupDialog v-if="groupDialog" :state="groupDialog" @done="finishGroupDialog" @cancel="groupDialog = null"/>
        <div v-if="hint" class="ng-hint" role="alert">✕ {{ hint }}</div>
        <QuickAdd v-if="quick" :catalogue="catalogue" :x="quick.x" :y="quick.y" :link="quickLink" @add="quickAdd" @close="quick = null"/>
        <ContextMenu v-if="menu" :menu="menu" @close="menu = null"/>
        <div v-if="graphProblems.length" class="ng-banner">
          <div v-for="p in graphProblems" :key="p.message">⚠ <b v-if="p.node">{{ p.node }}<span v-if="p.field">.{{ p.field }}</span>:</b> {{ p.message }}</div>
        </div>
        <div v-if="!flow.nodes.value.length" class="ng-empty-canvas">
          <div>Drag a node from the palette, or double-click the canvas to search.</div>
          <div class="ng-dim">Or open one of the Examples.</div>
        </div>
      </div>
      <SidePanel v-show="side" ref="side" :ed="this"/>
    </div>
    <footer class="ng-status">
      <span :class="connected ? 'ng-ok' : 'ng-fail'">{{ connected ? '● live' : '○ reconnecting' }}</span>
      <span>{{ flow.nodes.value.length }} nodes · {{ flow.edges.value.length }} links</span>
      <span v-if="selection.length" data-role="selected">{{ selection.length }} selected</span>
      <span v-if="outDir" class="ng-outdir" data-role="out-dir" :title="'runs of this graph write here: ' + outDir">output folder
        <code>{{ outDir }}</code> <a class="ng-link" @click="copyPath(outDir)" aria-label="Copy the output folder">copy</a></span>
      <span class="ng-spacer"></span>
      <span class="ng-dim">double-click: add node · drag output → input: link · right-click: menu · Shift-drag: select · Del · Ctrl+Z/C/X/V/D</span>
    </footer>
    <div v-if="tip" class="ng-tip" :style="{left: tip.x + 'px', top: tip.y + 'px'}" v-html="tip.html" role="tooltip"></div>
    <div v-if="toast" class="ng-toast" :class="'ng-toast-' + toast.kind" role="status">{{ toast.message }}</div>
    <Dialogs :ed="this"/>
  </div>`,
};
