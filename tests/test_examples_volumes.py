"""The volume, NeRF and implicit-surface example graphs: canonical and valid as shipped, and each runs in the
CPU-sized form its description documents, with its quality asserted (PSNR, silhouette IoU)."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch3d.io import load_obj

import nodegraph
from nodegraph.graph import dumps

GRAPHS = ["volume_rendering_steps", "fit_textured_volume", "fit_simple_nerf", "pointcloud_to_volume",
          "implicit_surfaces"]
ROOT = Path(__file__).resolve().parent.parent


def cpu_form(graph) -> list[str]:
    """The ``--set NODE.PARAM=VALUE`` arguments the description documents for the CPU-sized run."""
    text = graph.description.split("CPU-sized run", 1)[1] if "CPU-sized run" in graph.description else ""
    return re.findall(r"--set \S+", text)


def overrides(args: list[str]) -> dict:
    out = {}
    for arg in args:
        key, _, raw = arg.removeprefix("--set ").partition("=")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def load_cpu_sized(graphs_dir: Path, name: str):
    g = nodegraph.load(graphs_dir / f"{name}.json")
    g.set_params(overrides(cpu_form(g)))
    assert g.validate() == []
    return g


def black_psnr(images: torch.Tensor) -> float:
    return float((-10 * torch.log10((images ** 2).flatten(1).mean(1))).mean())


@pytest.mark.parametrize("name", GRAPHS)
def test_example_is_canonical_valid_and_documents_a_cpu_form(graphs_dir, name):
    path = graphs_dir / f"{name}.json"
    g = nodegraph.load(path)
    assert dumps(g.to_json()) == path.read_text(), "run `python -m nodegraph fmt` on it"
    assert g.validate() == []
    assert all("pos" in n.ui for n in g.nodes.values())
    if name != "volume_rendering_steps":  # that one is CPU-sized as it is
        assert cpu_form(g), "the description must give the CPU-sized overrides"


def test_implicit_surfaces_cpu_form_through_the_cli(graphs_dir, tmp_path):
    g = nodegraph.load(graphs_dir / "implicit_surfaces.json")
    args = [a for s in cpu_form(g) for a in shlex.split(s)]
    proc = subprocess.run([sys.executable, "-m", "nodegraph", "run", str(graphs_dir / "implicit_surfaces.json"),
                           "--out", str(tmp_path), "--device", "cpu", "--quiet", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    grid = Image.open(tmp_path / "surfaces.png")
    assert grid.size == (4 * 48, 3 * 48)  # four views per row, one row per field
    pixels = torch.from_numpy(np.asarray(grid.convert("L"), dtype=np.float32)).view(3, 48, 4 * 48)
    assert all(float((row > 20).float().mean()) > 0.1 for row in pixels)  # every field shows up
    gif = Image.open(tmp_path / "torus_turntable.gif")
    assert gif.n_frames == 8
    for shape in ("sphere", "box", "torus"):  # the marching-cubes branch saves each field as a mesh
        verts, faces, _ = load_obj(tmp_path / f"{shape}.obj", load_textures=False)
        assert verts.shape[0] > 500 and faces.verts_idx.shape[0] > 1000, shape


def test_pointcloud_to_volume_cpu_form(graphs_dir, tmp_path):
    g = load_cpu_sized(graphs_dir, "pointcloud_to_volume")
    out = g.run(device="cpu", out_dir=tmp_path)
    vol = out["splat"]["volumes"]
    assert vol.get_grid_sizes().tolist() == [[48, 48, 48]]
    assert 0.0 <= float(vol.densities().min()) and float(vol.densities().max()) <= 1.0
    assert out["iou"]["iou"] > 0.7  # the splatted volume covers the mesh's silhouettes
    assert {"volume_vs_mesh.png", "slices.png", "turntable.gif"} <= {p.name for p in tmp_path.iterdir()}


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")  # a repeatable run (conftest.py)
def test_fit_textured_volume_cpu_form_learns_the_cow(graphs_dir, tmp_path):
    g = load_cpu_sized(graphs_dir, "fit_textured_volume")
    out = g.run(device="cpu", out_dir=tmp_path)
    black = black_psnr(out["views"]["images"])
    history = out["optimize"]["history"].series
    assert history["total"][-1] < 0.2 * history["total"][0]
    assert out["psnr_views"]["psnr"] > black + 9.0  # ~26 dB against ~13.5 for an all-black guess
    assert out["psnr_heldout"]["psnr"] > black + 8.5
    assert Image.open(tmp_path / "turntable.gif").n_frames == 8
    assert (tmp_path / "turntable.png").exists() and (tmp_path / "views.png").exists()
    mesh = out["extract_mesh"]["mesh"]  # the fitted density's isosurface, saved
    assert mesh.verts_packed().shape[0] > 100 and (tmp_path / "volume_mesh.ply").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("one_torch_thread")  # a repeatable run (conftest.py)
def test_fit_simple_nerf_cpu_form_learns_the_cow(graphs_dir, tmp_path):
    g = load_cpu_sized(graphs_dir, "fit_simple_nerf")
    out = g.run(device="cpu", out_dir=tmp_path)
    black = black_psnr(out["heldout"]["images"])
    assert out["psnr_heldout"]["psnr"] > black + 5.0  # ~21 dB against ~13.5 for an all-black guess
    assert out["iou_heldout"]["iou"] > 0.8
    assert Image.open(tmp_path / "turntable.gif").n_frames == 8
    assert (tmp_path / "heldout.png").exists()
    assert out["extract_mesh"]["mesh"].verts_packed().shape[0] > 100 and (tmp_path / "nerf_mesh.obj").exists()
