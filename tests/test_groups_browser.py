"""Groups, bypass and mute in the editor, in headless Chromium with real clicks and keys: group a selection,
enter the group, edit inside it, leave by the breadcrumb, run, bypass and mute a node, ungroup, save a group to
the library and use it from the palette. One page, in file order, like a user's session."""
from __future__ import annotations

import time

import pytest

from editor_server import EditorServer, editor_page, make_library
from test_editor_browser import doc_on_server, node, run_and_wait, set_input

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("groups-browser")
    srv = EditorServer(tmp, make_library(tmp) / "toy.json").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    with editor_page(server.url, wait_for="[data-node-id=opt]") as page:
        yield page


def run_ok(page, server) -> bool:
    """Run from the toolbar and wait for its run_finished; whether it ended ok (read from the server: the toolbar
    text can still say "running…" when a short run finishes before the Run request returns, an editor race
    outside this issue part)."""
    run_and_wait(page)
    return (server.api("GET", "/status").json().get("last") or {}).get("status") == "ok"


def select(page, *ids: str) -> None:
    node(page, ids[0]).locator(".ng-head").click()
    for i in ids[1:]:
        node(page, i).locator(".ng-head").click(modifiers=["Control"])


def test_group_a_selection_with_an_exposed_param(page, server):
    select(page, "target", "scaled")
    page.keyboard.press("Control+g")
    dialog = page.get_by_role("dialog", name="Group nodes")
    dialog.get_by_label("Group name").fill("prep")
    dialog.locator("label", has_text="scaled.factor").locator("input").check()
    ports = dialog.locator("[data-role=group-ports] label").all_inner_texts()
    assert [p.strip() for p in ports] == ["out: scaled.out → w.like, mse.b"]  # the default: every crossing link
    dialog.get_by_label("Make the group").click()
    node(page, "prep1").wait_for()
    assert node(page, "target").count() == 0 and node(page, "scaled").count() == 0
    doc = doc_on_server(server, lambda d: "prep" in d.get("definitions", {}))
    definition = doc["definitions"]["prep"]
    assert doc["format"] == "nodegraph/2"
    assert {n["id"] for n in definition["nodes"]} == {"target", "scaled"}
    assert definition["outputs"] == [{"name": "out", "from": ["scaled", "out"]}]
    assert definition["params"] == [{"name": "factor", "to": [["scaled", "factor"]]}]
    assert {tuple(l["to"]) for l in doc["links"] if l["from"] == ["prep1", "out"]} == {("w", "like"), ("mse", "b")}
    # the instance draws the exposed port and param, and the palette offers the group
    assert node(page, "prep1").locator("[data-port=out]").count() == 1
    assert page.locator(".ng-palette-item[data-type='group:prep']").count() == 1
    assert not page.errors


def test_run_a_graph_with_a_group_and_see_its_state(page, server):
    assert run_ok(page, server)
    badge = node(page, "prep1").locator(".ng-badge")
    assert badge.get_attribute("data-state") in ("done", "cached")
    node(page, "prep1").locator(".ng-out").first.hover()  # the instance's output holds its inner node's value
    assert "Tensor [3]" in page.locator(".ng-tip").inner_text()
    page.mouse.move(5, 5)
    # editing the instance's exposed param marks what is inside it as edited
    set_input(node(page, "prep1").locator("[data-param=factor] input[type=number]"), "2.5")
    assert badge.get_attribute("data-state") == "stale"
    doc = doc_on_server(server, lambda d: any(n["params"].get("factor") == 2.5 for n in d["nodes"]))
    assert next(n for n in doc["nodes"] if n["id"] == "prep1")["params"] == {"factor": 2.5}
    assert run_ok(page, server)
    assert badge.get_attribute("data-state") == "done"


def test_enter_edit_and_leave_a_group(page, server):
    node(page, "prep1").locator(".ng-head").dblclick()
    node(page, "scaled").wait_for()
    crumbs = page.locator("[data-role=breadcrumb]")
    assert "prep" in crumbs.inner_text() and node(page, "opt").count() == 0
    # inside, nodes show the states of this instance's nodes (flat ids prep1/...)
    assert node(page, "scaled").locator(".ng-badge").get_attribute("data-state") in ("done", "cached")
    set_input(node(page, "scaled").locator("input[type=number]").first, "3")
    doc = doc_on_server(server, lambda d: d["definitions"]["prep"]["nodes"][1]["params"].get("factor") == 3.0
                        or d["definitions"]["prep"]["nodes"][0]["params"].get("factor") == 3.0)
    scaled = next(n for n in doc["definitions"]["prep"]["nodes"] if n["id"] == "scaled")
    assert scaled["params"]["factor"] == 3.0
    assert {n["id"] for n in doc["nodes"]} >= {"prep1", "opt"}  # the graph's own nodes are kept while inside
    crumbs.locator("a").first.click()
    node(page, "opt").wait_for()
    assert node(page, "scaled").count() == 0
    node(page, "prep1").locator(".ng-title").dblclick()  # in again (a group's title enters it too), out with Escape
    node(page, "scaled").wait_for()
    page.keyboard.press("Escape")
    node(page, "opt").wait_for()
    assert run_ok(page, server)
    assert not page.errors


def test_bypass_and_mute_from_the_node_and_the_keyboard(page, server):
    node(page, "w").get_by_label("bypass").click()
    assert "ng-mode-bypass" in node(page, "w").get_attribute("class")
    doc = doc_on_server(server, lambda d: any(n.get("mode") for n in d["nodes"]))
    assert next(n for n in doc["nodes"] if n["id"] == "w")["mode"] == "bypass"
    node(page, "w").get_by_label("bypass").click()  # off again
    select(page, "mse")
    page.keyboard.press("Control+m")
    assert "ng-mode-mute" in node(page, "mse").get_attribute("class")
    doc = doc_on_server(server, lambda d: any(n.get("mode") == "mute" for n in d["nodes"]))
    assert {n["id"]: n.get("mode") for n in doc["nodes"]}["mse"] == "mute"
    assert {n["id"]: n.get("mode") for n in doc["nodes"]}["w"] is None
    page.keyboard.press("Control+m")
    doc = doc_on_server(server, lambda d: not any(n.get("mode") for n in d["nodes"]))
    assert not any(n.get("mode") for n in doc["nodes"])


def test_save_a_group_to_the_library_ungroup_and_reuse_it(page, server):
    select(page, "prep1")
    page.get_by_label("Save the group to the library").click()
    deadline = time.monotonic() + 5
    while not (server.graph.parent / "groups" / "prep.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (server.graph.parent / "groups" / "prep.json").exists()
    page.keyboard.press("Control+Shift+g")
    node(page, "scaled").wait_for()
    doc = doc_on_server(server, lambda d: any(n["id"] == "scaled" for n in d["nodes"]))
    # the instance's own param (2.5) wins over the definition's value (3) it was edited to inside
    assert next(n for n in doc["nodes"] if n["id"] == "scaled")["params"]["factor"] == 2.5
    assert not any(n["type"].startswith("group:") for n in doc["nodes"])
    # a new graph: the library's group is in the palette and brings its definition along
    page.get_by_role("button", name="File").click()
    page.get_by_text("New", exact=True).click()
    page.wait_for_function("document.querySelectorAll('[data-node-id]').length === 0")
    item = page.locator(".ng-palette-item[data-type='group:prep']")
    item.wait_for()
    item.dblclick()
    node(page, "prep1").wait_for()
    doc = doc_on_server(server, lambda d: "prep" in d.get("definitions", {}))
    assert [n["type"] for n in doc["nodes"]] == ["group:prep"] and "prep" in doc["definitions"]
    assert not page.errors


def test_the_editor_groups_as_the_engine_does(page):
    """groups.js's groupScene/ungroupScene/groupSpec give what nodegraph.grouping and nodegraph.groups give."""
    import json

    from editor_server import TOY_TRAINING
    from nodegraph.graph import from_json
    from nodegraph.grouping import group_nodes
    from nodegraph.groups import instance_spec
    from toy_nodes import REGISTRY

    graph = from_json(json.loads(json.dumps(TOY_TRAINING)))
    gid = group_nodes(graph, ["scaled", "w"], "mid", params=["scaled.factor"])
    want = graph.to_json()
    got = page.evaluate("""async (doc) => {
        const g = await import('nodegraph-ui/groups.js');
        const scene = {nodes: doc.nodes, links: doc.links};
        const one = g.groupScene(scene, ['scaled', 'w'], 'mid', ['scaled.factor']);
        const dropped = g.groupScene(scene, ['scaled', 'w'], 'mid', [], null, {inputs: ['target.out']});
        const back = g.ungroupScene(one.scene, one.instanceId, {mid: one.definition});
        const ed = window.nodegraphEditor;
        return {one, dropped, back, spec: g.groupSpec({mid: one.definition}, 'mid', ed.catalogue)};
    }""", TOY_TRAINING)
    assert got["one"]["instanceId"] == gid
    assert got["one"]["definition"] == want["definitions"]["mid"]
    assert sorted(map(json.dumps, got["one"]["scene"]["links"])) == sorted(map(json.dumps, want["links"]))
    assert got["dropped"]["definition"]["inputs"] == []  # target.out -> scaled.x dropped with its port
    assert not any(l["from"] == ["target", "out"] and l["to"][0] == gid for l in got["dropped"]["scene"]["links"])
    assert sorted(map(json.dumps, got["back"]["links"])) == sorted(map(json.dumps, TOY_TRAINING["links"]))
    spec = instance_spec(graph, "mid", REGISTRY)
    for key in ("name", "inputs", "outputs", "params", "doc"):
        assert got["spec"][key] == spec[key], key


def test_a_group_inside_a_group(page, server):
    """In the graph the last test made (one prep1 instance): group a node inside prep, enter both levels, run."""
    node(page, "prep1").locator(".ng-head").dblclick()
    node(page, "scaled").wait_for()
    select(page, "scaled")
    page.keyboard.press("Control+g")
    dialog = page.get_by_role("dialog", name="Group nodes")
    dialog.get_by_label("Group name").fill("inner")
    dialog.get_by_label("Make the group").click()
    node(page, "inner1").wait_for()
    doc = doc_on_server(server, lambda d: "inner" in d.get("definitions", {}))
    assert [n["type"] for n in doc["definitions"]["prep"]["nodes"]] == ["ToyConst", "group:inner"]
    assert doc["definitions"]["prep"]["outputs"] == [{"name": "out", "from": ["inner1", "out"]}]
    assert doc["definitions"]["prep"]["params"] == [{"name": "factor", "to": [["inner1", "factor"]]}]
    assert doc["definitions"]["inner"]["params"] == [{"name": "factor", "to": [["scaled", "factor"]]}]
    assert doc["definitions"]["inner"]["inputs"] == [{"name": "x", "to": [["scaled", "x"]]}]
    node(page, "inner1").locator(".ng-head").dblclick()
    node(page, "scaled").wait_for()
    crumbs = page.locator("[data-role=breadcrumb] a")
    assert crumbs.count() == 3 and "inner" in crumbs.nth(2).inner_text()
    assert run_ok(page, server)
    states = server.api("GET", "/status").json()["nodes"]
    assert states["prep1/inner1/scaled"]["state"] == "done"
    assert node(page, "scaled").locator(".ng-badge").get_attribute("data-state") == "done"
    page.keyboard.press("Escape")
    node(page, "inner1").wait_for()
    page.keyboard.press("Escape")
    node(page, "prep1").wait_for()
    assert page.locator("[data-role=breadcrumb]").count() == 0 or crumbs.count() == 1
    assert not page.errors


def menu_keys(page) -> set[str]:
    return set(page.locator(".ng-ctx .ng-ctx-item").evaluate_all("els => els.map(e => e.dataset.key)"))


def test_group_actions_in_the_context_menus(page, server):
    """A node's right-click menu bypasses, mutes and groups; an instance's enters and ungroups; inside a group
    "Run to here" runs the node under its flat path id and the canvas's menu leaves the group."""
    node(page, "prep1").locator(".ng-head").click(button="right")
    assert {"bypass", "mute", "group", "enter-group", "ungroup"} <= menu_keys(page)
    page.locator(".ng-ctx [data-key=enter-group]").click()
    node(page, "inner1").wait_for()
    node(page, "target").locator(".ng-head").click(button="right")
    keys = menu_keys(page)
    assert {"bypass", "mute", "group", "run-to"} <= keys and "enter-group" not in keys
    info = page.locator("[data-role=run-info]")
    before = int(info.get_attribute("data-runs"))
    page.locator(".ng-ctx [data-key=run-to]").click()
    page.wait_for_function(f"document.querySelector('[data-role=run-info]').dataset.runs > {before}")
    status = server.api("GET", "/status").json()
    assert (status.get("last") or {}).get("status") == "ok"
    assert status["nodes"]["prep1/target"]["state"] in ("done", "cached")
    assert node(page, "target").locator(".ng-badge").get_attribute("data-state") in ("done", "cached")
    node(page, "inner1").locator(".ng-head").click(button="right")
    page.locator(".ng-ctx [data-key=mute]").click()
    assert "ng-mode-mute" in node(page, "inner1").get_attribute("class")
    doc = doc_on_server(server, lambda d: any(n.get("mode") for n in d["definitions"]["prep"]["nodes"]))
    assert {n["id"]: n.get("mode") for n in doc["definitions"]["prep"]["nodes"]}["inner1"] == "mute"
    node(page, "inner1").locator(".ng-head").click(button="right")
    page.locator(".ng-ctx [data-key=mute]").click()  # off again
    doc_on_server(server, lambda d: not any(n.get("mode") for n in d["definitions"]["prep"]["nodes"]))
    # a comment made inside the group is the definition's: it is not drawn over the graph outside
    pane = page.locator(".vue-flow__pane").bounding_box()
    page.mouse.click(pane["x"] + 30, pane["y"] + pane["height"] - 30, button="right")
    page.locator(".ng-ctx [data-key=comment]").click()
    page.locator("[data-comment=comment1]").wait_for()
    doc = doc_on_server(server, lambda d: (d["definitions"]["prep"].get("ui") or {}).get("comments"))
    assert [c["id"] for c in doc["definitions"]["prep"]["ui"]["comments"]] == ["comment1"]
    assert not (doc.get("ui") or {}).get("comments")
    page.mouse.click(pane["x"] + 30, pane["y"] + pane["height"] - 30, button="right")
    page.locator(".ng-ctx [data-key=leave-group]").click()
    node(page, "prep1").wait_for()
    assert page.locator("[data-comment=comment1]").count() == 0
    node(page, "prep1").locator(".ng-head").click(button="right")
    page.locator(".ng-ctx [data-key=ungroup]").click()
    node(page, "inner1").wait_for()
    doc = doc_on_server(server, lambda d: not any(n["type"] == "group:prep" for n in d["nodes"]))
    assert {n["id"] for n in doc["nodes"]} == {"target", "inner1"}
    assert not page.errors
