"""The rasterizer and Phong shader nodes' ``backend`` param: on a CPU ``auto`` runs the compiled kernels,
``pytorch3d`` forces PyTorch3D's own, the two render the same images, and a headless run's manifest says which
backend ran."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nodegraph
from nodegraph import raster

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


@pytest.mark.parametrize("graph,size,output", [("render_textured_cow", 64, "render"),
                                               ("render_coloured_points", 48, "render_blue")])
def test_auto_and_pytorch3d_backends_render_the_same_images(graph, size, output):
    session = nodegraph.load(GRAPHS / f"{graph}.json")
    images = {}
    shader = {"shader.backend": "pytorch3d"} if "points" not in graph else {}   # images bit for bit: see below
    for backend in ("auto", "pytorch3d"):
        raster.reset()
        out = session.run(device="cpu", overrides={"raster.image_size": size, "rasterizer.backend": backend,
                                                   **shader})
        images[backend] = out[output]["images"]
        kind = "points" if "points" in graph else "meshes"
        assert raster.ran()[kind] == {"numba" if backend == "auto" else "pytorch3d": 1 + (kind == "points")}
    assert images["auto"].shape[1:3] == (size, size)
    assert torch.equal(images["auto"], images["pytorch3d"])
    assert images["auto"][..., :3].std() > 0.01


def test_a_bad_backend_is_refused_naming_the_param():
    session = nodegraph.load(GRAPHS / "render_textured_cow.json")
    with pytest.raises(nodegraph.errors.GraphError) as info:
        session.run(device="cpu", overrides={"rasterizer.backend": "warp"})
    assert "rasterizer.backend" in str(info.value)


def test_the_manifest_records_the_backend(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "nodegraph", "run", str(GRAPHS / "render_textured_cow.json"),
                           "--out", str(out), "--device", "cpu", "--set", "raster.image_size=32"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["raster_backend"] == {"meshes": {"numba": 1}, "shading": {"numba": 1}}
    assert manifest["versions"]["numba"]


@pytest.mark.usefixtures("one_torch_thread")
def test_the_teapot_fit_follows_the_same_path_with_either_backend():
    """The camera-pose example at 32 px for 12 Adam steps: the fragments are identical and the gradients agree
    to ~1e-7, so the loss curves and the final camera agree closely (tolerance 1e-3 relative)."""
    runs = {}
    for backend in ("numba", "pytorch3d"):
        session = nodegraph.load(GRAPHS / "camera_pose_teapot.json")   # a fresh one: no learned state carried
        overrides = {"settings.image_size": 32, "optimize.iterations": 12, "optimize.stop_below": None,
                     "optimize.preview_every": 0}
        overrides.update({f"{r}.backend": backend for r in ("reference_rasterizer", "rasterizer", "final_rasterizer")})
        out = session.run(device="cpu", overrides=overrides)
        runs[backend] = (torch.tensor(out["optimize"]["history"].series["silhouette"]),
                         out["camera"]["position"].detach().clone())
    (loss_a, cam_a), (loss_b, cam_b) = runs["numba"], runs["pytorch3d"]
    assert len(loss_a) == len(loss_b) == 12
    assert loss_a[-1] < 0.98 * loss_a[0]                    # the fit moves (144 -> 138 in 12 steps)
    assert torch.allclose(loss_a, loss_b, rtol=1e-3), (loss_a, loss_b)
    assert torch.allclose(cam_a, cam_b, rtol=1e-3, atol=1e-4), (cam_a, cam_b)


def test_the_shading_backends_render_the_cow_alike():
    """The example's SoftPhong shader on ``auto`` (the fused CPU kernel) and ``pytorch3d``: the same image to
    float rounding, and the record says which shaded."""
    session = nodegraph.load(GRAPHS / "render_textured_cow.json")
    images = {}
    for backend in ("auto", "pytorch3d"):
        raster.reset()
        out = session.run(device="cpu", overrides={"raster.image_size": 96, "shader.backend": backend})
        images[backend] = out["render"]["images"]
        assert raster.ran()["shading"] == {"numba" if backend == "auto" else "pytorch3d": 1}
    assert (images["auto"] - images["pytorch3d"]).abs().max() < 1e-5
    assert images["auto"][..., :3].std() > 0.01


@pytest.mark.parametrize("silhouette", ["soft", "hard"])
def test_target_views_render_on_either_backend_alike(silhouette):
    """TargetViews (the volume and NeRF fits' training data) rasterizes and shades with the compiled kernels on
    ``auto``: the same silhouettes exactly, the same images to float rounding, and the record counts its frames."""
    results = {}
    for backend in ("auto", "pytorch3d"):
        session = nodegraph.new(name="views", base_dir=GRAPHS)
        session.add_node("LoadMesh", "cow", file="assets/cow_mesh/cow.obj")
        session.add_node("TargetViews", "views", num_views=3, image_size=40, silhouette=silhouette, backend=backend)
        session.connect("cow", "mesh", "views", "mesh")
        raster.reset()
        results[backend] = session.run(device="cpu")["views"]
        passes = 2 if silhouette == "soft" else 1
        assert raster.ran() == ({"meshes": {"numba": passes}, "shading": {"numba": 1}} if backend == "auto" else
                                {"meshes": {"pytorch3d": passes}, "shading": {"pytorch3d": 1}})
    ours, theirs = results["auto"], results["pytorch3d"]
    assert torch.equal(ours["silhouettes"], theirs["silhouettes"])
    assert 0.05 < float(ours["silhouettes"].mean()) < 0.9
    assert (ours["images"] - theirs["images"]).abs().max() < 1e-5
    assert ours["images"].std() > 0.01


def test_the_warm_up_compiles_in_the_background_and_leaves_the_kernels_usable():
    from nodegraph.raster.warm import warm_up_in_background

    thread = warm_up_in_background()
    assert thread is not None and thread.daemon
    thread.join(timeout=240)
    assert not thread.is_alive()
    from nodegraph.raster import kernels_meshes, kernels_points, kernels_shading

    for kernel in (kernels_meshes.rasterize_meshes_forward, kernels_meshes.rasterize_meshes_backward,
                   kernels_points.rasterize_points_forward, kernels_points.rasterize_points_backward,
                   kernels_shading.shade_phong):
        assert kernel.signatures, f"{kernel.__name__} was not compiled"


def test_without_numba_pytorch3ds_rasterizer_runs_and_the_record_says_why():
    """A process where numba cannot be imported (``sys.modules["numba"] = None`` makes every import fail)."""
    code = """
import sys, json
sys.modules["numba"] = None
import torch
from pytorch3d.renderer import FoVPerspectiveCameras, RasterizationSettings
from pytorch3d.utils import ico_sphere
from nodegraph import raster
cams = FoVPerspectiveCameras(T=torch.tensor([[0.0, 0.0, 3.0]]))
frags = raster.BackendMeshRasterizer(cams, RasterizationSettings(image_size=16), backend="numba")(ico_sphere(1))
print(json.dumps({"chosen": raster.choose("auto", "cpu"), "ran": raster.ran(),
                  "covered": int((frags.pix_to_face >= 0).sum())}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["chosen"] == "pytorch3d" and result["covered"] > 0
    assert result["ran"]["meshes"] == {"pytorch3d": 1} and "numba unavailable" in result["ran"]["note"]
