"""How much the graph executor adds to a batched render: graph vs hand-written PyTorch3D, in one process.

The graph is graphs/render_cow_batch.json (cow extended to N views, elev 0..180, azim -180..180, point light,
SoftPhongShader). Each repeat moves the light to the other of two positions, so the graph's cache is cold for
exactly what a light edit invalidates (light -> shader -> render: a full rasterize + shade of the batch), then
runs the same steps by hand (PointLights, SoftPhongShader, MeshRenderer on the same mesh batch and cameras).
The two alternate, and which goes first alternates too, so drift on a shared machine hits both alike.

    python benchmarks/render_overhead.py                       # CPU-sized: 20 views at 128 px
    python benchmarks/render_overhead.py --device cuda --tutorial   # the tutorial's 512 px on a GPU

Prints seconds per run for both, their medians and the ratio graph / hand-written (target <= 1.05).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import nodegraph  # noqa: E402

LIGHTS = ([0.0, 0.0, -3.0], [0.0, 0.5, -3.0])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--image-size", type=int, default=128, help="pixels per side (default 128, CPU-sized)")
    ap.add_argument("--views", type=int, default=20, help="batch size (default 20, as the tutorial)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of each (default 5)")
    ap.add_argument("--tutorial", action="store_true", help="tutorial scale: 512 px (overrides --image-size)")
    args = ap.parse_args()
    size = 512 if args.tutorial else args.image_size

    from pytorch3d.renderer import MeshRenderer, PointLights, SoftPhongShader

    g = nodegraph.load(ROOT / "graphs" / "render_cow_batch.json")
    g.set_params({"raster.image_size": size, "batch.n": args.views, "views.views": args.views})
    out_dir = Path(tempfile.mkdtemp(prefix="render_overhead_"))
    first = g.run(device=None if args.device == "auto" else args.device, targets=["render"], out_dir=out_dir)
    device = g.executor.device
    # the hand-written pipeline reuses what the graph built once (mesh batch, cameras, rasterizer), as a user
    # editing a light in a notebook would; it rebuilds lights, shader and renderer and renders, like the graph
    meshes, cameras = first["batch"]["mesh"], first["camera"]["cameras"]
    rasterizer = first["rasterizer"]["rasterizer"]

    def by_hand(location: list[float]) -> torch.Tensor:
        lights = PointLights(location=[location], device=device)
        shader = SoftPhongShader(device=device, cameras=cameras, lights=lights)
        return MeshRenderer(rasterizer=rasterizer, shader=shader)(meshes)

    node_seconds: list[float] = []  # time spent inside node functions during the last graph run
    g.executor.bus.subscribe(lambda e: node_seconds.append(e["seconds"])
                             if e["type"] == "node_finished" and not e.get("cached") else None)
    bookkeeping: list[float] = []

    def through_graph(location: list[float]) -> torch.Tensor:
        g.set_param("light", "location", location)
        g.executor.counts.clear()
        node_seconds.clear()
        start = time.perf_counter()
        images = g.run(device=device, targets=["render"])["render"]["images"]
        bookkeeping.append(time.perf_counter() - start - sum(node_seconds))
        assert set(g.executor.counts) == {"light", "shader", "render"}, dict(g.executor.counts)
        return images

    def timed(fn, location) -> tuple[float, torch.Tensor]:
        sync(device)
        start = time.perf_counter()
        images = fn(location)
        sync(device)
        return time.perf_counter() - start, images

    print(f"device {device}, {args.views} views at {size}x{size}, {args.repeats} repeats, "
          f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    by_hand(LIGHTS[1])  # warm both paths once (allocator, first-call overheads)
    through_graph(LIGHTS[1])
    graph_s, hand_s = [], []
    for i in range(args.repeats):
        location = LIGHTS[i % 2]
        order = [("graph", through_graph), ("hand", by_hand)]
        if i % 2:
            order.reverse()
        results = {}
        for name, fn in order:
            seconds, images = timed(fn, location)
            results[name] = images
            (graph_s if name == "graph" else hand_s).append(seconds)
        diff = float((results["graph"] - results["hand"]).abs().max())
        print(f"repeat {i + 1}: graph {graph_s[-1]:.3f} s, hand-written {hand_s[-1]:.3f} s, "
              f"max |diff| {diff:.2e}")
        assert diff < 1e-5, "the graph and the hand-written render disagree"
    g_med, h_med = statistics.median(graph_s), statistics.median(hand_s)
    print(f"median: graph {g_med:.3f} s, hand-written {h_med:.3f} s, ratio {g_med / h_med:.3f} "
          f"(best-of ratio {min(graph_s) / min(hand_s):.3f}, sum ratio {sum(graph_s) / sum(hand_s):.3f}); "
          f"target <= 1.05")
    book = statistics.median(bookkeeping[1:])
    print(f"executor bookkeeping outside node functions (validate, plan, keys, events): median "
          f"{book * 1000:.1f} ms per run = {100 * book / h_med:.2f} % of the hand-written render")


if __name__ == "__main__":
    main()
