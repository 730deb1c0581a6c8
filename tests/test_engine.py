"""The engine on toy nodes: JSON round trips, validation, caching, training loops, taps, seeds, cancel, NaN."""
from __future__ import annotations

import json
import threading

import pytest
import torch

import nodegraph
from toy_nodes import REGISTRY
import toy_nodes
from nodegraph.errors import Cancelled, GraphError, NodeError
from nodegraph.graph import loads
from nodegraph.session import Session


def chain_graph() -> Session:
    g = nodegraph.new(registry=REGISTRY, name="chain")
    g.add_node("ToyConst", "a", value=[1.0, 2.0])
    g.add_node("ToyScale", "b", factor=2.0)
    g.add_node("ToyScale", "c", factor=3.0)
    g.add_node("ToyScale", "side", factor=5.0)
    g.connect("a", "out", "b", "x")
    g.connect("b", "out", "c", "x")
    g.connect("a", "out", "side", "x")
    return g


def training_graph(iterations: int = 60, sigma: float = 0.0) -> Session:
    """target -> scaled; learnable w (shaped like scaled) -> noise -> MSE(w, scaled) -> Optimize; taps and readers."""
    g = nodegraph.new(registry=REGISTRY, name="toy-training", seed=3)
    g.add_node("ToyConst", "target", value=[1.0, 2.0, 3.0])
    g.add_node("ToyScale", "scaled", factor=2.0)
    g.add_node("ToyLearnable", "w")
    g.add_node("ToyNoise", "noisy", sigma=sigma)
    g.add_node("ToyMSE", "mse")
    g.add_node("Optimize", "opt", lr=0.3, iterations=iterations, preview_every=1)
    g.add_node("ToyPreview", "tap")
    g.add_node("ToyScale", "reader", factor=1.0)
    for src, sp, dst, dp in [("target", "out", "scaled", "x"), ("scaled", "out", "w", "like"),
                             ("w", "out", "noisy", "x"), ("noisy", "out", "mse", "a"), ("scaled", "out", "mse", "b"),
                             ("mse", "loss", "opt", "loss"), ("w", "out", "tap", "x"), ("w", "out", "reader", "x")]:
        g.connect(src, sp, dst, dp)
    return g


# ------------------------------------------------------------------------------------------- JSON


def test_json_round_trip_is_identity():
    g = training_graph()
    g.nodes["w"].ui["pos"] = [10, 20]
    text = g.dumps()
    again = loads(text)
    assert again.dumps() == text
    assert again.nodes["w"].ui == {"pos": [10, 20]}
    assert [l.to_json() for l in again.links] == [l.to_json() for l in g.links]


def test_malformed_json_and_unknown_format_are_reported():
    with pytest.raises(GraphError, match="not valid JSON"):
        loads("{nope")
    with pytest.raises(GraphError) as exc:
        loads(json.dumps({"format": "nodegraph/9", "nodes": [], "links": [], "extra": 1}))
    fields = {p.field for p in exc.value.problems}
    assert {"format", "extra"} <= fields


def test_save_is_atomic_and_keeps_the_old_file_on_failure(tmp_path):
    g = chain_graph()
    path = g.save(tmp_path / "g.json")
    before = path.read_text()
    g.nodes["a"].params["value"] = object()  # not JSON-serialisable: the write must fail cleanly
    with pytest.raises(TypeError):
        g.save(path)
    assert path.read_text() == before


# ------------------------------------------------------------------------------------- validation


def test_validation_reports_every_problem_with_node_and_field():
    g = chain_graph()
    g.add_node("NoSuchNode", "ghost")
    g.nodes["b"].params["factor"] = "big"
    g.nodes["c"].params["colour"] = 1
    g.add_node("ToyMSE", "mse")  # both inputs missing
    g.connect("a", "nope", "side", "x")  # unknown output, and a second link into a single input
    problems = {(p.node, p.field) for p in g.validate()}
    assert ("ghost", "type") in problems
    assert ("b", "factor") in problems
    assert ("c", "colour") in problems
    assert ("mse", "a") in problems and ("mse", "b") in problems
    assert ("a", "nope") in problems
    assert ("side", "x") in problems


def test_type_mismatch_and_cycle_are_refused():
    g = chain_graph()
    g.add_node("ToyMSE", "mse")
    g.add_node("Optimize", "opt")
    g.connect("mse", "loss", "side", "x")  # Loss into a Tensor input
    problems = g.validate()
    assert any(p.node == "side" and "expects Tensor" in p.message for p in problems)
    g2 = chain_graph()
    g2.connect("c", "out", "b", "x")
    assert any("cycle" in p.message for p in g2.validate())


def test_optimize_without_learnable_and_bad_lr_are_refused():
    g = chain_graph()
    g.add_node("ToyMSE", "mse")
    g.add_node("Optimize", "opt", lr=0.0, iterations=0)
    g.connect("b", "out", "mse", "a")
    g.connect("c", "out", "mse", "b")
    g.connect("mse", "loss", "opt", "loss")
    problems = {(p.node, p.field) for p in g.validate()}
    assert {("opt", "lr"), ("opt", "iterations")} <= problems
    g.nodes["opt"].params.update(lr=0.1, iterations=5)
    problems = g.validate()
    assert [(p.node, p.field) for p in problems] == [("opt", "loss")]
    with pytest.raises(GraphError):
        g.run(device="cpu")


# -------------------------------------------------------------------------------------- execution


def test_rerun_after_an_edit_recomputes_only_what_depends_on_it():
    g = chain_graph()
    out = g.run(device="cpu")
    assert out["c"]["out"].tolist() == [6.0, 12.0]
    assert dict(g.executor.counts) == {"a": 1, "b": 1, "c": 1, "side": 1}
    g.executor.counts.clear()
    g.run(device="cpu")
    assert sum(g.executor.counts.values()) == 0
    g.set_param("b", "factor", 4.0)
    out = g.run(device="cpu")
    assert dict(g.executor.counts) == {"b": 1, "c": 1}
    assert out["c"]["out"].tolist() == [12.0, 24.0]


def test_cache_holds_only_the_latest_outputs():
    g = chain_graph()
    for factor in range(20):
        g.set_param("b", "factor", float(factor))
        g.run(device="cpu")
    assert set(g.executor.cache) == {"a", "b", "c", "side"}


def test_run_up_to_a_target_runs_only_its_ancestors():
    g = chain_graph()
    g.run(device="cpu", targets=["b"])
    assert set(g.executor.counts) == {"a", "b"}


def test_failure_names_the_node_and_keeps_the_server_process_alive():
    g = training_graph()
    g.nodes["target"].params["value"] = [1.0, 2.0]
    g.add_node("ToyConst", "other", value=[1.0, 2.0, 3.0])
    g.add_node("ToyMSE", "bad")
    g.connect("target", "out", "bad", "a")
    g.connect("other", "out", "bad", "b")
    events = []
    g.executor.bus.subscribe(events.append)
    with pytest.raises(NodeError) as exc:
        g.run(device="cpu")
    assert exc.value.problem.node == "bad" and exc.value.problem.field == "b"
    assert events[-1]["type"] == "run_finished" and events[-1]["status"] == "error"


# --------------------------------------------------------------------------------------- training


def test_training_counts_static_once_dynamic_every_iteration_and_readers_after():
    g = training_graph(iterations=80)
    out = g.run(device="cpu")
    counts = g.executor.counts
    assert counts["target"] == 1 and counts["scaled"] == 1  # static: once
    assert counts["noisy"] == 80 and counts["mse"] == 80  # dynamic: every iteration
    assert counts["reader"] == 1  # reads the learnable outside the loop: once, after training
    assert torch.allclose(out["reader"]["out"], torch.tensor([2.0, 4.0, 6.0]), atol=0.1)
    history = out["opt"]["history"].series
    assert history["total"][-1] < history["total"][0] * 0.01
    assert len(history["mse"]) == 80


def test_training_is_cached_and_retrains_from_scratch_after_an_edit():
    g = training_graph(iterations=30)
    first = g.run(device="cpu")["opt"]["history"].series["total"]
    g.executor.counts.clear()
    g.run(device="cpu")
    assert g.executor.counts["opt"] == 0 and g.executor.counts["mse"] == 0
    g.set_param("opt", "iterations", 31)
    second = g.run(device="cpu")["opt"]["history"].series["total"]
    assert second[:30] == pytest.approx(first)  # started again from the initial value


def test_same_seed_gives_the_same_losses_and_stochastic_nodes_change_per_iteration():
    a = training_graph(iterations=20, sigma=0.1).run(device="cpu")["opt"]["history"].series["total"]
    b = training_graph(iterations=20, sigma=0.1).run(device="cpu")["opt"]["history"].series["total"]
    assert a == b
    g = training_graph(iterations=20, sigma=0.1)
    g.set_param("opt", "seed", 1)
    c = g.run(device="cpu")["opt"]["history"].series["total"]
    assert c != a


def test_preview_taps_run_under_no_grad_and_do_not_change_the_losses():
    toy_nodes.SEEN.clear()
    with_taps = training_graph(iterations=30, sigma=0.1)
    with_taps.executor.previews.max_hz = 0  # every frame
    losses = with_taps.run(device="cpu")["opt"]["history"].series["total"]
    in_loop = [it for it, _ in toy_nodes.SEEN if it is not None]
    assert in_loop, "the tap never ran inside the loop"
    no_taps = training_graph(iterations=30, sigma=0.1)
    no_taps.set_param("opt", "preview_every", 0)
    assert no_taps.run(device="cpu")["opt"]["history"].series["total"] == losses


def test_staged_training_hands_the_first_stage_result_to_the_second():
    g = training_graph(iterations=50)
    g.add_node("ToyMSE", "mse2")
    g.add_node("Optimize", "opt2", lr=0.05, iterations=5)
    g.connect("w", "out", "mse2", "a")
    g.connect("scaled", "out", "mse2", "b")
    g.connect("mse2", "loss", "opt2", "loss")
    g.connect("opt", "done", "opt2", "after")
    out = g.run(device="cpu")
    stage2 = out["opt2"]["history"].series["total"]
    assert stage2[0] < 0.5  # it started where stage 1 ended (from zero the loss is 18.7)
    g.set_param("opt2", "lr", 0.06)  # re-running stage 2 alone restarts from stage 1's snapshot
    g.executor.counts.clear()
    again = g.run(device="cpu")["opt2"]["history"].series["total"]
    assert g.executor.counts["opt"] == 0 and g.executor.counts["opt2"] == 1
    assert again[0] == pytest.approx(stage2[0])


def test_two_unordered_stages_training_one_node_are_refused():
    g = training_graph()
    g.add_node("ToyMSE", "mse2")
    g.add_node("Optimize", "opt2")
    g.connect("w", "out", "mse2", "a")
    g.connect("scaled", "out", "mse2", "b")
    g.connect("mse2", "loss", "opt2", "loss")
    assert any(p.field == "after" for p in g.validate())


def test_cancel_stops_within_an_iteration_and_keeps_trained_values():
    g = training_graph(iterations=100000)
    progress = []

    def listener(event):
        if event["type"] == "progress":
            progress.append(event["iteration"])
            if event["iteration"] >= 20:
                g.executor.cancel()

    g.executor.bus.subscribe(listener)
    with pytest.raises(Cancelled):
        g.run(device="cpu")
    assert g.executor.counts["mse"] <= progress[-1] + 2
    w = g.executor.state["w"].tensors["w"].detach()
    assert torch.all(w > 0.5)  # it had moved from 0 towards the target


def test_non_finite_loss_names_the_first_node_that_produced_it():
    g = training_graph(iterations=5)
    g.set_param("noisy", "sigma", float("inf"))
    problems = g.validate()
    assert any(p.node == "noisy" and p.field == "sigma" for p in problems)  # caught before running
    g.set_param("noisy", "sigma", 0.0)
    g.set_param("target", "value", [1.0, 2.0, 1e38])
    g.set_param("scaled", "factor", 1e10)  # overflows to inf in `scaled`, a static node feeding the loss
    with pytest.raises(NodeError) as exc:
        g.run(device="cpu")
    assert exc.value.problem.node == "scaled"
    assert "non-finite" in str(exc.value)


def test_events_arrive_in_order():
    g = training_graph(iterations=10)
    types = []
    g.executor.bus.subscribe(lambda e: types.append(e["type"]))
    g.run(device="cpu")
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert types.index("node_started") < types.index("progress") < len(types) - 1


def test_events_name_an_aliased_node_by_its_type():
    """A node written under an alias (the tutorials' ``mesh_edge_loss``) starts and finishes as ``MeshEdgeLoss``."""
    g = nodegraph.new(registry=REGISTRY, name="alias")
    g.add_node("IcoSphere", "sphere", level=0)
    g.add_node("mesh_edge_loss", "edge")
    g.connect("sphere", "mesh", "edge", "mesh")
    events = []
    g.executor.bus.subscribe(lambda e: events.append(e) if e.get("node") == "edge" else None)
    g.run(device="cpu")
    g.run(device="cpu")  # the second run reports the cache hit
    seen = [(e["type"], e["node_type"]) for e in events if e["type"] in ("node_started", "node_finished")]
    assert seen == [("node_started", "MeshEdgeLoss"), ("node_finished", "MeshEdgeLoss"),
                    ("node_finished", "MeshEdgeLoss")]


def test_public_api_loads_and_runs_a_file(tmp_path):
    path = training_graph(iterations=5).save(tmp_path / "t.json")
    g = nodegraph.load(path, registry=REGISTRY)
    out = g.run(device="cpu")
    assert set(out) >= {"opt", "reader"}


def test_runs_are_serialised_between_threads():
    g = chain_graph()
    errors = []

    def worker():
        try:
            g.run(device="cpu")
        except Exception as exc:  # pragma: no cover - a failure shows in the assert
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("text, expected", [
    ("[" * 1000 + "]" * 1000, "nested too deeply"),
    ('{"format": "nodegraph/1", "nodes": ' + "[" * 100 + "]" * 100 + "}", "nested more than 64"),
    ('{"format": "nodegraph/1", "seed": ' + "9" * 5000 + "}", "not valid JSON"),
])
def test_documents_too_deep_or_with_huge_integers_are_graph_errors(text, expected):
    with pytest.raises(GraphError, match=expected):
        loads(text)


def test_a_graph_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(GraphError, match=r"not UTF-8 text \(byte 13\)"):
        nodegraph.load(path)


def test_malformed_parts_are_named_not_raised():
    doc = {"format": "nodegraph/1", "ui": [1], "": 1,
           "nodes": [{"id": "a\nforged.line: ok", "type": "ToyConst", "ui": "x"}],
           "links": [{"from": "ab", "to": ["a", "out"]}, {"from": ["a", "out"], "to": ["b", 3]}]}
    with pytest.raises(GraphError) as err:
        from nodegraph.graph import from_json
        from_json(doc)
    text = str(err.value)
    assert "ui: must be an object" in text and "'': unknown top-level key" in text
    assert "'a\\nforged.line: ok'.ui: must be an object" in text
    assert text.count("links[") == 2 and "four strings" in text
    assert len(text.splitlines()) == len(err.value.problems)  # no problem spans two lines


@pytest.mark.parametrize("value", [10**400, [1.0, 10**400, 2.0]])
def test_numbers_beyond_float_range_are_refused_naming_the_param(value):
    s = nodegraph.new(registry=REGISTRY)
    if isinstance(value, list):
        s.add_node("ToyConst", "c", value=value)
        field = "value"
    else:
        s.add_node("ToyConst", "c")
        s.add_node("ToyScale", "x", factor=value)
        s.connect("c", "out", "x", "x")
        field = "factor"
    problems = s.validate()
    assert [(p.field, "finite" in p.message) for p in problems] == [(field, True)]


def test_a_stochastic_node_whose_id_is_a_lone_surrogate_runs(tmp_path):
    s = nodegraph.new(registry=REGISTRY)
    s.add_node("ToyConst", "c")
    s.add_node("ToyNoise", "\ud800")
    s.connect("c", "out", "\ud800", "x")
    assert s.run(device="cpu", out_dir=tmp_path)["\ud800"]["out"].shape == (3,)


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_a_node_raising_systemexit_or_keyboardinterrupt_still_ends_the_run(exc, tmp_path):
    from nodegraph.spec import Output, node
    from nodegraph.errors import Cancelled, NodeError

    @node(category="toy", outputs=[Output("out", "Tensor")])
    def ToyExit(ctx):
        """Raises what a careless plugin might."""
        raise exc(3) if exc is SystemExit else exc()

    registry = REGISTRY.with_modules()
    registry.add(ToyExit.spec)
    s = nodegraph.new(registry=registry)
    s.add_node("ToyExit", "bye")
    events = []
    s.executor.bus.subscribe(events.append)
    expected = NodeError if exc is SystemExit else Cancelled
    with pytest.raises(expected):
        s.run(device="cpu", out_dir=tmp_path)
    assert events[-1]["type"] == "run_finished"
    assert events[-1]["status"] == ("error" if exc is SystemExit else "cancelled")
    if exc is SystemExit:
        assert events[-2]["type"] == "node_error" and events[-2]["node"] == "bye"


def test_editing_a_mesh_texture_reruns_the_loader(assets, tmp_path):
    import shutil

    folder = tmp_path / "cow"
    shutil.copytree(assets / "cow_mesh", folder)
    s = nodegraph.new(base_dir=tmp_path)
    s.add_node("LoadMesh", "cow", file="cow/cow.obj")
    first = s.run(device="cpu", out_dir=tmp_path / "o")["cow"]["mesh"].textures.maps_padded().clone()
    s.executor.counts.clear()
    s.run(device="cpu", out_dir=tmp_path / "o")
    assert s.executor.counts["cow"] == 0  # nothing changed: cached
    from PIL import Image
    with Image.open(folder / "cow_texture.png") as im:
        Image.new(im.mode, im.size, (0, 255, 0) if im.mode == "RGB" else 128).save(folder / "cow_texture.png")
    again = s.run(device="cpu", out_dir=tmp_path / "o")["cow"]["mesh"].textures.maps_padded()
    assert s.executor.counts["cow"] == 1 and not torch.equal(first, again)
