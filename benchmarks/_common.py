"""What the volume and NeRF fit benchmarks share.

Two halves, kept apart so the hand-written baselines never import nodegraph:

- the tutorials' side (``generate_cow_renders``, ``prepare``, the pseudo-Huber loss, PSNR and ``TutorialLoop``,
  the random-batch Adam loop with one 10x lr drop that both tutorials train with), used by
  ``_handwritten_volume.py`` and ``_handwritten_nerf.py``;
- the driver (``GraphRunner``, ``alternate_timing``, ``report`` and ``run_benchmark``, the command line and the
  hand-written vs graph comparison), used by ``fit_volume.py`` and ``fit_nerf.py``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import torch
from pytorch3d.io import load_objs_as_meshes
from pytorch3d.renderer import (BlendParams, FoVPerspectiveCameras, MeshRasterizer, MeshRenderer, PointLights,
                                RasterizationSettings, SoftPhongShader, SoftSilhouetteShader,
                                look_at_view_transform)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MESH = str(ROOT / "graphs" / "assets" / "cow_mesh" / "cow.obj")


# --- the tutorials' side ------------------------------------------------------------------------------------------

def generate_cow_renders(mesh_path: str, num_views: int, image_size: int, device, azimuth_offset: float = 0.0,
                         silhouette: str = "soft"):
    """The tutorial's data: shaded renders on black, binary silhouettes, cameras on a ring (elevation 0)."""
    mesh = load_objs_as_meshes([mesh_path], device=device)
    verts = mesh.verts_packed()
    center = verts.mean(0)
    scale = max((verts - center).abs().max(0)[0])
    mesh.offset_verts_(-center.expand(verts.shape[0], 3))
    mesh.scale_verts_(1.0 / float(scale))
    meshes = mesh.extend(num_views)
    elev = torch.linspace(0, 0, num_views)
    azim = torch.linspace(-180, 180, num_views) + 180.0 + azimuth_offset
    R, T = look_at_view_transform(dist=2.7, elev=elev, azim=azim)
    cameras = FoVPerspectiveCameras(device=device, R=R, T=T)
    lights = PointLights(device=device, location=[[0.0, 0.0, -3.0]])
    with torch.no_grad():
        raster = RasterizationSettings(image_size=image_size, blur_radius=0.0, faces_per_pixel=1)
        blend = BlendParams(sigma=1e-4, gamma=1e-4, background_color=(0.0, 0.0, 0.0))
        rasterizer = MeshRasterizer(cameras=cameras, raster_settings=raster)
        renderer = MeshRenderer(rasterizer=rasterizer, shader=SoftPhongShader(device=device, cameras=cameras,
                                                                              lights=lights, blend_params=blend))
        images = renderer(meshes, cameras=cameras, lights=lights)
        if silhouette == "soft":
            sigma = 1e-4
            raster_sil = RasterizationSettings(image_size=image_size, faces_per_pixel=50,
                                               blur_radius=math.log(1.0 / 1e-4 - 1.0) * sigma)
            sil = MeshRenderer(MeshRasterizer(cameras=cameras, raster_settings=raster_sil),
                               SoftSilhouetteShader())(meshes, cameras=cameras, lights=lights)[..., 3]
            silhouettes = (sil > 1e-4).float()
        else:
            silhouettes = (rasterizer(meshes).pix_to_face[..., 0] >= 0).float()
    return cameras, images[..., :3], silhouettes


def prepare(mesh_path: str, s, device) -> dict:
    """Training views and held-out views (half a camera step away), rendered once."""
    device = torch.device(device)
    cameras, images, silhouettes = generate_cow_renders(mesh_path, s.num_views, s.image_size, device,
                                                        silhouette=s.silhouette)
    held_cams, held_images, held_sils = generate_cow_renders(mesh_path, s.heldout_views, s.image_size, device,
                                                             azimuth_offset=180.0 / (s.num_views - 1),
                                                             silhouette=s.silhouette)
    return {"device": device, "cameras": cameras, "images": images, "silhouettes": silhouettes,
            "held_cameras": held_cams, "held_images": held_images, "held_silhouettes": held_sils}


def huber(x, y, scaling=0.1):
    diff_sq = (x - y) ** 2
    return ((1 + diff_sq / (scaling ** 2)).clamp(1e-4).sqrt() - 1) * float(scaling)


def psnr(images, targets):
    mse = ((images.clamp(0, 1) - targets) ** 2).flatten(1).mean(1)
    return float((-10 * torch.log10(mse)).mean())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class TutorialLoop:
    """The tutorials' training loop around the model-specific step, timed.

    Iterating yields ``(batch_cameras, batch_idx)``, ``s.batch_size`` random training cameras each iteration
    (``batch_idx`` on the device) after seeding torch with ``seed``; ``step(optimizer, loss)`` takes the Adam step
    and drops the lr 10x after ``decay_at * iterations`` steps, keeping the optimiser (as ``Optimize`` does).
    Afterwards ``seconds`` is the loop's (synchronised) wall time and ``final_loss`` the last loss.
    """

    def __init__(self, data: dict, s, iterations: int, seed: int = 0) -> None:
        self.data, self.batch_size, self.iterations, self.seed = data, s.batch_size, iterations, seed
        self.decay_step = int(s.decay_at * iterations)
        self.seconds = self.final_loss = None
        self._iteration, self._loss = 0, None

    def __iter__(self):
        device, cameras = self.data["device"], self.data["cameras"]
        torch.manual_seed(self.seed)
        _synchronize(device)
        started = time.perf_counter()
        for self._iteration in range(self.iterations):
            batch_idx = torch.randperm(len(cameras))[:self.batch_size]
            yield FoVPerspectiveCameras(R=cameras.R[batch_idx], T=cameras.T[batch_idx],
                                        znear=cameras.znear[batch_idx], zfar=cameras.zfar[batch_idx],
                                        aspect_ratio=cameras.aspect_ratio[batch_idx],
                                        fov=cameras.fov[batch_idx], device=device), batch_idx.to(device)
        self.final_loss = float(self._loss.detach())
        _synchronize(device)
        self.seconds = time.perf_counter() - started

    def step(self, optimizer, loss) -> None:
        self._loss = loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if self._iteration + 1 == self.decay_step:
            for group in optimizer.param_groups:
                group["lr"] *= 0.1


# --- the driver ---------------------------------------------------------------------------------------------------

class GraphRunner:
    """Runs a graph's training stage with overrides and reads the Optimize node's time from its events."""

    def __init__(self, path: Path, overrides: dict, device: str, trainer: str = "optimize") -> None:
        import nodegraph  # here, not at the top: the hand-written baselines import this module too

        self.graph = nodegraph.load(path)
        self.graph.set_params(overrides)
        self.device, self.trainer = device, trainer
        self.seconds: list[float] = []
        self.graph.executor.bus.subscribe(self._on_event)

    def _on_event(self, event: dict) -> None:
        if event["type"] == "node_finished" and event["node"] == self.trainer and not event["cached"]:
            self.seconds.append(event["seconds"])

    def run(self, targets: list[str], **overrides) -> dict:
        self.graph.set_params(overrides)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return self.graph.run(device=self.device, targets=targets, out_dir=ROOT / "benchmarks" / "out")


def cpu_timed(fn, *args) -> tuple[float, float]:
    """(wall seconds ``fn`` reports, CPU seconds this process spent meanwhile, all threads)."""
    started = time.process_time()
    wall = fn(*args)
    return wall, time.process_time() - started


def alternate_timing(hand, graph, runs: int, iterations: int, device: str, timing_threads: int = 0) -> dict:
    """Short alternating training runs of each side; their best seconds per iteration and the ratio.

    On a CPU the ratio uses CPU time (robust when other jobs share the cores); on a GPU, synchronised wall time.
    """
    rows = {"handwritten": [], "graph": []}
    threads = torch.get_num_threads()
    if timing_threads:
        torch.set_num_threads(timing_threads)
    try:
        for i in range(runs):
            for name, fn in (("handwritten", hand), ("graph", graph)):
                wall, cpu = cpu_timed(fn, iterations, 1000 + i)
                rows[name].append({"wall": wall / iterations, "cpu": cpu / iterations})
    finally:
        torch.set_num_threads(threads)
    kind = "wall" if device.startswith("cuda") else "cpu"
    best = {name: min(r[kind] for r in runs_) for name, runs_ in rows.items()}
    best_wall = {name: min(r["wall"] for r in runs_) for name, runs_ in rows.items()}
    return {"runs": rows, "measure": kind, "threads": timing_threads or threads, "sec_per_it": best,
            "wall_sec_per_it": best_wall,
            "time_ratio": best["graph"] / best["handwritten"]}


def report(name: str, result: dict, out: Path | None) -> None:
    print(json.dumps(result, indent=2))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{name}: wrote {out}")


def fit_overrides(s, seed: int, graph_specific: dict) -> dict:
    """Graph overrides for settings ``s``: the parts both fit graphs share (their ``views`` and ``heldout``
    TargetViews, ``optimize``; previews off so both loops do the same work), then the graph's own."""
    return {
        "views.num_views": s.num_views, "views.image_size": s.image_size, "views.silhouette": s.silhouette,
        "heldout.num_views": s.heldout_views, "heldout.image_size": s.image_size,
        "heldout.silhouette": s.silhouette, "heldout.azimuth_offset": 180.0 / (s.num_views - 1),
        "optimize.lr": s.lr, "optimize.iterations": s.iterations, "optimize.decay_at": s.decay_at,
        "optimize.seed": seed, "optimize.preview_every": 0,
        **graph_specific,
    }


def parse_args(doc: str, scales: dict, argv: list[str] | None):
    """The fit benchmarks' command line; returns the arguments and the chosen scale's settings."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scale", choices=sorted(scales), default="cpu")
    ap.add_argument("--iterations", type=int, help="override the scale's iteration count")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing-runs", type=int, default=5, help="alternating short runs per side for timing")
    ap.add_argument("--timing-iterations", type=int, default=20)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--timing-threads", type=int,
                    help="torch threads for the timing runs (default on a CPU: 1, the steadiest CPU times on a shared "
                         "machine; on a GPU: unchanged)")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args(argv)
    s = scales[args.scale]
    if args.iterations:
        s = replace(s, iterations=args.iterations)
    return args, s


def run_benchmark(doc: str, scales: dict, argv: list[str] | None, *, name: str, benchmark: str, graph_file: str,
                  overrides: Callable[[object, int], dict], train: Callable, evaluate: Callable,
                  targets: list[str], read_graph: Callable[[dict], dict],
                  compare: Callable[[dict, dict], dict]) -> dict:
    """Train the hand-written tutorial and the graph with the same settings and seed, then time both.

    ``train(data, s, iterations, seed)`` returns (model, seconds, final loss) and ``evaluate(model, data, s)`` its
    metrics; ``read_graph`` takes the same metrics from the graph's outputs for ``targets``; ``compare(hand,
    graph)`` adds the differences to the result. The result is printed (and written with ``--json``).
    """
    args, s = parse_args(doc, scales, argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    data = prepare(MESH, s, args.device)
    model, hand_seconds, hand_loss = train(data, s, s.iterations, args.seed)
    hand = {**evaluate(model, data, s), "final_loss": hand_loss, "sec_per_it": hand_seconds / s.iterations}
    del model

    runner = GraphRunner(ROOT / "graphs" / graph_file, overrides(s, args.seed), args.device)
    out = runner.run(targets)
    graph = {**read_graph(out), "final_loss": out["optimize"]["final_loss"],
             "sec_per_it": runner.seconds[-1] / s.iterations}

    def hand_run(n: int, seed: int) -> float:
        return train(data, s, n, seed)[1]

    def graph_run(n: int, seed: int) -> float:  # a new seed: the same work, but not a cached result
        runner.run(["optimize"], **{"optimize.iterations": n, "optimize.seed": seed})
        return runner.seconds[-1]

    timing_threads = args.timing_threads if args.timing_threads is not None else \
        (0 if args.device.startswith("cuda") else 1)
    timing = alternate_timing(hand_run, graph_run, args.timing_runs, args.timing_iterations, args.device,
                              timing_threads)
    result = {
        "benchmark": benchmark, "scale": args.scale, "device": args.device, "seed": args.seed,
        "threads": torch.get_num_threads(), "settings": asdict(s),
        "handwritten": hand, "graph": graph, "timing": timing, "time_ratio": timing["time_ratio"],
        **compare(hand, graph),
        "wall_seconds": time.perf_counter() - started,
    }
    report(name, result, args.json)
    return result
