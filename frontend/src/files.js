// Files: new, open from the library or the examples, upload, save (examples are read only: saved as a copy),
// save as (which names the graph), download, export as a Python script, and the file lists the file pickers show.
import { exportPython } from "nodegraph-ui/export.js";

export const filesMixin = {
  data() {
    return { path: null, collection: null, libraryDir: "", library: [], examples: [], saveName: "" };
  },
  created() {
    this.fileCache = {};
  },
  computed: {
    docPlace() {
      if (!this.path) return "not saved yet";
      if (this.collection === "examples") return `the example ${this.path}: read only, Save makes a copy in the library`;
      return this.collection === "library" ? `saved as ${this.libraryDir}/${this.path}` : `opened from ${this.path}`;
    },
  },
  methods: {
    async newGraph() {
      if (!(await this.confirmDiscard())) return;
      const info = await this.api.post("/document/new");
      this.loaded(info);
    },
    loaded(info) {
      this.applyDoc(info.doc, { fit: true, resetHistory: true });
      this.path = info.path;
      this.collection = info.collection;
      this.libraryDir = info.library_dir || "";
      this.dirty = info.dirty;
      this.setProblems(info.problems);
      this.clear3d();
    },
    async openDialog() {
      this.library = (await this.api.get("/graphs?collection=library")).graphs;
      this.dialogs.open = true;
    },
    async openGraph(collection, path) {
      if (!(await this.confirmDiscard())) return;
      try {
        this.loaded(await this.api.post("/open", { collection, path }));
        this.dialogs.open = false;
        this.notify(`Opened ${path}`);
      } catch (e) {
        this.notify(`Cannot open ${path}: ${e.message}`, "error");
      }
    },
    pickUpload() { this.$refs.upload.value = ""; this.$refs.upload.click(); },
    async upload(e) {
      const file = e.target.files[0];
      if (!file || !(await this.confirmDiscard())) return;
      try {
        this.loaded(await this.api.post("/upload", { text: await file.text(), filename: file.name }));
        this.dialogs.open = false;
        this.notify(`Opened ${file.name}; save it to keep it in the library`);
      } catch (err) {
        this.notify(`Cannot open ${file.name}: ${err.message}`, "error");
      }
    },
    async save() {
      // Examples are read only: saving one asks for a name in the library (its own name is offered).
      if (!this.path || this.collection !== "library") { this.saveAs(); return; }
      await this.saveNamed(this.path.replace(/\.json$/, ""), false);
    },
    async saveAs() {
      this.saveName = (this.path || this.meta.name || "untitled").replace(/\.json$/, "");
      this.dialogs.save = true;
      try { this.library = (await this.api.get("/graphs?collection=library")).graphs; } catch (e) { /* offline: no overwrite check */ }
    },
    async saveNamed(name, rename = true) {
      name = name.replace(/\.json$/, "").trim();
      if (!name) return;
      const file = name + ".json";
      const isCurrent = this.collection === "library" && this.path === file;
      if (!isCurrent && this.library.some((g) => g.path === file) &&
          !window.confirm(`${file} is already in the library. Replace it?`)) return;
      // Saving under a name names the graph: the library lists it, downloads and output folders use it.
      if (rename && this.meta.name !== name) { this.meta = { ...this.meta, name }; this.commit(); }
      await this.syncNow();
      try {
        const res = await this.api.post("/save", { name });
        this.path = res.path;
        this.collection = res.collection;
        this.dirty = false;
        this.dialogs.save = false;
        this.notify(`Saved ${res.path} in the library`);
      } catch (e) {
        this.notify(`Not saved: ${e.message}`, "error");
      }
    },
    rename(name) {
      if (name && name !== this.meta.name) { this.meta = { ...this.meta, name }; this.commit(); }
    },
    async download() {
      await this.syncNow();
      const a = document.createElement("a");
      a.href = this.api.url("/download") + (this.token ? `?token=${encodeURIComponent(this.token)}` : "");
      a.download = `${this.meta.name || "graph"}.json`;
      document.body.appendChild(a);
      a.click();
      a.remove();
    },
    async exportPython() {
      await this.syncNow();
      try { await exportPython(this.api, this.meta.name); } catch (e) { this.notify(`Not exported: ${e.message}`, "error"); }
    },
    fileUrl(path) {
      // a file a run wrote, served by /api/output (only from the output folders)
      return this.api.url(`/output?path=${encodeURIComponent(path)}`) + (this.token ? `&token=${encodeURIComponent(this.token)}` : "");
    },
    async listFiles(exts) {
      const key = exts.join(",");
      const hit = this.fileCache[key];
      if (hit && performance.now() - hit.t < 10000) return hit.files;
      const res = await this.api.get(`/files?ext=${encodeURIComponent(key)}`);
      this.fileCache[key] = { t: performance.now(), files: res.files };
      return res.files;
    },
  },
};
