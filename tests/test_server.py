"""The editor server: workspace, library, file picker, safety (token, allowed folders) and robustness."""
from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from editor_server import TOY_TRAINING, EditorServer, make_library
from nodegraph.errors import GraphError
from nodegraph.server.auth import is_local, request_token, url_host
from nodegraph.server.library import Library, PathRefused, list_files
from nodegraph.server.workspace import Workspace
from toy_nodes import REGISTRY


@pytest.fixture
def lib(tmp_path):
    return Library(make_library(tmp_path, with_cow=True), examples_dir=tmp_path / "library")


def test_library_lists_opens_and_saves_inside_its_folder(lib, tmp_path):
    names = {g["path"]: g for g in lib.list("library")}
    assert {"toy.json", "render_textured_cow.json"} <= set(names)
    assert names["toy.json"]["description"] == TOY_TRAINING["description"] and names["toy.json"]["nodes"] == 5
    doc, path = lib.read("library", "toy.json")
    assert doc["name"] == "toy training" and path.parent == lib.library_dir
    saved = lib.save("my graph", doc)
    assert saved == lib.library_dir / "my graph.json" and json.loads(saved.read_text())["nodes"]
    for bad in ("../escape", "/etc/passwd", "sub/dir", ""):
        with pytest.raises(PathRefused):
            lib.save_path(bad)
    for bad in ("../../etc/passwd", "/etc/hostname"):
        with pytest.raises(PathRefused, match="outside the allowed folders"):
            lib.read("library", bad)


def test_symlinks_out_of_the_allowed_folders_are_refused(lib, tmp_path):
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "data.obj").write_text("v 0 0 0\n")
    (outside / "g.json").write_text(json.dumps(TOY_TRAINING))
    os.symlink(outside / "g.json", lib.library_dir / "link.json")
    os.symlink(outside, lib.library_dir / "linked_dir")
    with pytest.raises(PathRefused, match="outside the allowed folders"):
        lib.read("library", "link.json")
    assert "link.json" not in {g["path"] for g in lib.list("library")}
    values = {f["value"] for f in list_files(lib.library_dir, [".obj"])}
    assert "assets/cow_mesh/cow.obj" in values and not any("data.obj" in v for v in values)


def test_file_picker_offers_allowed_data_folders(lib, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "scan.ply").write_text("ply\n")
    monkeypatch.setenv("NODEGRAPH_DATA_DIRS", str(data))
    files = list_files(lib.library_dir, ["ply"])
    values = [f["value"] for f in files]
    assert str(data / "scan.ply") in values
    # the bundled assets are offered under the names the examples use, after the graph's own folder and data
    assert values[-1].startswith("assets/") and "assets/pedestrian.ply" in values


def test_bundled_assets_resolve_from_any_folder_but_nothing_else_does(tmp_path):
    from nodegraph import paths
    cow = paths.resolve_asset(tmp_path, "assets/cow_mesh/cow.obj")
    assert cow == (paths.GRAPHS_DIR / "assets" / "cow_mesh" / "cow.obj").resolve()
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "teapot.obj").write_text("v 0 0 0\n")
    assert paths.resolve_asset(tmp_path, "assets/teapot.obj") == (tmp_path / "assets" / "teapot.obj").resolve()
    for outside in ("render_textured_cow.json", "assets/../render_textured_cow.json", "../graphs/assets/teapot.obj"):
        with pytest.raises(ValueError):
            paths.resolve_asset(tmp_path, outside)


def test_the_default_library_is_never_the_examples_folder(tmp_path, monkeypatch):
    from nodegraph import paths
    from nodegraph.server import default_library_dir
    monkeypatch.delenv("NODEGRAPH_LIBRARY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    example = paths.GRAPHS_DIR / "render_textured_cow.json"
    assert default_library_dir(example) == tmp_path / "data" / "nodegraph" / "graphs"
    assert default_library_dir(None) == tmp_path / "data" / "nodegraph" / "graphs"
    mine = tmp_path / "proj" / "mine.json"
    assert default_library_dir(mine) == tmp_path / "proj"
    monkeypatch.setenv("NODEGRAPH_LIBRARY", str(tmp_path / "lib"))
    assert default_library_dir(example) == tmp_path / "lib"


def test_saving_an_opened_example_writes_a_working_copy_and_leaves_the_example(tmp_path):
    from nodegraph import paths
    from nodegraph.graph import from_json
    from nodegraph.prepare import prepare
    example = paths.GRAPHS_DIR / "render_textured_cow.json"
    before = example.read_bytes()
    ws = Workspace(Library(tmp_path / "mine"), example, registry=REGISTRY)
    assert ws.info()["collection"] == "examples"
    saved = ws.save("render_textured_cow")
    assert saved == {"path": "render_textured_cow.json", "collection": "library", "dirty": False}
    assert example.read_bytes() == before
    copy = tmp_path / "mine" / "render_textured_cow.json"
    assert json.loads(copy.read_text())["nodes"] == json.loads(before)["nodes"]
    assert prepare(from_json(json.loads(copy.read_text()), base_dir=copy.parent)).problems == []  # assets still found
    assert ws.problems() == []


def test_workspace_edits_autosave_and_survive_a_restart(lib, tmp_path):
    state = tmp_path / "state" / "autosave.json"
    ws = Workspace(lib, lib.library_dir / "toy.json", autosave_path=state, registry=REGISTRY)
    doc = json.loads(json.dumps(ws.doc))
    doc["nodes"][1]["params"]["factor"] = 5.0
    assert ws.update_doc(doc) == []
    again = Workspace(lib, lib.library_dir / "toy.json", autosave_path=state, registry=REGISTRY)
    assert again.dirty and again.doc["nodes"][1]["params"]["factor"] == 5.0
    other = Workspace(lib, lib.library_dir / "render_textured_cow.json", autosave_path=state, registry=REGISTRY)
    assert other.doc["name"] == "render_textured_cow"  # another graph asked for: the autosave is not forced on it


def test_broken_documents_are_refused_with_problems_naming_node_and_field(lib):
    ws = Workspace(lib, lib.library_dir / "toy.json", registry=REGISTRY)
    with pytest.raises(GraphError) as err:
        ws.update_doc({"format": "nodegraph/9", "nodes": [{"id": 3}]})
    fields = {p.field for p in err.value.problems}
    assert {"format", "nodes[0]"} <= fields
    doc = json.loads(json.dumps(ws.doc))
    doc["nodes"][3]["params"]["weight"] = -1e999
    doc["links"].append({"from": ["mse", "loss"], "to": ["scaled", "x"]})
    problems = ws.update_doc(doc)
    assert {"node": "mse", "field": "weight"} in [{k: p[k] for k in ("node", "field")} for p in problems]
    assert any(p["node"] == "scaled" and "expects Tensor but mse.loss gives Loss" in p["message"] for p in problems)


def test_a_failed_run_reports_the_node_and_leaves_the_saved_graph_intact(lib, monkeypatch):
    monkeypatch.setenv("NODEGRAPH_PLUGINS", "toy_nodes")  # the run worker (a child process) loads the toy nodes
    ws = Workspace(lib, lib.library_dir / "toy.json", registry=REGISTRY)
    events = []
    ws.broadcast = events.append  # what websocket clients get, in their order
    ws.save("toy")
    saved = lib.library_dir / "toy.json"
    before = saved.read_text()
    doc = json.loads(json.dumps(ws.doc))
    doc["nodes"][0]["params"]["value"] = [1.0, 2.0]  # target is shorter than... mse compares a and b
    doc["nodes"].append({"id": "other", "type": "ToyConst", "params": {"value": [1.0]}})
    doc["links"] = [l for l in doc["links"] if l["to"] != ["mse", "b"]] + [{"from": ["other", "out"], "to": ["mse", "b"]}]
    ws.update_doc(doc)
    ws.start_run()
    assert ws.wait(90)
    ws.close()
    error = next(e for e in events if e["type"] == "node_error")
    assert error["node"] == "mse" and error["field"] == "b" and "does not match" in error["message"]
    kinds = [e["type"] for e in events]
    assert kinds.index("node_error") < len(kinds) - 1 and events[-1]["type"] == "run_finished"
    assert events[-1]["status"] == "error" and events[-1]["error"]["node"] == "mse"
    assert ws.node_states["mse"]["state"] == "error"
    assert saved.read_text() == before and ws.dirty


def test_token_helpers():
    assert is_local("127.0.0.1") and is_local("localhost") and not is_local("0.0.0.0")
    assert is_local("127.3.2.1") and is_local("::1") and is_local("[::1]")
    assert not is_local("127.evil.example") and not is_local("::") and not is_local("10.0.0.1")
    assert url_host("::1") == "[::1]" and url_host("[::1]") == "[::1]" and url_host("127.0.0.1") == "127.0.0.1"
    scope = {"query_string": b"a=1&token=abc", "headers": []}
    assert request_token(scope) == ("abc", True)
    scope = {"query_string": b"", "headers": [(b"cookie", b"x=1; nodegraph_token=zz")]}
    assert request_token(scope) == ("zz", False)


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guarded")
    srv = EditorServer(tmp, make_library(tmp) / "toy.json", token="s3cret-token").start()
    yield srv
    srv.stop()


def test_token_is_required_on_every_http_and_websocket_request(guarded_server):
    srv = guarded_server
    for path in ("/", "/api/document", "/api/catalogue", "/nodegraph/src/editor.js"):
        assert httpx.get(srv.url + path).status_code == 401, path
        assert httpx.get(srv.url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    page = httpx.get(srv.url + "/?token=s3cret-token")
    assert page.status_code == 200 and "nodegraph_token=s3cret-token" in page.headers["set-cookie"]
    assert httpx.get(srv.url + "/api/document", cookies={"nodegraph_token": "s3cret-token"}).status_code == 200
    assert srv.api("GET", "/document").status_code == 200


async def test_websocket_without_token_is_refused(guarded_server):
    srv = guarded_server
    with pytest.raises(InvalidStatus):
        async with websockets.connect(f"ws://127.0.0.1:{srv.port}/api/events"):
            pass
    async with websockets.connect(f"ws://127.0.0.1:{srv.port}/api/events?token=s3cret-token") as ws:
        assert json.loads(await ws.recv())["type"] == "hello"


def test_http_api_refuses_escapes_and_survives_garbage(guarded_server):
    srv = guarded_server
    r = srv.api("POST", "/open", json={"collection": "library", "path": "../../etc/passwd"})
    assert r.status_code == 403 and "outside the allowed folders" in r.json()["error"]
    assert srv.api("POST", "/save", json={"name": "../evil"}).status_code == 403
    assert srv.api("POST", "/open", json={"collection": "nowhere", "path": "x.json"}).status_code == 403
    assert srv.api("PUT", "/document", content=b"{not json").status_code == 415  # no JSON content type
    assert srv.api("PUT", "/document", content=b"{not json",
                   headers={"Content-Type": "application/json"}).status_code == 400
    r = srv.api("PUT", "/document", json={"doc": {"format": "nodegraph/1", "nodes": "oops"}})
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "nodes"
    r = srv.api("POST", "/upload", json={"text": "[1, 2", "filename": "x.json"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    assert srv.api("POST", "/run", json={"targets": "opt"}).status_code == 400
    assert srv.api("GET", "/document").json()["doc"]["name"] == "toy training"  # still serving, doc unchanged
    files = srv.api("GET", "/files?ext=.json").json()["files"]
    assert files[0]["value"] == "toy.json"  # the graph's own folder first, then only the shipped assets
    assert all(f["value"].startswith("assets/") and f["value"].endswith(".json") for f in files[1:])


def test_save_then_download_round_trips(guarded_server):
    srv = guarded_server
    r = srv.api("POST", "/save", json={"name": "copy of toy"})
    assert r.status_code == 200 and r.json() == {"path": "copy of toy.json", "collection": "library", "dirty": False}
    saved = json.loads((srv.graph.parent / "copy of toy.json").read_text())
    download = srv.api("GET", "/download")
    assert 'filename="toy_training.json"' in download.headers["content-disposition"]
    assert json.loads(download.text) == saved
    listed = {g["path"] for g in srv.api("GET", "/graphs?collection=library").json()["graphs"]}
    assert "copy of toy.json" in listed
    examples = srv.api("GET", "/graphs?collection=examples").json()["graphs"]
    assert any(g["path"] == "render_textured_cow.json" and g["description"] for g in examples)


def test_saving_never_follows_a_planted_temporary_file_and_refuses_control_characters(lib, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    planted = lib.library_dir / "toy.json.tmp"
    planted.symlink_to(target)  # what the old save wrote through
    ws = Workspace(lib, lib.library_dir / "toy.json", registry=REGISTRY)
    ws.save("toy")
    assert target.read_text() == "keep me" and planted.is_symlink()
    assert json.loads((lib.library_dir / "toy.json").read_text())["name"] == "toy training"
    assert not [p for p in lib.library_dir.iterdir() if p.name.startswith(".toy.json.")]  # no temporary left
    for name in ("evil\n", "a\nb", "tab\there", "bell\a"):
        with pytest.raises(PathRefused):
            lib.save_path(name)


def test_tracebacks_reach_the_page_only_with_debug(lib):
    """A node_error's traceback holds this machine's paths: websocket clients get it only from `serve --debug`."""
    event = {"type": "node_error", "node": "mse", "field": None, "message": "ValueError: bad",
             "traceback": 'File "/home/me/secret/project/nodes.py", line 3'}
    for debug, expect in ((False, None), (True, event["traceback"])):
        ws = Workspace(lib, lib.library_dir / "toy.json", registry=REGISTRY, debug=debug)
        seen = []
        ws.broadcast = seen.append
        ws._on_event(dict(event))
        assert seen[0].get("traceback") == expect and seen[0]["message"] == "ValueError: bad"
        assert ws.node_states["mse"]["state"] == "error"
        ws.close()
