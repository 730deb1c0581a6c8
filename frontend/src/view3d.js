// The 3D view in the side panel: one Viewer3D (three.js, loaded on the first mesh or point cloud preview),
// which previews it shows, and its size (the panel, or enlarged over most of the window).
import { markRaw, nextTick } from "vue";

export const view3dMixin = {
  data() {
    return { side: false, has3d: false, view3dError: "", view3dKeys: [], big3d: false };
  },
  unmounted() {
    if (this.viewer) this.viewer.dispose();
  },
  methods: {
    view3dBox() {
      return this.$refs.side && this.$refs.side.$refs.view3d;
    },
    async show3d(key, e) {
      this.has3d = true;
      if (!this.side) { this.side = true; await nextTick(); }
      if (!this.viewerReady) {  // one viewer, however many previews arrive while it loads
        this.viewerReady = import("nodegraph-ui/viewer3d.js").then(({ Viewer3D }) => {
          this.viewer = markRaw(new Viewer3D(this.view3dBox()));
        }).catch((err) => { this.view3dError = `3D view unavailable: ${err.message}`; });
      }
      await this.viewerReady;
      if (this.viewer) this.viewer.show(key, e);
      if (!this.view3dKeys.includes(key)) this.view3dKeys = [...this.view3dKeys, key];
    },
    focus3d(id) {
      this.side = true;
      if (this.viewer) this.viewer.only(this.view3dKeys.filter((k) => k.startsWith(id + ".")));
    },
    showAll3d() { if (this.viewer) this.viewer.only(this.view3dKeys); },
    toggleBig3d() { this.side = true; this.big3d = !this.big3d; },
    clear3d() {
      if (this.viewer) this.viewer.clear();
      this.has3d = false;
    },
  },
};
