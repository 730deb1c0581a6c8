"""How much training inside the graph costs per iteration, against hand-written PyTorch3D loops, in one process.

Two pipelines, each run as a shipped example graph and as the tutorial's loop written by hand:
- deform: graphs/deform_sphere_to_cow.json (ico-sphere level 4 -> cow, 5000 samples per mesh per iteration,
  chamfer + edge + normal + Laplacian, SGD) vs the deform tutorial's loop;
- camera: graphs/camera_pose_teapot.json (learnable camera, soft silhouette of the teapot, Adam) vs the
  camera-position tutorial's model.
The graph's time per iteration is the Optimize node's own time (the loop) / iterations; the hand-written one
times the same loop. Runs alternate graph / hand-written (and which goes first alternates), each repeated,
so drift on a shared machine hits both alike. A third variant runs the graph with a preview tap every 10
iterations (PreviewMesh / PreviewImage) and an event listener that receives the previews.

    python benchmarks/training_overhead.py                          # CPU-sized (64 px, 20 / 10 iterations)
    python benchmarks/training_overhead.py --device cuda --tutorial # tutorial scale: 256 px, 200 iterations
    python benchmarks/training_overhead.py --profile deform         # cProfile of one graph run

Prints wall and CPU seconds per iteration (median and best of the repeats) and the ratios graph / hand-written:
targets <= 1.05 without previews and <= 1.08 with them. On a CPU it times with one torch thread by default:
the process's CPU time is then the steadiest measure on shared cores (wall time waits for other jobs).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import nodegraph  # noqa: E402

GRAPHS = ROOT / "graphs"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class LoopTimer:
    """Wall and CPU seconds (this process, all its threads) of a training loop, per iteration."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self, iterations: int) -> dict:
        return {"wall": (time.perf_counter() - self.wall) / iterations,
                "cpu": (time.process_time() - self.cpu) / iterations}


# ------------------------------------------------------------------------------------------ by hand


def deform_by_hand(device: torch.device, iterations: int, seed: int = 0) -> dict:
    """The deform tutorial's loop; returns its wall and CPU seconds per iteration and the last loss."""
    from pytorch3d.io import load_obj
    from pytorch3d.loss import chamfer_distance, mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
    from pytorch3d.ops import sample_points_from_meshes
    from pytorch3d.structures import Meshes
    from pytorch3d.utils import ico_sphere

    verts, faces, _ = load_obj(GRAPHS / "assets/cow_mesh/cow.obj", load_textures=False)
    verts = verts.to(device)
    verts = verts - verts.mean(0)
    verts = verts / verts.abs().max()
    trg_mesh = Meshes(verts=[verts], faces=[faces.verts_idx.to(device)])
    src_mesh = ico_sphere(4, device)
    deform_verts = torch.zeros(src_mesh.verts_packed().shape, device=device, requires_grad=True)
    optimizer = torch.optim.SGD([deform_verts], lr=1.0, momentum=0.9)
    torch.manual_seed(seed)
    sync(device)
    timer = LoopTimer()
    timer.start()
    for _ in range(iterations):
        optimizer.zero_grad()
        new_src_mesh = src_mesh.offset_verts(deform_verts)
        sample_src = sample_points_from_meshes(new_src_mesh, 5000)  # in the graph's order, so the same draws
        sample_trg = sample_points_from_meshes(trg_mesh, 5000)
        loss_chamfer, _ = chamfer_distance(sample_src, sample_trg)
        loss = (loss_chamfer + mesh_edge_loss(new_src_mesh) + 0.01 * mesh_normal_consistency(new_src_mesh)
                + 0.1 * mesh_laplacian_smoothing(new_src_mesh, method="uniform"))
        loss.backward()
        optimizer.step()
        last = loss.item()  # the tutorial prints the loss every iteration
    sync(device)
    return timer.stop(iterations) | {"loss": last}


def camera_by_hand(device: torch.device, iterations: int, size: int) -> dict:
    """The camera-position tutorial's model and loop; returns its wall and CPU seconds per iteration and the
    last loss."""
    from pytorch3d.io import load_obj
    from pytorch3d.renderer import (BlendParams, FoVPerspectiveCameras, MeshRasterizer, MeshRenderer,
                                    RasterizationSettings, SoftSilhouetteShader, look_at_rotation,
                                    look_at_view_transform)
    from pytorch3d.structures import Meshes

    verts, faces, _ = load_obj(GRAPHS / "assets/teapot.obj", load_textures=False)
    mesh = Meshes(verts=[verts.to(device)], faces=[faces.verts_idx.to(device)])
    blend = BlendParams(sigma=1e-4, gamma=1e-4)
    settings = RasterizationSettings(image_size=size, blur_radius=math.log(1.0 / 1e-4 - 1.0) * blend.sigma,
                                     faces_per_pixel=100)
    renderer = MeshRenderer(MeshRasterizer(FoVPerspectiveCameras(device=device), settings),
                            SoftSilhouetteShader(blend_params=blend))
    R, T = look_at_view_transform(3.0, 50.0, 0.0, device=device)
    image_ref = renderer(mesh, R=R, T=T)[..., 3].detach()
    position = torch.nn.Parameter(torch.tensor([3.0, 6.9, 2.5], device=device))
    optimizer = torch.optim.Adam([position], lr=0.05)
    sync(device)
    timer = LoopTimer()
    timer.start()
    for _ in range(iterations):
        optimizer.zero_grad()
        R = look_at_rotation(position[None, :], device=device)
        T = -torch.bmm(R.transpose(1, 2), position[None, :, None])[:, :, 0]
        image = renderer(mesh.clone(), R=R, T=T)
        loss = torch.sum((image[..., 3] - image_ref) ** 2)
        loss.backward()
        optimizer.step()
        last = loss.item()  # the tutorial checks `loss.item() < 200` every iteration
    sync(device)
    return timer.stop(iterations) | {"loss": last}


# ------------------------------------------------------------------------------------------ graphs


def graph_overrides(name: str, iterations: int, size: int, previews: bool) -> dict:
    common = {"optimize.iterations": iterations, "optimize.preview_every": 10 if previews else 0,
              "optimize.stop_below": None}
    if name == "camera":
        return common | {"settings.image_size": size}
    return common


GRAPH_FILES = {"deform": "deform_sphere_to_cow.json", "camera": "camera_pose_teapot.json"}


def by_graph(name: str, device: torch.device, iterations: int, size: int, previews: bool) -> dict:
    """Run the example graph up to its Optimize node; returns the loop's wall and CPU seconds per iteration
    (from the Optimize node's start to its end, events) and the last loss."""
    g = nodegraph.load(GRAPHS / GRAPH_FILES[name])
    g.set_params(graph_overrides(name, iterations, size, previews))
    timer = LoopTimer()
    timing: dict = {}
    received: list[int] = []

    def listener(event: dict) -> None:
        if event["type"] == "node_started" and event["node"] == "optimize":
            sync(device)
            timer.start()
        elif event["type"] == "node_finished" and event["node"] == "optimize":
            timing.update(timer.stop(iterations))
        elif event["type"] == "preview":
            received.append(len(event.get("data") or b""))

    g.executor.bus.subscribe(listener)
    with tempfile.TemporaryDirectory() as out_dir:
        out = g.run(device=device, targets=["optimize"], out_dir=out_dir)
    g.executor.previews.flush()
    if previews and not received:
        raise RuntimeError(f"{name}: the preview tap sent nothing")
    return timing | {"loss": out["optimize"]["history"].series["total"][-1]}


# ------------------------------------------------------------------------------------------ main


def compare(name: str, device: torch.device, iterations: int, size: int, repeats: int) -> dict:
    variants: dict[str, Callable[[], dict]] = {
        "hand": (lambda: deform_by_hand(device, iterations)) if name == "deform" else
                (lambda: camera_by_hand(device, iterations, size)),
        "graph": lambda: by_graph(name, device, iterations, size, previews=False),
        "graph+previews": lambda: by_graph(name, device, iterations, size, previews=True),
    }
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    order = list(variants)
    for r in range(repeats):
        for key in (order if r % 2 == 0 else order[::-1]):
            runs[key].append(variants[key]())
        print(f"  {name} repeat {r + 1}/{repeats}: " + ", ".join(
            f"{k} {v[-1]['wall']:.4f} s/it ({v[-1]['cpu']:.4f} cpu)" for k, v in runs.items()) +
            "; last loss " + ", ".join(f"{k} {v[-1]['loss']:.6g}" for k, v in runs.items()), flush=True)
    out = {}
    for measure in ("wall", "cpu"):
        med = {k: statistics.median(r[measure] for r in v) for k, v in runs.items()}
        best = {k: min(r[measure] for r in v) for k, v in runs.items()}
        out[measure] = {"median": med, "best": best,
                        "ratio": med["graph"] / med["hand"], "ratio_best": best["graph"] / best["hand"],
                        "previews_ratio": med["graph+previews"] / med["hand"],
                        "previews_ratio_best": best["graph+previews"] / best["hand"]}
    return out


def profile(name: str, device: torch.device, iterations: int, size: int) -> None:
    """cProfile one graph run (previews on); report the time spent in nodegraph's own Python code (the executor,
    training loop, events, previews), which is the overhead a graph adds over the same calls made by hand."""
    import cProfile
    import pstats

    by_graph(name, device, 2, size, previews=True)  # warm-up: imports, allocator
    prof = cProfile.Profile()
    prof.enable()
    start = time.perf_counter()
    by_graph(name, device, iterations, size, previews=True)
    total = time.perf_counter() - start
    prof.disable()
    stats = pstats.Stats(prof)
    own = sum(tt for (path, _, _), (_, _, tt, _, _) in stats.stats.items()
              if f"{os.sep}nodegraph{os.sep}" in path)
    stats.sort_stats("tottime").print_stats(15)
    print(f"{name}: {iterations} iterations in {total:.2f} s (profiled); nodegraph's own code: {own:.3f} s "
          f"({100 * own / total:.2f} %, {1000 * own / iterations:.2f} ms per iteration)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--tutorial", action="store_true", help="tutorial scale: 256 px silhouettes, 200 iterations")
    ap.add_argument("--size", type=int, default=64, help="silhouette image size (default 64, CPU-sized)")
    ap.add_argument("--deform-iterations", type=int, default=20)
    ap.add_argument("--camera-iterations", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of each variant (default 5)")
    ap.add_argument("--only", choices=("deform", "camera"), help="run one pipeline")
    ap.add_argument("--profile", choices=("deform", "camera"), help="profile one graph run and exit")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default on a CPU: 1, the steadiest times on shared cores; 0: torch's choice)")
    args = ap.parse_args()
    if args.tutorial:
        args.size, args.deform_iterations, args.camera_iterations = 256, 200, 200
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else 0)
    if threads:
        torch.set_num_threads(threads)
    print(f"device {device}, torch threads {torch.get_num_threads()}, OMP_NUM_THREADS "
          f"{os.environ.get('OMP_NUM_THREADS')}, silhouettes {args.size} px, repeats {args.repeats}")
    if args.profile:
        its = args.deform_iterations if args.profile == "deform" else args.camera_iterations
        profile(args.profile, device, its, args.size)
        return
    by_hand_warmup = {"deform": lambda: deform_by_hand(device, 2), "camera": lambda: camera_by_hand(device, 2, 16)}
    results = {}
    for name, its in (("deform", args.deform_iterations), ("camera", args.camera_iterations)):
        if args.only and name != args.only:
            continue
        by_hand_warmup[name]()  # import and allocator warm-up, untimed
        results[name] = compare(name, device, its, args.size, args.repeats)
    print()
    print(f"{'pipeline':8} {'time':4} {'hand s/it':>10} {'graph s/it':>11} {'+previews':>10} {'ratio':>14} "
          f"{'ratio+previews':>15}   (median of {args.repeats}; best-of in brackets)")
    for name, result in results.items():
        for measure, r in result.items():
            m = r["median"]
            print(f"{name:8} {measure:4} {m['hand']:10.4f} {m['graph']:11.4f} {m['graph+previews']:10.4f} "
                  f"{r['ratio']:6.3f} [{r['ratio_best']:.3f}] {r['previews_ratio']:7.3f} "
                  f"[{r['previews_ratio_best']:.3f}]")


if __name__ == "__main__":
    main()
