"""The editor in a real browser (Debian's chromium, headless, driven by Playwright): build, run, save, reload.

The tests run in file order on one page, like a user's session. A screenshot lands in test-artifacts/.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from editor_server import CHROMIUM, ROOT, EditorServer, editor_page, make_library

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "test-artifacts"

if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    srv = EditorServer(tmp, make_library(tmp) / "toy.json").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    with editor_page(server.url, wait_for="[data-node-id=opt]") as page:
        yield page
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "editor.png"))


def node(page, node_id: str):
    return page.locator(f"[data-node-id='{node_id}']")


def handle(page, node_id: str, port: str):
    return page.locator(f".vue-flow__handle[data-nodeid='{node_id}'][data-handleid='{port}']")


def drag_link(page, src, dst, release: bool = True) -> None:
    a, b = src.bounding_box(), dst.bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    if release:
        page.mouse.up()


def doc_on_server(server, predicate, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = server.api("GET", "/document").json()["doc"]
        if predicate(doc) or time.monotonic() > deadline:
            return doc
        time.sleep(0.1)


def set_input(locator, value: str) -> None:
    locator.fill(value)
    locator.press("Tab")  # fires `change`


def run_and_wait(page, timeout: float = 60000) -> str:
    """Click Run and wait for this run's run_finished; returns the status text."""
    info = page.locator("[data-role=run-info]")
    before = int(info.get_attribute("data-runs"))
    page.get_by_label("Run", exact=True).click()
    page.wait_for_function(f"document.querySelector('[data-role=run-info]').dataset.runs > {before}",
                           timeout=timeout)
    return info.inner_text()


def test_editor_opens_with_palette_and_graph(page):
    assert node(page, "opt").locator(".ng-title").inner_text() == "Optimize"
    groups = page.locator(".ng-group-head").all_inner_texts()
    assert any("TRAINING" in g.upper() for g in groups) and len(groups) >= 2
    assert not page.errors


def test_add_a_node_from_the_palette_by_search(page, server):
    page.get_by_label("Search nodes").fill("toyscale")
    items = page.locator(".ng-palette-item")
    assert items.count() == 1 and items.first.get_attribute("data-type") == "ToyScale"
    items.first.drag_to(page.locator(".vue-flow__pane"), target_position={"x": 420, "y": 520})
    node(page, "toyscale1").wait_for()
    page.get_by_label("Search nodes").fill("")
    doc = doc_on_server(server, lambda d: any(n["id"] == "toyscale1" for n in d["nodes"]))
    assert any(n["id"] == "toyscale1" and n["type"] == "ToyScale" for n in doc["nodes"])


def test_incompatible_link_is_refused_while_dragging_with_the_reason(page):
    drag_link(page, handle(page, "mse", "loss"), handle(page, "toyscale1", "x"), release=False)
    hint = page.locator(".ng-hint")
    hint.wait_for()
    assert "expects Tensor but mse.loss gives Loss" in hint.inner_text()
    page.mouse.up()
    assert page.locator(".vue-flow__edge[data-id*='mse.loss->toyscale1']").count() == 0


def test_cycle_making_link_is_refused(page):
    drag_link(page, handle(page, "w", "out"), handle(page, "scaled", "x"), release=False)
    page.locator(".ng-hint").wait_for()
    assert "cycle" in page.locator(".ng-hint").inner_text()
    page.mouse.up()


def test_connect_two_nodes_and_set_a_param(page, server):
    drag_link(page, handle(page, "target", "out"), handle(page, "toyscale1", "x"))
    set_input(node(page, "toyscale1").locator("[data-param=factor] input[type=number]"), "3.5")
    doc = doc_on_server(server, lambda d: any(n["id"] == "toyscale1" and n["params"].get("factor") == 3.5
                                              for n in d["nodes"]))
    assert {"from": ["target", "out"], "to": ["toyscale1", "x"]} in doc["links"]
    assert next(n for n in doc["nodes"] if n["id"] == "toyscale1")["params"] == {"factor": 3.5}


def test_undo_redo_copy_paste_and_quick_add(page, server):
    page.get_by_label("Undo").click()  # the factor edit
    page.get_by_label("Undo").click()  # the link
    assert page.locator(".vue-flow__edge").count() == 5
    page.get_by_label("Redo").click()
    assert page.locator(".vue-flow__edge").count() == 6
    node(page, "toyscale1").locator(".ng-head").click()
    page.keyboard.press("Control+c")
    page.keyboard.press("Control+v")
    node(page, "toyscale2").wait_for()
    page.keyboard.press("Delete")
    assert node(page, "toyscale2").count() == 0
    page.locator(".vue-flow__pane").dblclick(position={"x": 300, "y": 650})
    page.get_by_label("Add a node").fill("toynoise")
    page.keyboard.press("Enter")
    node(page, "toynoise1").wait_for()
    page.get_by_label("Undo").click()
    assert node(page, "toynoise1").count() == 0


def test_open_an_example_run_it_and_see_the_preview(page, server):
    page.get_by_role("button", name="Examples").click()
    page.locator(".ng-example", has_text="render_textured_cow").click()
    node(page, "raster").wait_for()
    size = node(page, "raster").locator("[data-param=image_size] input[type=number]").last
    set_input(size, "0")
    node(page, "raster").locator(".ng-bad[data-param=image_size]").wait_for()  # out of bounds: marked on the node
    assert "must be >= 1" in node(page, "raster").locator("[data-param=image_size]").get_attribute("title")
    set_input(size, "64")
    assert run_and_wait(page).startswith("done")
    img = node(page, "render").locator("img[data-preview=images]")
    img.wait_for()
    assert img.get_attribute("width") == "64"
    assert page.evaluate("(el) => el.naturalWidth", img.element_handle()) == 64
    assert node(page, "render").locator(".ng-badge").get_attribute("data-state") == "done"
    # an output port tells what it holds
    node(page, "render").locator(".ng-out", has_text="images").hover()
    tip = page.locator(".ng-tip").inner_text()
    assert "Images" in tip and "[1, 64, 64, 4] float32 cpu" in tip and "min" in tip


def test_edit_a_param_and_rerun_with_upstream_cached(page):
    light = node(page, "light").locator("[data-param=location] input[type=number]")
    set_input(light.nth(1), "1.5")
    assert node(page, "light").locator(".ng-badge").get_attribute("data-state") == "stale"
    assert run_and_wait(page).startswith("done")
    states = {n: node(page, n).locator(".ng-badge").get_attribute("data-state")
              for n in ("cow", "raster", "camera", "light", "shader", "render")}
    assert states == {"cow": "cached", "raster": "cached", "camera": "cached", "light": "done", "shader": "done",
                      "render": "done"}


def test_save_and_reload_keeps_the_graph(page, server):
    example = ROOT / "graphs" / "render_textured_cow.json"
    example_bytes = example.read_bytes()
    assert "example" in page.locator("[data-role=doc-path]").inner_text()
    page.keyboard.press("Control+s")  # an example is read only: Save asks for a name in the library
    page.get_by_text("Examples stay as they are: this saves a copy.").wait_for()
    assert page.get_by_label("File name").input_value() == "render_textured_cow"
    page.get_by_label("File name").fill("my cow")
    page.get_by_label("Save graph").click()
    page.locator(".ng-path", has_text="my cow.json").wait_for()
    assert example.read_bytes() == example_bytes
    saved = json.loads((server.graph.parent / "my cow.json").read_text())
    raster = next(n for n in saved["nodes"] if n["id"] == "raster")
    assert raster["params"]["image_size"] == 64
    page.reload()
    node(page, "raster").wait_for()
    size = node(page, "raster").locator("[data-param=image_size] input[type=number]").last
    assert size.input_value() == "64"
    light = node(page, "light").locator("[data-param=location] input[type=number]")
    assert float(light.nth(1).input_value()) == 1.5
    assert page.locator(".ng-node").count() == len(saved["nodes"])
    assert page.locator(".ng-dirty").count() == 0
    node(page, "render").locator("img[data-preview=images]").wait_for()  # the last preview is replayed
    # the copy lives in the library, without the example's assets folder: the bundled cow still loads
    assert not (server.graph.parent / "assets").exists()
    set_input(light.nth(1), "1.0")
    assert run_and_wait(page).startswith("done")
    page.keyboard.press("Control+s")  # now a library graph: saved in place, no dialog
    page.locator(".ng-dirty").wait_for(state="detached")
    assert json.loads((server.graph.parent / "my cow.json").read_text())["nodes"] != saved["nodes"]
    assert example.read_bytes() == example_bytes
    assert not page.errors, page.errors


def test_a_large_graph_far_out_draws_every_link_and_still_connects(page, server):
    """Zoomed out, nodes are drawn compact with light port elements; links attach and new ones can be dragged."""
    pairs = 40
    nodes, links = [], []
    for i in range(pairs):
        x, y = (i % 8) * 600, (i // 8) * 300
        nodes += [{"id": f"c{i}", "type": "ToyConst", "params": {"value": [float(i)]}, "ui": {"pos": [x, y]}},
                  {"id": f"s{i}", "type": "ToyScale", "params": {}, "ui": {"pos": [x + 300, y]}}]
        if i < pairs - 1:
            links.append({"from": [f"c{i}", "out"], "to": [f"s{i}", "x"]})
    doc = {"format": "nodegraph/1", "name": "many pairs", "nodes": nodes, "links": links}
    server.api("POST", "/upload", json={"text": json.dumps(doc), "filename": "pairs.json"}).raise_for_status()
    page.reload()
    page.wait_for_function(f"document.querySelectorAll('.vue-flow__edge').length === {len(links)}")
    assert page.evaluate("window.nodegraphEditor.zoom") < 0.45
    assert node(page, "s0").locator(".ng-port-label").count() == 0  # compact: labels are not drawn
    last = pairs - 1
    drag_link(page, handle(page, f"c{last}", "out"), handle(page, f"s{last}", "x"))
    page.wait_for_function(f"document.querySelectorAll('.vue-flow__edge').length === {len(links) + 1}")
    saved = doc_on_server(server, lambda d: len(d["links"]) == len(links) + 1)
    assert {"from": [f"c{last}", "out"], "to": [f"s{last}", "x"]} in saved["links"]
    assert not page.errors, page.errors


def test_a_deformation_updates_the_3d_view_while_it_trains(page, server):
    doc = json.loads((ROOT / "graphs" / "deform_sphere_to_cow.json").read_text())
    for n in doc["nodes"]:  # a small form of the example: a level-2 sphere, 500 samples, 60 iterations
        if n["id"] == "optimize":
            n["params"].update(iterations=60, preview_every=1)
        if n["id"] in ("src_points", "trg_points"):
            n["params"]["num_samples"] = 500
        if n["id"] == "sphere":
            n["params"]["level"] = 2
    server.api("POST", "/upload", json={"text": json.dumps(doc), "filename": "deform.json"}).raise_for_status()
    page.reload()
    node(page, "preview").wait_for()
    server.api("POST", "/run", json={}).raise_for_status()
    shown_while_training, deadline = set(), time.monotonic() + 120
    while time.monotonic() < deadline:
        state = page.evaluate("""() => { const ed = window.nodegraphEditor;
            const mesh = ed.viewer && ed.viewer.objects['preview.mesh'];
            return {running: ed.running || ed.runsFinished === 0, error: ed.view3dError,
                    vertex: mesh ? Array.from(mesh.geometry.attributes.position.array.slice(0, 3)) : null}; }""")
        assert not state["error"], state["error"]
        if not state["running"]:
            break
        if state["vertex"]:
            shown_while_training.add(tuple(state["vertex"]))
        time.sleep(0.05)
    assert len(shown_while_training) >= 2  # the mesh in the 3D view moved while the loop ran
    assert page.locator(".ng-side canvas").is_visible()  # the side panel opened on the first mesh
    assert not page.errors, page.errors


def test_a_save_node_shows_the_file_it_wrote_and_the_toolbar_the_output_folder(page, server):
    """node_finished carries ``files`` (absolute paths a node wrote in that call): a save node
    lists them relative to the run's output folder, the full path in the title, with a copy button."""
    doc = json.loads((ROOT / "graphs" / "render_textured_cow.json").read_text())
    for n in doc["nodes"]:
        if n["id"] == "raster":
            n["params"]["image_size"] = 32
    server.api("POST", "/upload", json={"text": json.dumps(doc), "filename": "cow.json"}).raise_for_status()
    page.reload()
    node(page, "save").wait_for()
    assert run_and_wait(page).startswith("done")
    status = server.api("GET", "/status").json()
    out_dir = Path(status["out_dir"])
    assert out_dir == server.tmp / "data" / "nodegraph" / "out" / "render_textured_cow"  # paths.default_out_dir
    assert (out_dir / "cow.png").is_file()
    assert page.locator("[data-role=out-dir] code").inner_text() == str(out_dir)
    assert status["nodes"]["save"]["files"] == [str(out_dir / "cow.png")]
    shown = node(page, "save").locator("[data-role=files] .ng-file-name")
    assert shown.inner_text() == "cow.png" and shown.get_attribute("title") == str(out_dir / "cow.png")
    node(page, "save").get_by_label("copy the full path").click()
    page.wait_for_function("p => window.nodegraphEditor.lastCopied === p", arg=str(out_dir / "cow.png"),
                           timeout=5000)  # the clipboard write is asynchronous
    assert not node(page, "render").locator("[data-role=files]").count()  # only nodes that wrote files
    assert not page.errors, page.errors
