// The narrow interface nodes and param widgets get (provided as `ng`), instead of the whole editor: what a
// node shows (catalogue, zoom, its run state, previews, problems) and what it may ask for. Reads go through
// getters on the editor's reactive state, so a node re-renders when what it reads changes.
import { markRaw } from "vue";

/** The interface for nodes and widgets, over the editor component `ed`. */
export function nodeApi(ed) {
  return markRaw({
    get catalogue() { return ed.catalogue; },
    get zoom() { return ed.zoom; },
    // a node's id on the canvas; run states, previews and problems arrive under the engine's flat path ids
    // ("view1/raster" inside a group): these read them through the group-aware functions (groups.js)
    run(id) { return ed.runOf(id); },
    previews(id) { return ed.previewsOf(id); },
    problems(id) { return ed.problemsOf(id); },
    flatId: (id) => ed.flatId(id),
    reroutes(edgeId) { return ed.reroutes.filter((r) => r.link === edgeId); },
    stale(id) { return ed.staleBehind.has(id); },   // downstream of a failed node: its preview is an old one
    setParam: (id, name, value) => ed.setParam(id, name, value),
    setUi: (id, patch) => ed.setUi(id, patch),
    runTo: (id) => ed.runTo(id),
    toggleMode: (mode, ids) => ed.toggleMode(mode, ids),
    rename: (id) => ed.promptLabel(id),
    openMenu: (ev, kind, target) => ed.openMenu(ev, kind, target),
    showDoc: (ev, id) => ed.showDoc(ev, id),
    showPort: (ev, id, port, dir) => ed.showPort(ev, id, port, dir),
    pinPort: (ev, id, port) => ed.pinPort(ev, id, port),
    hideTip: () => ed.hideTip(),
    showError: (id) => ed.showError(id),
    zoomImage: (id, port) => ed.zoomImage(id, port),
    relPath: (path) => ed.relPath(path),
    copyPath: (path) => ed.copyPath(path),
    fileUrl: (path) => ed.fileUrl(path),
    focus3d: (id) => ed.focus3d(id),
    listFiles: (exts) => ed.listFiles(exts),
  });
}
