"""Export's three faces: ``nodegraph export``, ``GET /api/export`` and File > Export as Python in the editor."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from editor_server import ROOT, EditorServer, make_library
from nodegraph.cli import main

COW = ROOT / "graphs" / "render_textured_cow.json"
CHROMIUM = "/usr/bin/chromium"


def test_the_command_writes_the_script_with_the_overrides_as_defaults(tmp_path, capsys):
    target = tmp_path / "cow.py"
    assert main(["export", str(COW), "-o", str(target), "--set", "raster.image_size=64"]) == 0
    script = target.read_text()
    compile(script, str(target), "exec")
    assert "default=64" in script and "load_objs_as_meshes" in script
    assert main(["export", str(COW)]) == 0
    assert capsys.readouterr().out.startswith('"""render_textured_cow: a standalone PyTorch3D script')


def test_the_command_refuses_a_graph_with_a_node_without_an_export_form(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NODEGRAPH_PLUGINS", "toy_nodes")
    from nodegraph import registry

    monkeypatch.setattr(registry, "_DEFAULT", None)  # rebuilt with the plugin, put back afterwards
    graph = {"format": "nodegraph/1", "name": "toy", "nodes": [
        {"id": "k", "type": "ToyConst", "params": {}}, {"id": "save", "type": "SaveTensor", "params": {}}],
        "links": [{"from": ["k", "out"], "to": ["save", "tensor"]}]}
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(graph))
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert "k: ToyConst has no export form" in err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export_server")
    srv = EditorServer(tmp, make_library(tmp, with_cow=True) / "render_textured_cow.json").start()
    yield srv
    srv.stop()


def test_the_server_answers_the_script_as_a_download_and_a_refusal_as_problems(server):
    got = server.api("GET", "/export")
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"] == 'attachment; filename="render_textured_cow.py"'
    assert "MeshRenderer(rasterizer=rasterizer, shader=shader)(cow)" in got.text
    doc = server.api("GET", "/document").json()["doc"]
    toy = json.loads(json.dumps(doc))
    toy["nodes"].append({"id": "mystery", "type": "ToyConst", "params": {}, "ui": {"pos": [0, 900]}})
    toy["nodes"].append({"id": "keep", "type": "SaveTensor", "params": {}, "ui": {"pos": [300, 900]}})
    toy["links"].append({"from": ["mystery", "out"], "to": ["keep", "tensor"]})
    assert server.api("PUT", "/document", json={"doc": toy}).status_code == 200
    refused = server.api("GET", "/export")
    assert refused.status_code == 400
    assert [p["node"] for p in refused.json()["problems"]] == ["mystery"]
    assert server.api("PUT", "/document", json={"doc": doc}).status_code == 200


@pytest.mark.browser
def test_file_export_as_python_downloads_the_script(server, tmp_path):
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, accept_downloads=True)
            page.set_default_timeout(15000)
            page.goto(server.url)
            page.wait_for_selector("[data-node-id=render]")
            page.get_by_role("button", name="File").click()
            with page.expect_download() as info:
                page.get_by_text("Export as Python").click()
            download = info.value
            assert download.suggested_filename == "render_textured_cow.py"
            target = tmp_path / download.suggested_filename
            download.save_as(str(target))
        finally:
            browser.close()
    script = target.read_text()
    compile(script, str(target), "exec")
    assert "SoftPhongShader(device=device, cameras=camera, lights=light)" in script
