"""Groups (subgraphs) and node modes (bypass, mute) in the engine, on toy nodes: the JSON format (old and new),
flattening with path ids, problems and previews naming paths, caching and training across group boundaries,
nested groups, definition cycles, and what bypass and mute do."""
from __future__ import annotations

import json
import sys

import pytest
import torch

import nodegraph
import toy_nodes
from nodegraph.errors import GraphError, NodeError
from nodegraph.graph import loads
from nodegraph.groups import instance_spec
from nodegraph.spec import Input, Output, node


@node(category="toy", inputs=[Input("x", "Tensor")], outputs=[Output("images", "Images")])
def ToyImage(ctx, x):
    """A 4x4 grey image whose brightness is the mean of x (clamped to [0, 1])."""
    return torch.full((1, 4, 4, 3), 0.5, device=ctx.device) * x.mean().clamp(0, 1)


REGISTRY = toy_nodes.registry_with(sys.modules[__name__])

# x -> s1 (factor f) -> s2 (x3) -> out; the group exposes x, out and f.
SCALE2 = {
    "description": "scale twice",
    "nodes": [{"id": "s1", "type": "ToyScale", "params": {"factor": 2.0}},
              {"id": "s2", "type": "ToyScale", "params": {"factor": 3.0}}],
    "links": [{"from": ["s1", "out"], "to": ["s2", "x"]}],
    "inputs": [{"name": "x", "to": [["s1", "x"]]}],
    "outputs": [{"name": "out", "from": ["s2", "out"]}],
    "params": [{"name": "f", "to": [["s1", "factor"]]}],
}


def doc(nodes, links, definitions=None, fmt="nodegraph/2") -> dict:
    out = {"format": fmt, "name": "groups", "description": "", "seed": 0, "nodes": nodes, "links": links}
    if definitions is not None:
        out["definitions"] = definitions
    return out


def session(d: dict) -> nodegraph.Session:
    return nodegraph.Session(loads(json.dumps(d)), REGISTRY)


def two_instances() -> nodegraph.Session:
    return session(doc(
        [{"id": "a", "type": "ToyConst", "params": {"value": [1.0, 2.0]}},
         {"id": "g1", "type": "group:scale2", "params": {"f": 10.0}},
         {"id": "g2", "type": "group:scale2", "params": {}},
         {"id": "after", "type": "ToyScale", "params": {"factor": 1.0}}],
        [{"from": ["a", "out"], "to": ["g1", "x"]}, {"from": ["a", "out"], "to": ["g2", "x"]},
         {"from": ["g1", "out"], "to": ["after", "x"]}],
        {"scale2": SCALE2}))


# ------------------------------------------------------------------------------------------- format


def test_new_format_round_trips_and_old_files_keep_their_format(tmp_path):
    s = two_instances()
    text = s.dumps()
    assert json.loads(text)["format"] == "nodegraph/2"
    assert json.loads(text)["definitions"]["scale2"]["params"] == [{"name": "f", "to": [["s1", "factor"]]}]
    assert loads(text).dumps() == text
    old = nodegraph.new(name="old").graph
    old.add_node("ToyConst", "a")
    for fmt in ("nodegraph/1", None):
        d = old.to_json() | {"format": fmt}
        if fmt is None:
            del d["format"]
        text = nodegraph.graph.dumps(d)
        assert loads(text).dumps() == text  # an old file is written back as it came
    g = loads(nodegraph.graph.dumps(old.to_json() | {"format": "nodegraph/1"}))
    g.nodes["a"].mode = "mute"
    assert g.to_json()["format"] == "nodegraph/2"  # using a version-2 feature upgrades it
    with pytest.raises(GraphError) as err:
        loads(json.dumps(doc([{"id": "a", "type": "ToyConst", "params": {}, "mode": "sleep"}], [],
                             {"bad/name": {}, "x": {"inputs": [{"name": "i"}], "colour": 1}})))
    shown = [str(p) for p in err.value.problems]
    assert any("a.mode" in p and "sleep" in p for p in shown)
    assert any("definitions.bad/name" in p for p in shown)
    assert any("definitions.x.inputs[0]" in p for p in shown)
    assert any("definitions.x.colour" in p and "unknown definition key" in p for p in shown)


def test_fmt_keeps_groups_and_modes_and_lays_out_inside_definitions(tmp_path):
    from nodegraph.cli import main
    d = two_instances().to_json()
    d["nodes"][3]["mode"] = "bypass"
    path = tmp_path / "g.json"
    path.write_text(json.dumps(d))  # not canonical, and the definition's nodes have no positions
    assert main(["fmt", str(path)]) == 0
    again = json.loads(path.read_text())
    assert again["nodes"][3]["mode"] == "bypass"
    ours, theirs = again["definitions"]["scale2"], d["definitions"]["scale2"]
    assert {k: ours[k] for k in ("inputs", "outputs", "params", "links")} == \
        {k: theirs[k] for k in ("inputs", "outputs", "params", "links")}
    assert [n["ui"]["pos"] for n in ours["nodes"]] == [[40, 40], [380, 40]]  # s1 -> s2, left to right
    assert nodegraph.graph.load(path).dumps() == path.read_text()
    assert main(["fmt", str(path)]) == 0 and nodegraph.graph.load(path).dumps() == path.read_text()


# ------------------------------------------------------------------------------------------- flattening


def test_instances_expand_with_path_ids_and_share_one_definition():
    s = two_instances()
    out = s.run(device="cpu")
    assert out["g1/s2"]["out"].tolist() == [30.0, 60.0]  # f=10 then x3
    assert out["g2/s2"]["out"].tolist() == [6.0, 12.0]   # the definition's own factor 2
    assert out["after"]["out"].tolist() == [30.0, 60.0]
    assert "g1" not in out and "g1/s1" in out
    s.graph.definitions["scale2"].nodes["s2"].params["factor"] = 5.0  # edit the definition: both change
    out = s.run(device="cpu")
    assert out["g1/s2"]["out"].tolist() == [50.0, 100.0] and out["g2/s2"]["out"].tolist() == [10.0, 20.0]
    assert s.executor.counts["a"] == 1  # outside the groups nothing re-ran


def test_editing_one_instance_reruns_only_its_affected_nodes():
    s = two_instances()
    s.run(device="cpu")
    s.set_param("g2", "f", 7.0)
    out = s.run(device="cpu")
    assert out["g2/s2"]["out"].tolist() == [21.0, 42.0]
    counts = s.executor.counts
    assert (counts["g2/s1"], counts["g2/s2"]) == (2, 2)
    assert (counts["a"], counts["g1/s1"], counts["g1/s2"], counts["after"]) == (1, 1, 1, 1)


def test_problems_and_node_errors_name_the_path():
    s = two_instances()
    s.set_param("g1", "f", "big")
    s.set_param("g2", "nope", 1.0)
    shown = [str(p) for p in s.validate()]
    assert any(p.startswith("g1/s1.factor:") for p in shown), shown
    assert any(p.startswith("g2.nope:") and "exposes ['f']" in p for p in shown), shown
    with pytest.raises(GraphError, match="inside the group instance 'g1'"):
        s.set_params({"g1/s1.factor": 3.0})
    # a link to a port the group does not expose, and a group that does not exist
    bad = session(doc([{"id": "a", "type": "ToyConst", "params": {}},
                       {"id": "g", "type": "group:scale2", "params": {}},
                       {"id": "h", "type": "group:missing", "params": {}}],
                      [{"from": ["a", "out"], "to": ["g", "y"]}], {"scale2": SCALE2}))
    shown = [str(p) for p in bad.validate()]
    assert any(p.startswith("g.y:") and "no input 'y'" in p for p in shown), shown
    assert any(p.startswith("h.type:") and "unknown group 'missing'" in p for p in shown), shown
    assert "g.x: required group input (Tensor) is not connected" in shown, shown  # the port to connect
    # a node failing while it runs
    mse = {"nodes": [{"id": "mse", "type": "ToyMSE", "params": {}}], "links": [],
           "inputs": [{"name": "a", "to": [["mse", "a"]]}, {"name": "b", "to": [["mse", "b"]]}],
           "outputs": [{"name": "loss", "from": ["mse", "loss"]}], "params": []}
    s = session(doc([{"id": "a", "type": "ToyConst", "params": {"value": [1.0, 2.0]}},
                     {"id": "b", "type": "ToyConst", "params": {"value": [1.0]}},
                     {"id": "m", "type": "group:mse", "params": {}}],
                    [{"from": ["a", "out"], "to": ["m", "a"]}, {"from": ["b", "out"], "to": ["m", "b"]}],
                    {"mse": mse}))
    with pytest.raises(NodeError) as err:
        s.run(device="cpu")
    assert err.value.problem.node == "m/mse" and err.value.problem.field == "b"


def test_previews_and_events_name_the_path():
    show = {"nodes": [{"id": "img", "type": "ToyImage", "params": {}},
                      {"id": "show", "type": "PreviewImage", "params": {}}],
            "links": [{"from": ["img", "images"], "to": ["show", "images"]}],
            "inputs": [{"name": "x", "to": [["img", "x"]]}], "outputs": [], "params": []}
    s = session(doc([{"id": "a", "type": "ToyConst", "params": {"value": [0.5]}},
                     {"id": "v", "type": "group:show", "params": {}}],
                    [{"from": ["a", "out"], "to": ["v", "x"]}], {"show": show}))
    events = []
    s.executor.bus.subscribe(lambda e: events.append(e))
    s.run(device="cpu")
    previews = [e for e in events if e["type"] == "preview"]
    assert [e["node"] for e in previews] == ["v/show"]
    assert {e["node"] for e in events if e["type"] == "node_finished"} == {"a", "v/img", "v/show"}


def test_training_across_a_group_boundary():
    """A learnable inside a group, trained by an Optimize outside it; only that instance's learnable trains."""
    fit = {"nodes": [{"id": "w", "type": "ToyLearnable", "params": {}}], "links": [],
           "inputs": [{"name": "like", "to": [["w", "like"]]}], "outputs": [{"name": "w", "from": ["w", "out"]}],
           "params": [{"name": "init", "to": [["w", "init"]]}]}
    s = session(doc(
        [{"id": "target", "type": "ToyConst", "params": {"value": [1.0, 2.0, 3.0]}},
         {"id": "fit", "type": "group:fit", "params": {"init": 0.5}},
         {"id": "mse", "type": "ToyMSE", "params": {}},
         {"id": "opt", "type": "Optimize", "params": {"lr": 0.3, "iterations": 80, "train": ["fit/w"]}},
         {"id": "reader", "type": "ToyScale", "params": {"factor": 1.0}}],
        [{"from": ["target", "out"], "to": ["fit", "like"]}, {"from": ["fit", "w"], "to": ["mse", "a"]},
         {"from": ["target", "out"], "to": ["mse", "b"]}, {"from": ["mse", "loss"], "to": ["opt", "loss"]},
         {"from": ["fit", "w"], "to": ["reader", "x"]}],
        {"fit": fit}))
    out = s.run(device="cpu")
    assert torch.allclose(out["reader"]["out"], torch.tensor([1.0, 2.0, 3.0]), atol=0.05)
    assert s.prepare().plan.trains("opt") == ["fit/w"]


def test_nested_groups_and_definition_cycles():
    outer = {"nodes": [{"id": "inner", "type": "group:scale2", "params": {"f": 4.0}},
                       {"id": "s", "type": "ToyScale", "params": {"factor": 0.5}}],
             "links": [{"from": ["inner", "out"], "to": ["s", "x"]}],
             "inputs": [{"name": "x", "to": [["inner", "x"]]}], "outputs": [{"name": "out", "from": ["s", "out"]}],
             "params": [{"name": "g", "to": [["inner", "f"]]}]}
    d = doc([{"id": "a", "type": "ToyConst", "params": {"value": [1.0]}},
             {"id": "o", "type": "group:outer", "params": {"g": 8.0}}],
            [{"from": ["a", "out"], "to": ["o", "x"]}], {"scale2": SCALE2, "outer": outer})
    s = session(d)
    out = s.run(device="cpu")
    assert out["o/inner/s2"]["out"].tolist() == [24.0]  # 1 * 8 (g -> inner's f -> s1.factor) * 3
    assert out["o/s"]["out"].tolist() == [12.0]         # then * 0.5
    assert s.prepare(targets=["o"]).ok and set(s.run(device="cpu", targets=["o/inner"])) == \
        {"a", "o/inner/s1", "o/inner/s2"}
    unlinked = json.loads(json.dumps(d))
    unlinked["links"] = []
    assert [str(p) for p in session(unlinked).validate()] == ["o.x: required group input (Tensor) is not connected"]
    loop = json.loads(json.dumps(SCALE2))
    loop["nodes"][1] = {"id": "s2", "type": "group:outer", "params": {}}
    d["definitions"]["scale2"] = loop  # scale2 contains outer, which contains scale2
    shown = [str(p) for p in session(d).validate()]
    assert any("cycle: outer -> scale2 -> outer" in p for p in shown), shown


def test_instance_spec_gives_the_inner_ports_types_and_params():
    s = two_instances()
    spec = instance_spec(s.graph, "scale2", REGISTRY)
    assert spec["name"] == "group:scale2" and spec["doc"] == "scale twice"
    assert [(p["name"], p["type"]) for p in spec["inputs"]] == [("x", "Tensor")]
    assert [(p["name"], p["type"]) for p in spec["outputs"]] == [("out", "Tensor")]
    assert spec["params"][0]["name"] == "f" and spec["params"][0]["default"] == 2.0
    assert spec["params"][0]["kind"] == "float"


# ------------------------------------------------------------------------------------------- modes


def chain(mode_b: str | None, mode_c: str | None = None) -> nodegraph.Session:
    nodes = [{"id": "a", "type": "ToyConst", "params": {"value": [1.0]}},
             {"id": "b", "type": "ToyScale", "params": {"factor": 2.0}},
             {"id": "c", "type": "ToyScale", "params": {"factor": 3.0}},
             {"id": "side", "type": "ToyScale", "params": {"factor": 5.0}}]
    for n, m in (("b", mode_b), ("c", mode_c)):
        if m:
            nodes[[x["id"] for x in nodes].index(n)]["mode"] = m
    return session(doc(nodes, [{"from": ["a", "out"], "to": ["b", "x"]}, {"from": ["b", "out"], "to": ["c", "x"]},
                               {"from": ["a", "out"], "to": ["side", "x"]}], fmt="nodegraph/2"))


def test_bypass_passes_the_matching_input_through():
    s = chain("bypass")
    events = []
    s.executor.bus.subscribe(events.append)
    out = s.run(device="cpu")
    assert out["c"]["out"].tolist() == [3.0] and "b" not in out and s.executor.counts["b"] == 0
    assert events[0]["bypassed"] == ["b"]
    assert loads(s.dumps()).nodes["b"].mode == "bypass"
    two = chain("bypass", "bypass")  # bypasses in a row pass through each other
    assert two.run(device="cpu")["side"]["out"].tolist() == [5.0]
    # a node with no input of its output's type cannot be bypassed when something reads that output
    s = chain(None)
    s.graph.nodes["a"].mode = "bypass"
    shown = [str(p) for p in s.validate()]
    assert shown == ["a.mode: cannot be bypassed: no input of type Tensor to pass on as 'out'"]


def test_mute_skips_the_node_and_what_only_it_feeds():
    s = chain("mute")
    out = s.run(device="cpu")
    assert set(out) == {"a", "side"}  # c needs b's output, so it is skipped too
    assert s.prepare().flat.muted == ["b", "c"]
    # one muted loss of two: Optimize still trains on the other
    s = nodegraph.Session(toy_nodes_training(), REGISTRY)
    out = s.run(device="cpu")
    assert "mse2" not in out and torch.allclose(out["reader"]["out"], torch.tensor([2.0, 4.0, 6.0]), atol=0.05)


def toy_nodes_training():
    g = nodegraph.new(registry=REGISTRY, name="two losses").graph
    g.add_node("ToyConst", "target", value=[2.0, 4.0, 6.0])
    g.add_node("ToyLearnable", "w")
    g.add_node("ToyMSE", "mse")
    g.add_node("ToyMSE", "mse2", weight=100.0)
    g.add_node("ToyConst", "wrong", value=[-9.0, -9.0, -9.0])
    g.add_node("Optimize", "opt", lr=0.3, iterations=80)
    g.add_node("ToyScale", "reader", factor=1.0)
    g.connect("w", "out", "reader", "x")
    for src, sp, dst, dp in [("target", "out", "w", "like"), ("w", "out", "mse", "a"), ("target", "out", "mse", "b"),
                             ("w", "out", "mse2", "a"), ("wrong", "out", "mse2", "b"),
                             ("mse", "loss", "opt", "loss"), ("mse2", "loss", "opt", "loss")]:
        g.connect(src, sp, dst, dp)
    g.nodes["mse2"].mode = "mute"
    return g


def test_a_muted_group_mutes_its_nodes_and_a_group_cannot_be_bypassed():
    s = two_instances()
    s.graph.nodes["g1"].mode = "mute"
    out = s.run(device="cpu")
    assert set(out) == {"a", "g2/s1", "g2/s2"}
    s.graph.nodes["g1"].mode = "bypass"
    assert [str(p) for p in s.validate()] == ["g1.mode: a group cannot be bypassed; bypass nodes inside it, "
                                              "or mute it"]


# ------------------------------------------------------------------------------------------- editing, CLI


def test_group_nodes_then_ungroup_keeps_what_the_graph_computes():
    from nodegraph.grouping import group_nodes, ungroup
    from test_engine import chain_graph
    s = chain_graph()  # a -> b (x2) -> c (x3); a -> side (x5)
    s.executor.registry = REGISTRY
    for i, n in enumerate(s.nodes.values()):
        n.ui["pos"] = [100 * i, 10 * i]
    before = {k: v["out"].tolist() for k, v in s.run(device="cpu").items()}
    gid = group_nodes(s.graph, ["b", "c"], "twice", params=["b.factor"])
    definition = s.graph.definitions["twice"]
    assert [(e.name, e.targets) for e in definition.inputs] == [("x", [("b", "x")])]
    assert [(e.name, e.targets) for e in definition.outputs] == []  # nothing outside read c
    assert definition.nodes["b"].ui["pos"] == [0, 0] and definition.nodes["c"].ui["pos"] == [100, 10]
    assert s.nodes[gid].ui["pos"] == [100, 10] and s.nodes[gid].type == "group:twice"
    out = s.run(device="cpu")
    assert out[f"{gid}/c"]["out"].tolist() == before["c"] and out["side"]["out"].tolist() == before["side"]
    assert s.executor.counts["a"] == 1  # the cache carried across: a is unchanged
    assert loads(s.dumps()).dumps() == s.dumps()
    s.set_param(gid, "factor", 4.0)
    ids = ungroup(s.graph, gid)
    assert sorted(ids) == ["b", "c"] and s.nodes["b"].params["factor"] == 4.0
    assert s.nodes["c"].ui["pos"] == [200, 20]
    assert s.run(device="cpu")["c"]["out"].tolist() == [x * 2 for x in before["c"]]
    with pytest.raises(ValueError):
        group_nodes(s.graph, ["b"], "twice")  # the name is taken


def test_cli_runs_a_graph_with_groups(tmp_path):
    from test_cli import nodegraph_cli
    path = tmp_path / "groups.json"
    two_instances().save(path)
    out = tmp_path / "out"
    result = nodegraph_cli("run", str(path), "--out", str(out), "--device", "cpu", "--set", "g2.f=4")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["nodes"]) == {"a", "g1/s1", "g1/s2", "g2/s1", "g2/s2", "after"}
    finished = [json.loads(l) for l in (out / "events.jsonl").read_text().splitlines()]
    summaries = {e["node"]: e["outputs"]["out"] for e in finished if e["type"] == "node_finished"}
    assert summaries["g2/s2"]["max"] == 24.0  # 2 * 4 * 3


# ------------------------------------------------------------------------------------------- example, library


def test_the_three_views_example_renders_the_tutorial_view_in_its_front_instance(graphs_dir, tmp_path):
    """The group reproduces the tutorial's pipeline: its front instance renders what render_textured_cow does."""
    three = nodegraph.load(graphs_dir / "render_three_views.json")
    assert three.validate() == [] and "--set raster.image_size=" in three.description
    three.set_params({"raster.image_size": 32})
    out = three.run(device="cpu", out_dir=tmp_path)
    cow = nodegraph.load(graphs_dir / "render_textured_cow.json")
    cow.set_params({"raster.image_size": 32})
    reference = cow.run(device="cpu", out_dir=tmp_path / "cow")["render"]["images"]
    assert torch.equal(out["front/render"]["images"], reference)
    assert not torch.equal(out["left/render"]["images"], reference)
    assert (tmp_path / "three_views.png").is_file()
    assert three.executor.counts["cow"] == 1  # one mesh load feeds all three instances


def test_library_saves_a_group_with_what_it_uses_and_lists_it(tmp_path):
    from nodegraph.server.library import Library, PathRefused
    outer = {"nodes": [{"id": "inner", "type": "group:scale2", "params": {}}], "links": [],
             "inputs": [{"name": "x", "to": [["inner", "x"]]}], "outputs": [{"name": "out", "from": ["inner", "out"]}],
             "params": []}
    d = doc([{"id": "o", "type": "group:outer", "params": {}}], [],
            {"scale2": SCALE2, "outer": outer, "unused": SCALE2})
    library = Library(tmp_path / "lib")
    path = library.save_group("outer", d)
    assert path == (tmp_path / "lib" / "groups" / "outer.json").resolve()
    listed = library.groups()
    assert [g["name"] for g in listed] == ["outer"]
    assert set(listed[0]["definitions"]) == {"outer", "scale2"}  # what it uses, not the unused one
    assert library.list("library") == []  # groups are not graphs to open
    with pytest.raises(ValueError):
        library.save_group("missing", d)
    d["definitions"]["../x"] = SCALE2
    with pytest.raises((PathRefused, GraphError)):
        library.save_group("../x", d)
