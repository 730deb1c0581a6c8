"""The registry is an object: the library registers from its own module list, plugins come from entry points
and NODEGRAPH_PLUGINS, a private registry never leaks into another, and declarations are checked."""
from __future__ import annotations

import pytest

import nodegraph
import toy_nodes
from nodegraph.errors import GraphError
from nodegraph.graph import Graph
from nodegraph.registry import Registry, default_registry
from nodegraph.spec import Input, Output, Texts, Trainer, node


def test_the_default_registry_is_the_library_listed_by_the_library_itself():
    from nodegraph import nodes as library

    registry = default_registry()
    modules = {spec.fn.__module__ for spec in registry}
    assert modules == {f"nodegraph.nodes.{m}" for m in library.MODULES}
    assert len(registry) >= 100 and registry.get("MeshRasterizer") is not None
    assert registry.load_errors == {}
    assert "ToyConst" not in registry  # the tests' toy nodes live in private registries only


def test_a_private_registry_adds_nodes_without_touching_the_default():
    mine = default_registry().with_modules(toy_nodes)
    assert "ToyConst" in mine and "MeshRasterizer" in mine
    assert "ToyConst" not in default_registry()
    only = Registry.of(toy_nodes)
    assert {"ToyConst", "ToyLearnable", "ToyMSE", "ToyScale"} <= set(only.names())
    assert all(name.startswith("Toy") for name in only.names())  # nothing of the library
    s = nodegraph.new(registry=only)
    s.add_node("ToyConst", "c")
    s.add_node("LoadMesh", "m", file="x.obj")
    assert [p.field for p in s.validate()] == ["type"]  # LoadMesh is unknown to this registry


def test_plugins_come_from_the_entry_point_group_of_installed_distributions(tmp_path, monkeypatch):
    dist = tmp_path / "my_nodegraph_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-nodegraph-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nodegraph.nodes]\ntoys = toy_nodes\nbroken = no_such_module_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    registry.load_plugins()
    assert "ToyConst" in registry
    assert "no_such_module_here" in registry.load_errors  # reported; the rest loaded


def test_plugins_named_in_the_environment_load_and_a_broken_one_is_reported(monkeypatch):
    monkeypatch.setenv("NODEGRAPH_PLUGINS", "toy_nodes, nodegraph_missing_plugin")
    registry = Registry()
    registry.load_plugins()
    assert "ToyMSE" in registry and "nodegraph_missing_plugin" in registry.load_errors


def test_a_name_declared_twice_is_refused():
    @node(category="toy", outputs=[Output("out", "Tensor")], name="ToyConst")
    def imposter(ctx):
        """Another node with a taken name."""

    registry = Registry.of(toy_nodes)
    with pytest.raises(TypeError, match="declared twice"):
        registry.add(imposter.spec)


def test_a_trainer_declares_its_contract_and_a_wrong_one_is_refused_at_declaration():
    spec = default_registry().get("Optimize")
    assert spec.trainer == Trainer(loss="loss", done="done", train="train", after="after")

    with pytest.raises(TypeError, match="loss input 'losses'"):
        @node(category="toy", trainer=Trainer(loss="losses"), inputs=[Input("loss", "Loss", multiple=True),
              Input("after", "Trained", optional=True)], params=[Texts("train", [])],
              outputs=[Output("done", "Trained")])
        def BadTrainer(ctx, loss, after, train):
            """Names an input it does not have."""

    with pytest.raises(TypeError, match="done output"):
        @node(category="toy", trainer=Trainer(), inputs=[Input("loss", "Loss", multiple=True),
              Input("after", "Trained", optional=True)], params=[Texts("train", [])],
              outputs=[Output("done", "Tensor")])
        def WrongType(ctx, loss, after, train):
            """Its done output is not Trained."""


def test_the_document_knows_nothing_about_running():
    assert not any(hasattr(Graph, name) for name in ("run", "executor", "validate"))
    s = nodegraph.new(name="doc")
    assert isinstance(s.graph, Graph) and s.graph.name == "doc"


def test_a_node_sees_the_loop_only_when_it_is_a_trainer(tmp_path):
    seen = {}

    @node(category="toy", inputs=[Input("x", "Tensor")], outputs=[Output("out", "Tensor")])
    def ToyLoopProbe(ctx, x):
        """Records ctx.loop."""
        seen[ctx.node_id] = ctx.loop
        return x

    registry = toy_nodes.REGISTRY.with_modules()
    registry.add(ToyLoopProbe.spec)
    s = nodegraph.new(registry=registry)
    s.add_node("ToyConst", "target")
    s.add_node("ToyLoopProbe", "probe")
    s.add_node("ToyLearnable", "w")
    s.add_node("ToyMSE", "mse")
    s.add_node("Optimize", "opt", iterations=3)
    for a, b in [("target.out", "probe.x"), ("probe.out", "w.like"), ("w.out", "mse.a"), ("probe.out", "mse.b"),
                 ("mse.loss", "opt.loss")]:
        s.connect(*a.split("."), *b.split("."))
    out = s.run(device="cpu", out_dir=tmp_path)
    assert seen == {"probe": None}
    assert out["opt"]["done"].trainer == "opt" and len(out["opt"]["history"].series["total"]) == 3


def test_run_problems_all_at_once_from_prepare():
    s = nodegraph.new(registry=toy_nodes.REGISTRY)
    s.add_node("ToyScale", "a", factor="x")
    s.add_node("Nope", "b")
    with pytest.raises(GraphError) as err:
        s.run(device="cpu", targets=["missing"])
    assert {(p.node, p.field) for p in err.value.problems} == {("a", "x"), ("a", "factor"), ("b", "type"),
                                                              ("missing", None)}

