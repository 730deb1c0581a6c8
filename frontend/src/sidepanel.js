// The side panel: the 3D view (enlargeable) and the inspector of the selected node.
export const SidePanel = {
  name: "SidePanel",
  props: ["ed"],
  template: `
      <aside class="ng-side" :class="{'ng-side-big': ed.big3d}">
        <div class="ng-side-head">3D view <span class="ng-spacer"></span>
          <a v-if="ed.view3dKeys.length > 1" @click="ed.showAll3d" class="ng-link">show all</a>
          <button class="ng-icon" @click="ed.toggleBig3d" :aria-label="ed.big3d ? 'Shrink the 3D view' : 'Enlarge the 3D view'"
                  :title="ed.big3d ? 'shrink' : 'enlarge'">{{ ed.big3d ? '⤡' : '⤢' }}</button></div>
        <div class="ng-view3d" ref="view3d">
          <div v-if="!ed.has3d" class="ng-empty">Meshes and point clouds appear here when a node previews them.</div>
          <div v-if="ed.view3dError" class="ng-empty">{{ ed.view3dError }}</div>
        </div>
        <div class="ng-side-head">Inspector</div>
        <div class="ng-inspector">
          <template v-if="ed.selectedSpec">
            <div class="ng-insp-title">{{ ed.selectedSpec.name }} <span class="ng-dim">{{ ed.selectedId }}</span></div>
            <div class="ng-insp-doc">{{ ed.selectedSpec.doc }}</div>
            <div v-for="o in ed.selectedSpec.outputs" :key="o.name" class="ng-insp-port">
              <b>{{ o.name }}</b> <span :style="{color: ed.catalogue.color(o.type)}">{{ o.type }}</span>
              <div v-if="ed.portSummary(ed.selectedId, o, 'out')">
                <code v-for="l in ed.summaryLines(ed.portSummary(ed.selectedId, o, 'out'))" :key="l" class="ng-code-line">{{ l }}</code>
              </div>
            </div>
            <div v-if="ed.runOf(ed.selectedId).state === 'error'" class="ng-errline">{{ ed.runOf(ed.selectedId).message }}
              <a class="ng-link" @click="ed.showError(ed.flatId(ed.selectedId))">details</a></div>
          </template>
          <template v-else>
            <div v-if="ed.meta.description" class="ng-insp-doc" data-role="graph-description"><b>{{ ed.meta.name }}</b><br>{{ ed.meta.description }}</div>
            <div class="ng-empty">Select one node to see its documentation and outputs.</div>
          </template>
        </div>
      </aside>`,
};
