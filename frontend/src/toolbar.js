// The toolbar: File and Examples menus, edit buttons, the graph's name and where it is saved, the run's
// status and Run / Stop. It reads and calls the editor it is given (`ed`); its layout never wraps: a long
// status is cut with an ellipsis (the whole text in its tooltip) and the buttons keep their size. The Runs
// button (runs.js) opens the run history, Compare and sweeps.
import { RunsPanel } from "nodegraph-ui/runs.js";

export const Toolbar = {
  name: "Toolbar",
  components: { RunsPanel },
  props: ["ed"],
  template: `
    <header class="ng-toolbar">
      <div class="ng-logo">◆ nodegraph</div>
      <q-btn flat dense no-caps label="File" icon-right="arrow_drop_down" class="ng-tb" aria-label="File">
        <q-menu dark class="ng-menu">
          <q-list dense style="min-width: 200px">
            <q-item clickable v-close-popup @click="ed.newGraph"><q-item-section>New</q-item-section></q-item>
            <q-item clickable v-close-popup @click="ed.openDialog"><q-item-section>Open…</q-item-section></q-item>
            <q-item clickable v-close-popup @click="ed.pickUpload"><q-item-section>Upload a graph file…</q-item-section></q-item>
            <q-separator dark/>
            <q-item clickable v-close-popup @click="ed.save"><q-item-section>Save</q-item-section><q-item-section side>Ctrl+S</q-item-section></q-item>
            <q-item clickable v-close-popup @click="ed.saveAs"><q-item-section>Save as…</q-item-section></q-item>
            <q-item clickable v-close-popup @click="ed.download"><q-item-section>Download .json</q-item-section></q-item>
            <q-item clickable v-close-popup @click="ed.exportPython"><q-item-section>Export as Python</q-item-section></q-item>
          </q-list>
        </q-menu>
      </q-btn>
      <q-btn flat dense no-caps label="Examples" icon-right="arrow_drop_down" class="ng-tb" aria-label="Examples">
        <q-menu dark class="ng-menu">
          <q-list dense style="max-width: 460px">
            <q-item v-for="g in ed.examples" :key="g.path" clickable v-close-popup @click="ed.openGraph('examples', g.path)" class="ng-example">
              <q-item-section>
                <q-item-label>{{ g.name }}</q-item-label>
                <q-item-label caption class="ng-caption">{{ g.description }}</q-item-label>
              </q-item-section>
            </q-item>
            <q-item v-if="!ed.examples.length"><q-item-section class="ng-dim">no example graphs found</q-item-section></q-item>
          </q-list>
        </q-menu>
      </q-btn>
      <q-separator vertical dark inset class="q-mx-xs"/>
      <q-btn flat dense round icon="undo" :disable="!ed.canUndo" @click="ed.undo" class="ng-tb" aria-label="Undo"><q-tooltip>Undo (Ctrl+Z)</q-tooltip></q-btn>
      <q-btn flat dense round icon="redo" :disable="!ed.canRedo" @click="ed.redo" class="ng-tb" aria-label="Redo"><q-tooltip>Redo (Ctrl+Shift+Z)</q-tooltip></q-btn>
      <q-btn flat dense round icon="content_copy" @click="ed.copy()" class="ng-tb" aria-label="Copy"><q-tooltip>Copy (Ctrl+C)</q-tooltip></q-btn>
      <q-btn flat dense round icon="content_paste" @click="ed.paste(null)" class="ng-tb" aria-label="Paste"><q-tooltip>Paste (Ctrl+V)</q-tooltip></q-btn>
      <q-btn flat dense round icon="delete_outline" @click="ed.deleteSelection" class="ng-tb" aria-label="Delete"><q-tooltip>Delete (Del)</q-tooltip></q-btn>
      <q-btn flat dense round icon="fit_screen" @click="ed.fit" class="ng-tb" aria-label="Fit view"><q-tooltip>Fit view (F)</q-tooltip></q-btn>
      <q-btn flat dense round icon="account_tree" @click="ed.tidy" class="ng-tb" aria-label="Tidy layout"><q-tooltip>Tidy: arrange left to right by dependency</q-tooltip></q-btn>
      <div class="ng-docname" :title="ed.docPlace">
        <input class="ng-name-input" :value="ed.meta.name" aria-label="Graph name" @change="ed.rename($event.target.value)">
        <span v-if="ed.dirty" class="ng-dirty" title="unsaved changes (autosaved in the workspace)">●</span>
        <span class="ng-dim ng-path" data-role="doc-path">{{ ed.collection === 'examples' ? 'example · ' + ed.path : (ed.path || 'not saved') }}</span>
        <span v-if="ed.meta.description" class="ng-desc-btn" data-role="description" :title="ed.meta.description"
              @click="ed.showDescription = !ed.showDescription" aria-label="Graph description">i</span>
      </div>
      <div class="ng-spacer"></div>
      <span class="ng-runinfo" :class="{'ng-ok': ed.runOk === true, 'ng-fail': ed.runOk === false && !ed.running}"
            :data-runs="ed.runsFinished" data-role="run-info" :title="ed.runDetail || ed.runInfo">{{ ed.runInfo }}</span>
      <q-btn v-if="!ed.running" unelevated dense no-caps color="positive" icon="play_arrow" label="Run" class="ng-run" @click="ed.startRun()" aria-label="Run"><q-tooltip>Run the graph (Ctrl+Enter); unchanged nodes come from the cache</q-tooltip></q-btn>
      <q-btn v-if="!ed.running" flat dense no-caps icon="skip_next" label="Run to selected" :disable="!ed.selectedId" @click="ed.runTo(ed.selectedId)" class="ng-tb" aria-label="Run to selected"/>
      <q-btn v-if="ed.running" unelevated dense no-caps color="negative" icon="stop" label="Stop" class="ng-run" @click="ed.stopRun" aria-label="Stop"/>
      <RunsPanel :ed="ed"/>
      <q-btn flat dense round :icon="ed.side ? 'chevron_right' : 'view_in_ar'" @click="ed.side = !ed.side" class="ng-tb" aria-label="Toggle side panel"><q-tooltip>Inspector and 3D view</q-tooltip></q-btn>
    </header>`,
};
