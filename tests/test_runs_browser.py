"""The Runs panel and the Compare view in a real browser (Debian's chromium, headless, Playwright).

Two runs of a tiny camera-pose fit go through the editor's worker (so the editor's runs are recorded), with
different learning rates; the panel lists them, Compare shows the param that differs, both runs' curves on
one plot, the metrics, and an A/B slider whose divider follows a mouse drag; a run re-opens as it ran, and
deleting one removes it.
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from editor_server import CHROMIUM, ROOT, EditorServer, editor_page, make_library

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
pytest.importorskip("playwright.sync_api")

TINY = {"image_size": 24, "faces_per_pixel": 8}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs_browser")
    lib = make_library(tmp)
    (lib / "assets").mkdir(exist_ok=True)
    shutil.copy(ROOT / "graphs" / "assets" / "teapot.obj", lib / "assets" / "teapot.obj")
    shutil.copy(ROOT / "graphs" / "camera_pose_teapot.json", lib / "teapot.json")
    srv = EditorServer(tmp, lib / "teapot.json").start()
    yield srv
    srv.stop()


def _run(server, doc: dict) -> None:
    assert server.api("POST", "/run", json={"doc": doc}).status_code == 200
    server.wait_idle()


def _tiny(doc: dict, lr: float) -> dict:
    for n in doc["nodes"]:
        if n["id"] == "settings":
            n["params"].update(TINY)
        if n["id"] == "optimize":
            n["params"].update(iterations=6, stop_below=None, lr=lr)
    return doc


@pytest.fixture(scope="module")
def runs(server):
    doc = server.api("GET", "/document").json()["doc"]
    _run(server, _tiny(doc, 0.05))
    _run(server, _tiny(doc, 0.1))
    deadline = time.monotonic() + 10
    while len(listed := server.api("GET", "/runs?graph=camera_pose_teapot").json()["runs"]) < 2:
        assert time.monotonic() < deadline, listed
        time.sleep(0.2)
    return listed


@pytest.fixture(scope="module")
def page(server, runs):
    with editor_page(server.url, wait_for="[data-node-id=optimize]", height=950) as page:
        yield page


def test_the_editors_runs_are_recorded_with_curves_and_images(runs):
    assert [r["source"] for r in runs] == ["editor", "editor"] and all(r["status"] == "ok" for r in runs)
    assert all("final_render.images" in r["previews"] and "silhouette.loss" in r["metrics"] for r in runs)


def test_the_panel_lists_runs_and_compare_shows_params_curves_metrics_and_a_moving_slider(page, runs):
    page.get_by_role("button", name="Runs").click()
    panel = page.locator("[data-role=runs-panel]")
    rows = panel.locator(".ng-run-row")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    assert "silhouette.loss" in rows.first.inner_text() and "ok" in rows.first.inner_text()
    for r in runs:
        page.get_by_label(f"pick run {r['id']}").check()
    page.get_by_role("button", name="Compare runs").click()
    view = page.locator("[data-role=compare]")
    lr = view.locator("[data-role=params-diff] [data-param='optimize.lr']")
    assert "0.0500" in lr.inner_text() and "0.1000" in lr.inner_text()
    assert view.locator("[data-role=params-diff] tr[data-param]").count() == 1  # only the learning rate differs
    legend = view.locator("[data-role=curves] .ng-legend").inner_text()
    assert "A · total" in legend and "B · total" in legend and "A · silhouette" in legend and "B · silhouette" in legend
    paths = view.locator("[data-role=curves] path")
    assert paths.count() == 4 and all(len(paths.nth(i).get_attribute("d")) > 20 for i in range(4))
    assert view.locator("[data-role=metrics] [data-metric='silhouette.loss'] td").count() == 4

    ab = view.locator(".ng-ab[data-image='final_render.images']")
    box = ab.locator("[data-role=ab-box]")
    page.wait_for_function("() => [...document.querySelectorAll('[data-role=ab-box] img')].every(i => i.complete && i.naturalWidth > 0)")
    assert box.get_attribute("data-pos") == "50.0"
    b = box.bounding_box()
    page.mouse.move(b["x"] + b["width"] * 0.5, b["y"] + b["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] * 0.2, b["y"] + b["height"] / 2, steps=8)
    page.mouse.up()
    pos = float(box.get_attribute("data-pos"))
    assert 15 < pos < 25
    clip = re.search(r"inset\(0(?:px)? ([\d.]+)%", ab.locator("[data-role=ab-top]").get_attribute("style"))
    assert clip and float(clip.group(1)) == pytest.approx(100 - pos, abs=0.2)  # A shows left of the divider
    divider = ab.locator("[data-role=ab-divider]").bounding_box()
    assert abs(divider["x"] - (b["x"] + b["width"] * pos / 100)) < 4  # the divider follows the mouse

    ab.locator("[data-role=ab-diff-mode]").click()
    page.wait_for_function("() => document.querySelector(\"[data-image='final_render.images'] [data-role=ab-diff]\").dataset.meanDiff !== undefined")
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "test-artifacts" / "compare.png"))
    canvas = ab.locator("[data-role=ab-diff]")
    assert int(canvas.get_attribute("width")) == 24 and float(canvas.get_attribute("data-mean-diff")) >= 0
    assert page.errors == []
    page.get_by_label("Close compare").click()


def test_a_run_reopens_as_it_ran_and_deleting_one_removes_it(page, server, runs):
    older = runs[-1]
    page.locator(f"[data-run='{older['id']}'] [data-role=run-open]").click()
    deadline = time.monotonic() + 10
    while True:
        doc = server.api("GET", "/document").json()["doc"]
        lr = next(n for n in doc["nodes"] if n["id"] == "optimize")["params"]["lr"]
        if lr == 0.05 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lr == 0.05
    page.locator(f"[data-run='{older['id']}'] [data-role=run-delete]").click()
    page.locator(f"[data-run='{older['id']}']").wait_for(state="detached")
    assert [r["id"] for r in server.api("GET", "/runs").json()["runs"]] == [runs[0]["id"]]
    assert page.errors == []


def test_a_sweep_started_in_the_editor_fills_its_table_and_a_row_opens_as_a_run(page, server):
    """Real Ray in the server process: a local loopback cluster that the sweep starts and stops."""
    if not page.locator("[data-role=runs-panel]").is_visible():
        page.get_by_role("button", name="Runs").click()
    page.get_by_label("Sweep tab").click()
    sweep = page.locator("[data-role=sweep-panel]")
    sweep.get_by_label("Sweep node", exact=True).select_option("optimize")
    sweep.get_by_label("Sweep param", exact=True).select_option("lr")
    sweep.get_by_label("Sweep values", exact=True).fill("0.05, 0.2")
    sweep.get_by_label("Add sweep param").click()
    assert sweep.locator("[data-pick='optimize.lr']").count() == 1
    sweep.get_by_label("Sweep metric", exact=True).fill("silhouette.loss")
    sweep.get_by_label("Start sweep").click()
    table = sweep.locator("[data-role=sweep-table]")
    table.locator("tr[data-trial]").nth(1).wait_for(timeout=120000)
    page.wait_for_function("() => document.querySelector('[data-role=sweep-status]').textContent.includes('done')",
                           timeout=60000)
    state = server.api("GET", "/sweep").json()["sweep"]
    rows = state["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[0]["metric"] <= rows[1]["metric"]
    assert {r["overrides"]["optimize.lr"] for r in rows} == {0.05, 0.2}
    assert (Path(state["folder"]) / "results.csv").is_file()
    trial_02 = next(r for r in rows if r["overrides"]["optimize.lr"] == 0.2)
    table.locator(f"tr[data-trial='{trial_02['trial']}'] a").click()
    page.locator(".ng-toast", has_text="as it ran").wait_for()
    deadline = time.monotonic() + 10
    while True:
        doc = server.api("GET", "/document").json()["doc"]
        lr = next(n for n in doc["nodes"] if n["id"] == "optimize")["params"]["lr"]
        if lr == 0.2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lr == 0.2  # the trial's graph, as it ran
    assert server.api("GET", "/runs/" + trial_02["run_id"]).json()["source"] == "sweep"
    assert page.errors == []
