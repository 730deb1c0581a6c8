// The dialogs: open a graph from the library, save to the library, a node's error with its traceback, an
// enlarged preview image.
export const Dialogs = {
  name: "Dialogs",
  props: ["ed"],
  template: `
  <div>
    <q-dialog v-model="ed.dialogs.open">
      <q-card dark class="ng-dialog">
        <q-card-section class="ng-dialog-title">Open a graph</q-card-section>
        <q-card-section class="ng-dialog-body">
          <div class="ng-dim">Library</div>
          <div v-for="g in ed.library" :key="g.path" class="ng-lib-item" @click="ed.openGraph('library', g.path)">
            <b>{{ g.name }}</b> <span class="ng-dim">{{ g.path }} · {{ g.nodes }} nodes</span>
            <div class="ng-caption">{{ g.description }}</div>
          </div>
          <div v-if="!ed.library.length" class="ng-empty">The library is empty.</div>
        </q-card-section>
        <q-card-actions align="right">
          <q-btn flat no-caps label="Upload a file…" @click="ed.pickUpload"/>
          <q-btn flat no-caps label="Cancel" v-close-popup/>
        </q-card-actions>
      </q-card>
    </q-dialog>
    <q-dialog v-model="ed.dialogs.save">
      <q-card dark class="ng-dialog">
        <q-card-section class="ng-dialog-title">Save to the library</q-card-section>
        <q-card-section>
          <div v-if="ed.collection === 'examples'" class="ng-dim">Examples stay as they are: this saves a copy.</div>
          <div class="ng-dim ng-lib-dir">{{ ed.libraryDir }}</div>
          <q-input dark dense autofocus v-model="ed.saveName" label="Name" suffix=".json" aria-label="File name"
                   @keydown.enter="ed.saveNamed(ed.saveName)"/>
          <div class="ng-dim">The graph takes this name (the library, downloads and output folders use it).</div>
        </q-card-section>
        <q-card-actions align="right">
          <q-btn flat no-caps label="Cancel" v-close-popup/>
          <q-btn unelevated no-caps color="primary" label="Save" @click="ed.saveNamed(ed.saveName)" aria-label="Save graph"/>
        </q-card-actions>
      </q-card>
    </q-dialog>
    <q-dialog :model-value="!!ed.dialogs.error" @update:model-value="v => !v && (ed.dialogs.error = null)">
      <q-card dark class="ng-dialog ng-dialog-wide" v-if="ed.dialogs.error">
        <q-card-section class="ng-dialog-title">Error in {{ ed.dialogs.error.id }}<span v-if="ed.dialogs.error.field">.{{ ed.dialogs.error.field }}</span></q-card-section>
        <q-card-section><div class="ng-errline">{{ ed.dialogs.error.message }}</div>
          <pre v-if="ed.dialogs.error.traceback" class="ng-trace">{{ ed.dialogs.error.traceback }}</pre></q-card-section>
        <q-card-actions align="right"><q-btn flat no-caps label="Close" v-close-popup/></q-card-actions>
      </q-card>
    </q-dialog>
    <q-dialog :model-value="!!ed.dialogs.image" @update:model-value="v => !v && (ed.dialogs.image = null)">
      <q-card dark class="ng-dialog ng-dialog-wide" v-if="ed.dialogs.image && ed.previews[ed.dialogs.image.id]">
        <q-card-section class="ng-dialog-title">{{ ed.dialogs.image.id }}.{{ ed.dialogs.image.port }}</q-card-section>
        <img :src="(ed.previews[ed.dialogs.image.id][ed.dialogs.image.port] || {}).url" class="ng-zoomed">
      </q-card>
    </q-dialog>
  </div>`,
};

export const dialogsMixin = {
  data() {
    return { dialogs: { open: false, save: false, error: null, image: null, details: false } };
  },
  methods: {
    showError(id) { this.dialogs.error = { id, ...(this.run[id] || {}) }; },
    zoomImage(id, port) { this.dialogs.image = { id, port }; },
  },
};
