"""Training inside the graph, on real PyTorch3D pipelines at toy sizes: what runs once and what runs every
iteration, trained values seen outside the loop, taps, cancellation, seeds, stages and bad input."""
from __future__ import annotations

import sys

import math
import threading

import pytest
import torch
from pytorch3d.io import load_obj

import nodegraph
from toy_nodes import registry_with  # noqa: E402
from nodegraph.errors import Cancelled, GraphError, NodeError
from nodegraph.session import Session
from nodegraph.spec import Input, Int, Output, node


def new(**graph_fields):
    """A session whose registry has the toy nodes and this file's test-only nodes."""
    return nodegraph.new(registry=registry_with(sys.modules[__name__]), **graph_fields)


ITERS = 8


def deform_graph(graphs_dir, iterations: int = ITERS, samples: int = 300, **optimize) -> Session:
    """The deform-a-sphere pipeline, small: cow -> normalise -> sample; sphere -> offsets -> sample; losses."""
    g = new(name="deform", base_dir=graphs_dir)
    g.add_node("LoadMesh", "cow", file="assets/cow_mesh/cow.obj")
    g.add_node("NormalizeMesh", "normalize")
    g.add_node("IcoSphere", "sphere", level=2)
    g.add_node("OffsetVerts", "deform")
    g.add_node("SamplePoints", "src_points", num_samples=samples, with_colors=False)
    g.add_node("SamplePoints", "trg_points", num_samples=samples, with_colors=False)
    g.add_node("ChamferLoss", "chamfer")
    g.add_node("MeshEdgeLoss", "edge")
    g.add_node("MeshLaplacianSmoothing", "laplacian", weight=0.1)
    g.add_node("Optimize", "optimize", **({"optimizer": "sgd", "lr": 1.0, "momentum": 0.9,
                                           "iterations": iterations, "preview_every": 0} | optimize))
    g.add_node("SaveMesh", "save", filename="deformed.obj")
    c = g.connect
    c("cow", "mesh", "normalize", "mesh")
    c("normalize", "mesh", "trg_points", "mesh")
    c("sphere", "mesh", "deform", "mesh")
    c("deform", "mesh", "src_points", "mesh")
    c("src_points", "points", "chamfer", "x")
    c("trg_points", "points", "chamfer", "y")
    c("deform", "mesh", "edge", "mesh")
    c("deform", "mesh", "laplacian", "mesh")
    for loss in ("chamfer", "edge", "laplacian"):
        c(loss, "loss", "optimize", "loss")
    c("deform", "mesh", "save", "mesh")
    return g


def feed_renderer(g: Session, renderer: str, rasterizer: str, shader: str, mesh: str) -> None:
    """Connect MeshRenderer ``renderer`` to its rasterizer, shader and the ``mesh`` output of node ``mesh``."""
    g.connect(rasterizer, "rasterizer", renderer, "rasterizer")
    g.connect(shader, "shader", renderer, "shader")
    g.connect(mesh, "mesh", renderer, "meshes")


def camera_graph(graphs_dir, iterations: int = 6, size: int = 24) -> Session:
    """Camera-position fitting on the teapot at a toy size: a static target render, a learnable camera."""
    g = new(name="camera", base_dir=graphs_dir)
    g.add_node("LoadMesh", "teapot", file="assets/teapot.obj")
    g.add_node("LookAtViewTransform", "view", dist=3.0, elev=50.0, azim=0.0)
    g.add_node("FoVPerspectiveCameras", "ref_camera")
    g.add_node("BlendParams", "blend", sigma=1e-4, gamma=1e-4)
    g.add_node("RasterizationSettings", "settings", image_size=size, blur_radius=math.log(1 / 1e-4 - 1) * 1e-4,
               faces_per_pixel=10)
    g.add_node("SoftSilhouetteShader", "shader")
    g.add_node("MeshRasterizer", "ref_rasterizer")
    g.add_node("MeshRenderer", "target")
    g.add_node("LearnableCameraPosition", "camera", position=[3.0, 6.9, 2.5])
    g.add_node("MeshRasterizer", "rasterizer")
    g.add_node("MeshRenderer", "render")
    g.add_node("SilhouetteLoss", "silhouette", reduction="sum")
    g.add_node("Optimize", "optimize", lr=0.05, iterations=iterations, preview_every=2)
    g.add_node("PreviewImage", "preview")
    g.add_node("SaveTensor", "save_position", filename="position.pt")
    c = g.connect
    c("view", "R", "ref_camera", "R")
    c("view", "T", "ref_camera", "T")
    c("blend", "blend", "shader", "blend")
    c("ref_camera", "cameras", "ref_rasterizer", "cameras")
    c("settings", "settings", "ref_rasterizer", "settings")
    c("camera", "cameras", "rasterizer", "cameras")
    c("settings", "settings", "rasterizer", "settings")
    feed_renderer(g, "target", "ref_rasterizer", "shader", "teapot")
    feed_renderer(g, "render", "rasterizer", "shader", "teapot")
    c("render", "images", "silhouette", "images")
    c("target", "images", "silhouette", "target")
    c("silhouette", "loss", "optimize", "loss")
    c("render", "images", "preview", "images")
    c("camera", "position", "save_position", "tensor")
    return g


def history(out: dict, node_id: str = "optimize") -> dict[str, list[float]]:
    return out[node_id]["history"].series


# ------------------------------------------------------------------------------------------ what runs when


def test_static_part_runs_once_dynamic_part_every_iteration(graphs_dir, tmp_path):
    g = deform_graph(graphs_dir)
    out = g.run(device="cpu", out_dir=tmp_path)
    counts = g.executor.counts
    # loading and normalising the target depend on nothing learnable or stochastic: once
    assert counts["cow"] == counts["normalize"] == counts["sphere"] == 1
    # point sampling is stochastic, the rest is downstream of the learnable offsets: every iteration
    assert counts["trg_points"] == counts["src_points"] == ITERS
    assert counts["chamfer"] == counts["edge"] == counts["laplacian"] == ITERS
    assert counts["deform"] == ITERS + 1  # + once for the saver outside the loop
    assert counts["optimize"] == counts["save"] == 1
    series = history(out)
    assert set(series) == {"total", "chamfer", "edge", "laplacian"}
    assert all(len(v) == ITERS for v in series.values())
    assert series["chamfer"][-1] < 0.7 * series["chamfer"][0]
    assert out["optimize"]["final_loss"] == series["total"][-1]


def test_static_target_render_is_reused_inside_the_loop(graphs_dir, tmp_path):
    g = camera_graph(graphs_dir)
    g.set_param("optimize", "preview_every", 0)
    out = g.run(device="cpu", out_dir=tmp_path)
    counts = g.executor.counts
    assert counts["target"] == counts["ref_rasterizer"] == counts["teapot"] == counts["settings"] == 1
    assert counts["silhouette"] == 6
    assert counts["render"] == counts["rasterizer"] == 6 + 1  # + the final render the preview shows
    losses = history(out)["silhouette"]
    assert losses[-1] < losses[0]


def test_readers_outside_the_loop_see_trained_values(graphs_dir, tmp_path):
    g = deform_graph(graphs_dir)
    out = g.run(device="cpu", out_dir=tmp_path)
    offsets = g.executor.state["deform"].tensors["offsets"].detach()
    assert offsets.abs().max() > 1e-3  # trained, not the zero init
    sphere = out["sphere"]["mesh"].verts_packed()
    verts, _, _ = load_obj(tmp_path / "deformed.obj", load_textures=False)
    assert torch.allclose(verts, sphere + offsets, atol=1e-5)
    # a second run with nothing changed reuses the training and the saved file's inputs
    g.executor.counts.clear()
    g.run(device="cpu", out_dir=tmp_path)
    assert g.executor.counts["optimize"] == 0 and g.executor.counts["chamfer"] == 0


def test_camera_readers_see_trained_position(graphs_dir, tmp_path):
    g = camera_graph(graphs_dir, iterations=4)
    g.run(device="cpu", out_dir=tmp_path)
    saved = torch.load(tmp_path / "position.pt")
    trained = g.executor.state["camera"].tensors["position"].detach()
    assert torch.equal(saved, trained)
    assert not torch.allclose(saved, torch.tensor([3.0, 6.9, 2.5]))


def colored_sphere_graph(graphs_dir, **optimize) -> Session:
    """Vertex colours on a deforming sphere, fitted to a red sphere's render: two chained learnable nodes."""
    g = new(name="chained learnables", base_dir=graphs_dir)
    g.add_node("IcoSphere", "sphere", level=1)
    g.add_node("VertexColors", "red", color=[1.0, 0.0, 0.0])
    g.add_node("OffsetVerts", "deform")
    g.add_node("LearnableVertexColors", "colors", color=[0.5, 0.5, 0.5])
    g.add_node("LookAtViewTransform", "view", dist=3.0)
    g.add_node("FoVPerspectiveCameras", "camera")
    g.add_node("RasterizationSettings", "settings", image_size=16)
    g.add_node("MeshRasterizer", "rasterizer")
    g.add_node("SoftPhongShader", "shader")
    g.add_node("MeshRenderer", "target")
    g.add_node("MeshRenderer", "render")
    g.add_node("MSELoss", "rgb")
    g.add_node("Optimize", "optimize", **({"lr": 0.02, "iterations": 10} | optimize))
    g.add_node("SaveTensor", "save", filename="colors.pt")
    c = g.connect
    c("sphere", "mesh", "red", "mesh")
    c("sphere", "mesh", "deform", "mesh")
    c("deform", "mesh", "colors", "mesh")
    c("view", "R", "camera", "R")
    c("view", "T", "camera", "T")
    c("camera", "cameras", "rasterizer", "cameras")
    c("settings", "settings", "rasterizer", "settings")
    c("camera", "cameras", "shader", "cameras")
    feed_renderer(g, "target", "rasterizer", "shader", "red")
    feed_renderer(g, "render", "rasterizer", "shader", "colors")
    c("render", "images", "rgb", "input")
    c("target", "images", "rgb", "target")
    c("rgb", "loss", "optimize", "loss")
    c("colors", "colors", "save", "tensor")
    return g


def test_a_learnable_fed_by_a_learnable_keeps_its_training(graphs_dir, tmp_path):
    """Training the offsets (upstream) must not reset the colours (downstream) once training is over."""
    g = colored_sphere_graph(graphs_dir)
    g.run(device="cpu", out_dir=tmp_path)
    saved = torch.load(tmp_path / "colors.pt")
    trained = g.executor.state["colors"].tensors["colors"].detach()
    assert torch.equal(saved, trained)
    assert saved[:, 0].mean() > 0.52 and saved[:, 1].mean() < 0.48  # towards red, not the grey start
    assert g.executor.state["deform"].tensors["offsets"].abs().max() > 0


# ------------------------------------------------------------------------------------------ taps

GRAD_SEEN: list[tuple[int | None, bool]] = []


@node(category="test", preview=True, inputs=[Input("x", "Any")])
def TrainingTestGradProbe(ctx, x):
    """Records whether autograd was on when a tap ran (test-only)."""
    GRAD_SEEN.append((ctx.iteration, torch.is_grad_enabled()))


def test_preview_taps_run_under_no_grad_and_emit_previews(graphs_dir, tmp_path, monkeypatch):
    import nodegraph.training as training

    # every due tap runs (the wall-clock budget and rate limit are safeguards, tested for speed elsewhere)
    monkeypatch.setattr(training.TrainingLoop, "preview_budget", 1e9)
    monkeypatch.setattr(training.TrainingLoop, "preview_hz", 0.0)  # no limit
    g = camera_graph(graphs_dir, iterations=6)
    g.add_node("TrainingTestGradProbe", "probe")
    g.connect("camera", "position", "probe", "x")
    g.executor.previews.max_hz = 0.0  # every frame
    previews = []
    g.executor.bus.subscribe(lambda e: previews.append(e) if e["type"] == "preview" else None)
    GRAD_SEEN.clear()
    g.run(device="cpu", out_dir=tmp_path)
    in_loop = [grad for it, grad in GRAD_SEEN if it is not None]
    assert len(in_loop) == 3  # preview_every=2 over 6 iterations
    assert not any(in_loop)
    assert GRAD_SEEN[-1][0] is None  # and once more after training, outside the loop
    images = [e for e in previews if e["node"] == "preview"]
    assert len(images) == 3 + 1 and images[0]["kind"] == "image" and images[0]["data"][:4] == b"\x89PNG"
    assert g.executor.counts["optimize"] == 1 and g.executor.counts["silhouette"] == 6


def test_taps_never_change_the_result(graphs_dir, tmp_path, monkeypatch):
    import nodegraph.training as training

    monkeypatch.setattr(training.TrainingLoop, "preview_budget", 1e9)
    monkeypatch.setattr(training.TrainingLoop, "preview_hz", 0.0)  # no limit
    with_taps = deform_graph(graphs_dir, preview_every=1)
    with_taps.add_node("PreviewMesh", "preview")
    with_taps.connect("deform", "mesh", "preview", "mesh")
    with_taps.add_node("PreviewPoints", "preview_points")
    with_taps.connect("src_points", "points", "preview_points", "points")  # a stochastic node under the tap
    a = history(with_taps.run(device="cpu", out_dir=tmp_path / "a"))
    b = history(deform_graph(graphs_dir).run(device="cpu", out_dir=tmp_path / "b"))
    assert with_taps.executor.counts["preview"] == ITERS + 1
    for name in a:  # same random stream, same steps (see the seed test for the tolerance)
        assert a[name] == pytest.approx(b[name], rel=1e-4)


# ------------------------------------------------------------------------------------------ cancel


def test_cancel_from_a_listener_stops_within_one_iteration(graphs_dir, tmp_path):
    g = deform_graph(graphs_dir, iterations=200)
    seen = []

    def listener(event):
        if event["type"] == "progress" and not seen:
            seen.append(event["iteration"])
            g.executor.cancel()

    g.executor.bus.subscribe(listener)
    with pytest.raises(Cancelled):
        g.run(device="cpu", out_dir=tmp_path)
    assert g.executor.counts["chamfer"] <= seen[0] + 1
    assert g.executor.counts["save"] == 0  # nothing after the loop ran
    offsets = g.executor.state["deform"].tensors["offsets"]
    assert torch.isfinite(offsets).all() and offsets.abs().max() > 0  # the partly trained values are kept


def test_cancel_from_another_thread_keeps_trained_values(graphs_dir, tmp_path):
    g = deform_graph(graphs_dir, iterations=10_000)
    errors = []

    def run():
        try:
            g.run(device="cpu", out_dir=tmp_path)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    while g.executor.counts["chamfer"] < 5 and thread.is_alive():
        threading.Event().wait(0.01)
    g.executor.cancel()
    at_cancel = g.executor.counts["chamfer"]  # read after cancel(): only the iteration in flight may finish
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)
    assert g.executor.counts["chamfer"] <= at_cancel + 1
    offsets = g.executor.state["deform"].tensors["offsets"].detach()
    assert torch.isfinite(offsets).all() and offsets.abs().max() > 0
    # the trained (partial) result is usable: e.g. to build the deformed mesh
    sphere = g.executor.cache["sphere"].outputs["mesh"]
    assert sphere.offset_verts(offsets).verts_packed().shape == offsets.shape


# ------------------------------------------------------------------------------------------ seeds


def test_same_graph_and_seed_give_the_same_losses(graphs_dir, tmp_path):
    a = history(deform_graph(graphs_dir).run(device="cpu", out_dir=tmp_path))
    b = history(deform_graph(graphs_dir).run(device="cpu", out_dir=tmp_path))
    c = history(deform_graph(graphs_dir, seed=1).run(device="cpu", out_dir=tmp_path))
    # equal up to the last digits multithreaded CPU reductions may change (PyTorch3D's ops are not bitwise
    # deterministic on every machine); a different seed changes the point samples, so the losses
    for name in a:
        assert a[name] == pytest.approx(b[name], rel=1e-4)
    assert a["chamfer"] != pytest.approx(c["chamfer"], rel=1e-2)


def test_headless_override_of_iterations(graphs_dir, tmp_path):
    g = deform_graph(graphs_dir, iterations=200)
    out = g.run(device="cpu", out_dir=tmp_path, overrides={"optimize.iterations": 3})
    assert len(history(out)["total"]) == 3


# ------------------------------------------------------------------------------------------ stages


def test_stages_chain_and_train_only_what_they_name(tmp_path):
    g = new(name="stages")
    g.add_node("LearnableTensor", "a", shape=[4], value=0.0)
    g.add_node("LearnableTensor", "b", shape=[4], value=0.0)
    g.add_node("ToyConst", "one", value=[1.0, 1.0, 1.0, 1.0])
    g.add_node("ToyConst", "two", value=[2.0, 2.0, 2.0, 2.0])
    g.add_node("MSELoss", "a_to_one")
    g.add_node("MSELoss", "b_to_one")
    g.add_node("MSELoss", "a_to_two")
    g.add_node("LossSum", "stage1_losses")
    g.add_node("Optimize", "stage1", lr=0.1, iterations=50, train=["a"])
    g.add_node("Optimize", "stage2", lr=0.1, iterations=50)
    g.add_node("SaveTensor", "save_a", filename="a.pt")
    c = g.connect
    c("a", "tensor", "a_to_one", "input")
    c("one", "out", "a_to_one", "target")
    c("b", "tensor", "b_to_one", "input")
    c("one", "out", "b_to_one", "target")
    c("a_to_one", "loss", "stage1_losses", "losses")
    c("b_to_one", "loss", "stage1_losses", "losses")
    c("stage1_losses", "loss", "stage1", "loss")
    c("a", "tensor", "a_to_two", "input")
    c("two", "out", "a_to_two", "target")
    c("a_to_two", "loss", "stage2", "loss")
    c("stage1", "done", "stage2", "after")
    c("a", "tensor", "save_a", "tensor")
    assert g.validate() == []
    out = g.run(device="cpu", out_dir=tmp_path)
    stage1 = out["stage1"]["history"].series
    assert set(stage1) == {"total", "a_to_one", "b_to_one"}
    assert stage1["b_to_one"][0] == stage1["b_to_one"][-1] == 1.0  # b is not trained by stage 1
    assert stage1["a_to_one"][-1] < 0.1
    # stage 2 starts where stage 1 left a: its first loss is (2 - a1)^2, not (2 - 0)^2
    a1 = g.executor.snapshots["stage1"]["a"][("t", "tensor")]
    assert history(out, "stage2")["a_to_two"][0] == pytest.approx(float(((2 - a1) ** 2).mean()), rel=1e-5)
    saved = torch.load(tmp_path / "a.pt")
    assert torch.allclose(saved, g.executor.state["a"].tensors["tensor"].detach())
    assert ((saved - 2).abs() < (a1 - 2).abs()).all()  # the saver sees the end of the last stage


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("field, value, words", [
    ("lr", 0.0, ">= 1e-12"),
    ("lr", -1.0, ">= 1e-12"),
    ("iterations", 0, ">= 1"),
])
def test_bad_optimize_params_fail_before_anything_runs(graphs_dir, tmp_path, field, value, words):
    g = deform_graph(graphs_dir)
    g.set_param("optimize", field, value)
    with pytest.raises(GraphError) as err:
        g.run(device="cpu", out_dir=tmp_path)
    assert [(p.node, p.field) for p in err.value.problems] == [("optimize", field)]
    assert words in err.value.problems[0].message
    assert sum(g.executor.counts.values()) == 0


def test_loss_without_learnable_upstream_is_refused(graphs_dir, tmp_path):
    g = new(name="nothing to train", base_dir=graphs_dir)
    g.add_node("IcoSphere", "sphere", level=1)
    g.add_node("MeshEdgeLoss", "edge")
    g.add_node("Optimize", "optimize", iterations=5)
    g.connect("sphere", "mesh", "edge", "mesh")
    g.connect("edge", "loss", "optimize", "loss")
    with pytest.raises(GraphError) as err:
        g.run(device="cpu", out_dir=tmp_path)
    (problem,) = err.value.problems
    assert (problem.node, problem.field) == ("optimize", "loss") and "no learnable" in problem.message
    assert sum(g.executor.counts.values()) == 0


def mse_graph(name: str, target: list[float] | None = None, through: tuple[str, dict] | None = None,
              **optimize) -> Session:
    """A learnable 3-vector ``w`` trained by ``optimize`` (with these params) so that MSELoss ``mse`` pulls it
    towards ToyConst ``target`` (``target``: its value); ``through``: (type, params) of a node ``bad`` in between."""
    g = new(name=name)
    g.add_node("LearnableTensor", "w", shape=[3])
    source = ("w", "tensor")
    if through is not None:
        g.add_node(through[0], "bad", **through[1])
        g.connect("w", "tensor", "bad", "x")
        source = ("bad", "out")
    g.add_node("ToyConst", "target", **({"value": target} if target is not None else {}))
    g.add_node("MSELoss", "mse")
    g.add_node("Optimize", "optimize", **optimize)
    g.connect(*source, "mse", "input")
    g.connect("target", "out", "mse", "target")
    g.connect("mse", "loss", "optimize", "loss")
    return g


def test_mismatched_loss_inputs_fail_before_the_first_step(tmp_path):
    g = mse_graph("mismatch", target=[1.0, 2.0], iterations=5)
    with pytest.raises(NodeError) as err:
        g.run(device="cpu", out_dir=tmp_path)
    assert (err.value.problem.node, err.value.problem.field) == ("mse", "target")
    assert "[2]" in err.value.problem.message and "[3]" in err.value.problem.message
    assert g.executor.counts["mse"] == 1  # stopped at the first evaluation


@node(category="test", inputs=[Input("x", "Tensor")], params=[Int("at", 3)], outputs=[Output("out", "Tensor")])
def TrainingTestNaNAt(ctx, x, at):
    """Passes x through, but NaN from iteration ``at`` on (test-only)."""
    return x * float("nan") if (ctx.iteration or 0) >= at else x * 1.0


def test_nan_stops_the_run_naming_the_first_bad_node(tmp_path):
    g = mse_graph("nan", through=("TrainingTestNaNAt", {"at": 3}), iterations=50)
    with pytest.raises(NodeError) as err:
        g.run(device="cpu", out_dir=tmp_path)
    assert err.value.problem.node == "bad"
    assert "non-finite" in err.value.problem.message and "iteration 3" in err.value.problem.message
    assert g.executor.counts["mse"] == 4


def test_diverging_training_names_the_node_that_overflowed(tmp_path):
    g = mse_graph("diverge", optimizer="sgd", lr=1000.0, momentum=0.0, iterations=500)
    with pytest.raises(NodeError) as err:
        g.run(device="cpu", out_dir=tmp_path)
    # w is still finite (huge); its squared error overflows first, so the loss node is named
    assert torch.isfinite(g.executor.state["w"].tensors["tensor"]).all()
    assert err.value.problem.node == "mse" and "lower the learning rate" in err.value.problem.message
    assert g.executor.counts["mse"] < 500


def test_loaded_graph_api(graphs_dir, tmp_path):
    """The Python face: load a shipped example, override, run, read outputs."""
    g = nodegraph.load(graphs_dir / "deform_sphere_to_cow.json")
    out = g.run(device="cpu", out_dir=tmp_path, overrides={"optimize.iterations": 2, "sphere.level": 1,
                                                            "src_points.num_samples": 100,
                                                            "trg_points.num_samples": 100})
    assert len(history(out)["total"]) == 2


SLOW_TAPS: list[int | None] = []


@node(category="test", preview=True, inputs=[Input("x", "Any")])
def TrainingTestSlowTap(ctx, x):
    """A preview that takes 5 ms (test-only): the loop must give it at most its 3 % budget."""
    import time
    time.sleep(0.005)
    SLOW_TAPS.append(ctx.iteration)


def test_preview_taps_stay_within_their_share_of_the_loop_and_report_it(tmp_path):
    g = mse_graph("slow taps", iterations=400, preview_every=1, lr=0.01)
    g.add_node("TrainingTestSlowTap", "tap")
    g.connect("w", "tensor", "tap", "x")
    progress = []
    g.executor.bus.subscribe(lambda e: progress.append(e) if e["type"] == "progress" else None)
    SLOW_TAPS.clear()
    g.run(device="cpu", out_dir=tmp_path)
    last = progress[-1]
    in_loop = [it for it in SLOW_TAPS if it is not None]
    assert 1 <= len(in_loop) < 400  # the first tap runs; most are skipped for the budget
    assert last["preview_s"] >= 0.005 * len(in_loop)
    assert last["preview_s"] <= 0.03 * last["elapsed_s"] + 0.01  # 3 % budget, overshot by one tap at most
