"""Export: graph -> standalone script -> the same outputs as the executor.

Each example graph runs twice at a tiny CPU size on one torch thread: in the executor, and as its exported
script in a fresh interpreter where nodegraph cannot be imported (``python -S`` with only the venv's
site-packages on the path, in a folder outside the checkout). Saved images must be equal bit for bit, saved
tensors equal, loss values per iteration equal to 1e-6 relative. Every script compiles, passes ``ruff check``
with the default rules and answers ``--help``.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nodegraph
from nodegraph.errors import GraphError
from nodegraph.export import ExportError
from nodegraph.registry import default_registry

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
SITE = sysconfig.get_paths()["purelib"]

# graph -> the overrides that make it tiny (smaller than the CPU-sized forms CI runs, same code paths)
EXAMPLES = {
    "render_textured_cow": {"raster.image_size": 48},
    "camera_pose_teapot": {"settings.image_size": 24, "settings.faces_per_pixel": 10, "optimize.iterations": 6,
                           "optimize.stop_below": None},
    "render_cow_batch": {"raster.image_size": 32},
    "render_coloured_points": {"raster.image_size": 48, "sample.num_samples": 3000},
    "lighting_and_shading": {"raster.image_size": 48},
    "camera_pose_cow_textured": {"settings.image_size": 24, "settings.faces_per_pixel": 10,
                                 "optimize.iterations": 4, "optimize.stop_below": None},
    "deform_sphere_to_cow": {"sphere.level": 2, "optimize.iterations": 4, "src_points.num_samples": 300,
                             "trg_points.num_samples": 300, "eval_src_points.num_samples": 300,
                             "eval_trg_points.num_samples": 300},
    "fit_mesh_to_pointcloud": {"sphere.level": 2, "optimize_regularised.iterations": 4,
                               "optimize_chamfer_only.iterations": 4},
    "fit_textured_mesh": {"sphere.level": 2, "target_settings.image_size": 16, "silhouette_settings.image_size": 16,
                          "textured_settings.image_size": 16, "silhouette_settings.faces_per_pixel": 4,
                          "textured_settings.faces_per_pixel": 4, "stage_silhouette.iterations": 3,
                          "stage_textured.iterations": 3},
    "volume_rendering_steps": {"raysampler.image_width": 16, "raysampler.image_height": 16,
                               "raysampler.n_pts_per_ray": 16, "volumes.resolution": [16]},
    "implicit_surfaces": {"raysampler.image_width": 16, "raysampler.image_height": 16, "raysampler.n_pts_per_ray": 16,
                          "turntable.n_frames": 2, "render_turntable.chunk_size": 100, "mesh_sphere.resolution": 12,
                          "mesh_box.resolution": 12, "mesh_torus.resolution": 12, "mesh_torus.chunk_size": 500},
    "pointcloud_to_volume": {"points.num_samples": 2000, "volume.resolution": [16], "volume.voxel_size": 0.15,
                             "views.num_views": 2, "views.image_size": 16, "views.silhouette": "hard",
                             "raysampler.image_width": 16, "raysampler.image_height": 16,
                             "raysampler.n_pts_per_ray": 16, "turntable.n_frames": 2},
    "fit_textured_volume": {"views.num_views": 4, "views.image_size": 16, "views.silhouette": "hard",
                            "heldout.image_size": 16, "heldout.silhouette": "hard", "heldout.num_views": 2,
                            "raysampler.image_width": 16, "raysampler.image_height": 16,
                            "raysampler.n_pts_per_ray": 12, "volume.resolution": 12, "batch.batch_size": 2,
                            "optimize.iterations": 3, "turntable.n_frames": 2,
                            "extract_mesh.isolevel": 0.018},  # 3 iterations leave thin densities
    "render_cow_opencv": {"raster.image_size": 32},
    "render_three_views": {"raster.image_size": 24},
    "bundle_adjustment": {"optimize.iterations": 50},
    "modes": {},
    "glb": {},
    "cameras": {},
    "three_views_muted": {"raster.image_size": 24},
    "transforms": {},
    "smpl_pose_and_render": {"raster.image_size": 32, "project.image_size": 32},
    "smplify_fit_keypoints": {"raster.image_size": 32, "stage1.iterations": 3, "stage2.iterations": 3},
    "fit_simple_nerf": {"views.num_views": 4, "views.image_size": 16, "views.silhouette": "hard",
                        "heldout.image_size": 8, "heldout.silhouette": "hard", "heldout.num_views": 2,
                        "raysampler.n_rays_per_image": 32, "raysampler.n_pts_per_ray": 8,
                        "nerf.n_hidden_neurons": 16, "nerf.n_harmonic_functions": 4, "batch.batch_size": 2,
                        "optimize.iterations": 3, "preview_raysampler.image_width": 8,
                        "preview_raysampler.image_height": 8, "preview_raysampler.n_pts_per_ray": 8,
                        "eval_raysampler.image_width": 8, "eval_raysampler.image_height": 8,
                        "eval_raysampler.n_pts_per_ray": 8, "turntable.n_frames": 2, "extract_mesh.resolution": 12,
                        "extract_mesh.isolevel": 9e-8},
}


def render_and_save(s, mesh: str, shader: str, filename: str, **view) -> None:
    """Add a look-at view (``view`` its params), a perspective camera, a 32-pixel rasterizer, ``shader`` and a
    renderer drawing node ``mesh``'s mesh, and save the image as ``filename`` (ids view, camera, raster,
    rasterizer, shader, render, save)."""
    s.add_node("LookAtViewTransform", "view", **view)
    s.add_node("FoVPerspectiveCameras", "camera")
    s.connect("view", "R", "camera", "R")
    s.connect("view", "T", "camera", "T")
    s.add_node("RasterizationSettings", "raster", image_size=32)
    s.add_node("MeshRasterizer", "rasterizer")
    s.connect("camera", "cameras", "rasterizer", "cameras")
    s.connect("raster", "settings", "rasterizer", "settings")
    s.add_node(shader, "shader")
    s.connect("camera", "cameras", "shader", "cameras")
    s.add_node("MeshRenderer", "render")
    for a, b, c in (("rasterizer", "rasterizer", "rasterizer"), ("shader", "shader", "shader"),
                    (mesh, "mesh", "meshes")):
        s.connect(a, b, "render", c)
    s.add_node("SaveImage", "save", filename=filename)
    s.connect("render", "images", "save", "images")


def transforms_graph():
    """The transforms nodes (no example graph uses them all): a moved cow rendered, projected points, SO(3)."""
    s = nodegraph.new(name="transforms", base_dir=GRAPHS)
    s.add_node("LoadMesh", "cow", file="assets/cow_mesh/cow.obj")
    s.add_node("Rotate", "turn", representation="euler", values=[10.0, 30.0, 0.0])
    s.add_node("Translate", "lift", xyz=[0.0, 0.1, 0.0])
    s.add_node("Scale", "shrink", xyz=[0.8, 0.8, 0.8])
    s.add_node("ComposeTransforms", "moves")
    for t in ("turn", "lift", "shrink"):
        s.connect(t, "transform", "moves", "transforms")
    s.add_node("TransformMeshes", "moved")
    s.connect("cow", "mesh", "moved", "mesh")
    s.connect("moves", "transform", "moved", "transform")
    render_and_save(s, "moved", "HardFlatShader", "moved.png")
    s.add_node("SamplePoints", "points", num_samples=200)
    s.connect("cow", "mesh", "points", "mesh")
    s.add_node("TransformPoints", "moved_points")
    s.connect("points", "points", "moved_points", "points")
    s.connect("moves", "transform", "moved_points", "transform")
    s.add_node("ProjectPoints", "project", image_size=32)
    s.connect("camera", "cameras", "project", "cameras")
    s.connect("moved_points", "points", "project", "points")
    s.add_node("SaveTensor", "save_screen", filename="screen.pt")
    s.connect("project", "screen", "save_screen", "tensor")
    s.add_node("So3LogMap", "log")
    s.connect("view", "R", "log", "R")
    s.add_node("So3ExpMap", "exp")
    s.connect("log", "log_rot", "exp", "log_rot")
    s.add_node("SaveTensor", "save_R", filename="R.pt")
    s.connect("exp", "R", "save_R", "tensor")
    return s


def volume_steps_graph():
    """volume_rendering_steps saves nothing (it shows shapes): here its ray points and raymarched images are
    saved, so there is something to compare."""
    s = nodegraph.load(GRAPHS / "volume_rendering_steps.json")
    s.add_node("SaveTensor", "save_points", filename="ray_points.pt")
    s.connect("ray_points", "points", "save_points", "tensor")
    s.add_node("SaveImage", "save_images", filename="marched.png", alpha=True)
    s.connect("image_features", "images", "save_images", "images")
    return s


def modes_graph():
    """Node modes, as the executor resolves them: in the transforms graph the mesh transform is bypassed (the
    render sees the cow as loaded) and the SO(3) log map muted (it and what reads it are left out); in
    render_three_views one view's group instance is muted (the grid shows the other two)."""
    s = transforms_graph()
    s.graph.name = "modes"
    s.graph.nodes["moved"].mode = "bypass"
    s.graph.nodes["log"].mode = "mute"
    return s


def three_views_muted_graph():
    s = nodegraph.load(GRAPHS / "render_three_views.json")
    s.graph.nodes["left"].mode = "mute"
    return s


def cameras_graph():
    """The cameras no example uses, each rendering the cow with Gouraud shading (vertex colours baked from its
    texture): an orthographic camera in NDC, a pinhole camera in pixels and a fisheye camera with distortion."""
    s = nodegraph.new(name="cameras", base_dir=GRAPHS)
    s.add_node("LoadMesh", "cow", file="assets/cow_mesh/cow.obj")
    s.add_node("TextureToVertexColors", "colors")
    s.connect("cow", "mesh", "colors", "mesh")
    s.add_node("LookAtViewTransform", "view", dist=2.7, azim=150.0)
    s.add_node("RasterizationSettings", "raster", image_size=24)
    s.add_node("OrthographicCameras", "ortho", focal_length=[0.6, 0.6])
    s.add_node("PerspectiveCameras", "pinhole", focal_length=[30.0, 30.0], principal_point=[12.0, 12.0],
               in_ndc=False, image_size=[24.0, 24.0])
    s.add_node("FishEyeCameras", "fisheye", focal_length=1.5, radial_params=[0.1, 0.01, 0.0, 0.0, 0.0, 0.0],
               tangential_params=[0.001, 0.0])
    for cam in ("ortho", "pinhole", "fisheye"):
        s.connect("view", "R", cam, "R")
        s.connect("view", "T", cam, "T")
        s.add_node("MeshRasterizer", f"{cam}_rasterizer")
        s.connect(cam, "cameras", f"{cam}_rasterizer", "cameras")
        s.connect("raster", "settings", f"{cam}_rasterizer", "settings")
        s.add_node("HardGouraudShader", f"{cam}_shader")
        s.connect(cam, "cameras", f"{cam}_shader", "cameras")
        s.add_node("MeshRenderer", f"{cam}_render")
        for a, b, c in ((f"{cam}_rasterizer", "rasterizer", "rasterizer"), (f"{cam}_shader", "shader", "shader"),
                        ("colors", "mesh", "meshes")):
            s.connect(a, b, f"{cam}_render", c)
        s.add_node("SaveImage", f"save_{cam}", filename=f"{cam}.png")
        s.connect(f"{cam}_render", "images", f"save_{cam}", "images")
    return s


_GLB: list[Path] = []  # the folder of the GLB glb_graph reads


def glb_graph():
    """A GLB loaded (the cow written as a textured GLB by SaveMesh's writer, once per test session), rendered and
    saved as OBJ: the script copies LoadMesh's GLB reader."""
    from pytorch3d.io import load_objs_as_meshes

    from nodes.save import _save_glb

    if not _GLB:
        _GLB.append(Path(tempfile.mkdtemp(prefix="export_glb_")))
        _save_glb(_GLB[0] / "cow.glb", load_objs_as_meshes([str(GRAPHS / "assets/cow_mesh/cow.obj")]))
    folder = _GLB[0]
    s = nodegraph.new(name="glb", base_dir=folder)
    s.add_node("LoadMesh", "cow", file="cow.glb")
    render_and_save(s, "cow", "SoftPhongShader", "glb.png", dist=2.7, azim=150.0)
    s.add_node("SaveMesh", "save_mesh", filename="cow.obj")
    s.connect("cow", "mesh", "save_mesh", "mesh")
    return s


BUILT = {"cameras": cameras_graph, "glb": glb_graph, "transforms": transforms_graph, "volume_rendering_steps": volume_steps_graph, "modes": modes_graph,
         "three_views_muted": three_views_muted_graph}


def session_of(name: str):
    return BUILT[name]() if name in BUILT else nodegraph.load(GRAPHS / f"{name}.json")


def isolated_env() -> dict:
    """The environment of a user who has torch and pytorch3d but not nodegraph: no site hooks (the editable
    install's finder is one), only site-packages on the path, one thread."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": SITE, "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "HOME": os.environ.get("HOME", "/tmp")}


def run_isolated(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=isolated_env(), capture_output=True,
                          text=True, timeout=timeout)


RASTERIZERS = {s.name for s in default_registry() if any(p.name == "backend" for p in s.params)}


def with_pytorch3d_rasterizers(session):
    """``session`` with every node that has a ``backend`` (rasterizers, Phong shaders, TargetViews; in groups
    too) on PyTorch3D's, as the script is. The compiled CPU kernels give the same fragments bit for bit (tests/test_raster_*.py) but sum
    gradients in float64, so a fit's last digits would differ from the script's after some iterations; the
    shading kernel's images agree to float rounding (tests/test_raster_shading.py), not bit for bit."""
    docs = [*session.graph.nodes.values(), *(n for d in session.graph.definitions.values() for n in d.nodes.values())]
    for doc in docs:
        if doc.type in RASTERIZERS:
            doc.params["backend"] = "pytorch3d"
    return session


def run_executor(name: str, overrides: dict, out: Path) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return with_pytorch3d_rasterizers(session_of(name)).run(device="cpu", overrides=overrides, out_dir=out)
    finally:
        torch.set_num_threads(threads)


def files_under(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in folder.rglob("*") if p.is_file()}


def test_the_isolated_interpreter_cannot_import_nodegraph(tmp_path):
    done = run_isolated(["-c", "import torch, pytorch3d\ntry:\n    import nodegraph\nexcept ImportError:\n"
                               "    print('absent')\nelse:\n    print('present')"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "absent"


RUN_ALL = """
import json, runpy, sys, time, traceback
report = {}
for job in json.loads(sys.argv[1]):
    sys.argv = job["argv"]
    started = time.perf_counter()
    try:
        runpy.run_path(job["argv"][0], run_name="__main__")
        report[job["name"]] = {"ok": True, "seconds": time.perf_counter() - started}
    except BaseException:
        report[job["name"]] = {"ok": False, "error": traceback.format_exc()[-3000:]}
with open(job["report"], "w") as f:
    json.dump(report, f)
"""


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> Path:
    """Every example exported (with its tiny overrides) and run, all in one fresh interpreter without
    nodegraph (importing torch and pytorch3d once, not once per script)."""
    folder = tmp_path_factory.mktemp("exported")
    jobs, export_seconds = [], {}
    for name, overrides in EXAMPLES.items():
        started = time.perf_counter()
        text = session_of(name).export(overrides=overrides)
        export_seconds[name] = time.perf_counter() - started
        path = folder / f"{name}.py"
        path.write_text(text)
        jobs.append({"name": name, "report": str(folder / "report.json"),
                     "argv": [str(path), "--device", "cpu", "--out", str(folder / name / "out"),
                              "--history", str(folder / name / "history.json")]})
        (folder / name).mkdir()
    done = run_isolated(["-c", RUN_ALL, json.dumps(jobs)], folder, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (folder / "export_seconds.json").write_text(json.dumps(export_seconds))
    return folder


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_an_exported_example_reproduces_the_executor(name, scripts, tmp_path):
    report = json.loads((scripts / "report.json").read_text())[name]
    assert report["ok"], report.get("error")
    seconds = json.loads((scripts / "export_seconds.json").read_text())[name]
    assert seconds < 5, f"export took {seconds:.2f} s"
    script = (scripts / f"{name}.py").read_text()
    assert not re.search(r"^\s*(import|from)\s+nodegraph", script, re.M), "the script imports nodegraph"
    ours, theirs = tmp_path / "executor", scripts / name / "out"
    results = run_executor(name, EXAMPLES[name], ours)

    wanted, got = files_under(ours), files_under(theirs)
    assert sorted(wanted) == sorted(got) and wanted
    for rel, p in wanted.items():
        if p.suffix == ".png":
            a, b = np.asarray(Image.open(p)), np.asarray(Image.open(got[rel]))
            assert a.shape == b.shape and np.array_equal(a, b), f"{rel}: {np.abs(a.astype(int) - b).max()} apart"
        elif p.suffix == ".pt":
            assert torch.equal(torch.load(p), torch.load(got[rel])), rel
        else:
            assert p.read_bytes() == got[rel].read_bytes(), rel

    trainers = [n for n, out in results.items() if "history" in out]
    if trainers:
        history = json.loads((scripts / name / "history.json").read_text())
        assert sorted(history) == sorted(trainers)
        for trainer in trainers:
            expected = results[trainer]["history"].series
            assert sorted(history[trainer]) == sorted(expected)
            for term, values in expected.items():
                assert len(history[trainer][term]) == len(values), term
                np.testing.assert_allclose(history[trainer][term], values, rtol=1e-6, err_msg=term)


HELP_ALL = """
import runpy, sys
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        assert exc.code == 0, (path, exc.code)
    else:
        raise AssertionError(path + " did not stop at --help")
"""


def test_every_exportable_example_passes_ruff_and_answers_help(tmp_path):
    """Every example graph whose nodes all have export forms: one ruff run, one interpreter for --help."""
    scripts = []
    for graph in sorted(GRAPHS.glob("*.json")):
        try:
            text = nodegraph.load(graph).export()
        except ExportError:
            continue
        scripts.append(tmp_path / f"{graph.stem}.py")
        scripts[-1].write_text(text)
        compile(text, str(scripts[-1]), "exec")
    assert {p.stem for p in scripts} >= set(EXAMPLES) - set(BUILT)
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", *map(str, scripts)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout[-4000:]
    done = run_isolated(["-c", HELP_ALL, *map(str, scripts)], tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("usage: ") == len(scripts) and done.stdout.count("--preview-every") >= len(scripts)


def test_every_param_is_an_argument_with_the_graph_default(tmp_path):
    session = nodegraph.load(GRAPHS / "render_textured_cow.json")
    script = session.export(overrides={"raster.image_size": 77})
    assert "'--raster-image-size', dest='raster_image_size', type=int, default=77" in script
    assert "help='output images are image_size x image_size pixels'" in script
    assert session.graph.nodes["raster"].params["image_size"] == 512  # the session's graph is not changed


def test_a_node_without_an_export_form_is_refused_by_name(tmp_path):
    from tests import toy_nodes

    registry = default_registry().with_modules(toy_nodes)
    session = nodegraph.new(registry=registry, base_dir=tmp_path)
    session.add_node("ToyConst", "mystery")
    session.add_node("SaveTensor", "save")
    session.connect("mystery", "out", "save", "tensor")
    with pytest.raises(ExportError) as err:
        session.export()
    assert [p.node for p in err.value.problems] == ["mystery"]
    assert "ToyConst has no export form" in str(err.value)
    assert isinstance(err.value, GraphError)


def test_every_node_of_the_library_has_an_export_form():
    """The catalogue: a new node must come with its export form (docs/export.md)."""
    missing = sorted(s.name for s in default_registry() if s.export is None)
    assert missing == []


def test_group_paths_become_readable_distinct_names_with_the_path_in_the_comment():
    script = session_of("render_three_views").export(overrides={"raster.image_size": 24})
    assert "# front/view: LookAtViewTransform" in script
    assert "front_view_R, front_view_T = look_at_view_transform(" in script
    assert "'--front-view-azim', dest='front_view_azim', type=float, default=180.0" in script
    assert "'--left-view-azim', dest='left_view_azim', type=float, default=90.0" in script


def test_names_that_would_collide_get_a_suffix():
    from nodegraph.export.arguments import Arguments
    from nodegraph.export.writer import Names

    names = Names(["view1/raster", "view1_raster", "view1"], outputs={"view1": ["raster", "other"]})
    got = [names.node(n) for n in ("view1/raster", "view1_raster", "view1")]
    assert len(set(got)) == 3 and "view1_raster" not in got  # view1's output variable is view1_raster
    assert got[2] == "view1"

    from types import SimpleNamespace

    args = Arguments(SimpleNamespace(params={"a": {}, "a_b": {}}), Names(["a", "a_b"]))
    assert [args.dest("a", "b_c"), args.dest("a_b", "c"), args.dest("a", "b_c")] == ["a_b_c", "a_b_c_2", "a_b_c"]


def test_muted_and_bypassed_nodes_are_left_out_and_passed_through():
    script = session_of("modes").export()
    assert "# moved: TransformMeshes" not in script and "# log: So3LogMap" not in script
    assert "so3_log_map" not in script  # exp reads its own value param instead, as in the executor
    assert "MeshRenderer(rasterizer=rasterizer, shader=shader)(cow)" in script  # the bypass passes the cow on
    script = session_of("three_views_muted").export()
    assert "# left/" not in script and "# right/render: MeshRenderer" in script
