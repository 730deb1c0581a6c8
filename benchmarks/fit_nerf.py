"""Benchmark: graphs/fit_simple_nerf.json against the same tutorial hand-written in PyTorch3D.

Both train the tutorial's NeRF MLP with the same settings and seed; the script reports seconds per iteration
of each training loop, their ratio, PSNR and silhouette IoU on held-out views (half a camera step between the
training views), and the PSNR of an all-black image for scale. Timing alternates short runs after the full
ones, as in ``fit_volume.py``.

    python benchmarks/fit_nerf.py --scale cpu                 # a CPU-sized setting that clearly learns
    python benchmarks/fit_nerf.py --scale tutorial --device cuda
    python benchmarks/fit_nerf.py --scale ci                  # the tiny form CI trains

Preview taps are off in the graph (``optimize.preview_every=0``) so both loops do the same work.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _handwritten_nerf import NerfSettings, evaluate, prepare, train  # noqa: E402
from fit_volume import MESH, GraphRunner, alternate_timing, report  # noqa: E402

SCALES = {
    "tutorial": NerfSettings(),
    "cpu": NerfSettings(num_views=40, image_size=64, n_rays_per_image=384, n_pts_per_ray=32,
                        n_harmonic_functions=12, n_hidden_neurons=96, batch_size=6, iterations=600,
                        eval_pts_per_ray=32, silhouette="soft"),
    "ci": NerfSettings(num_views=20, image_size=32, n_rays_per_image=256, n_pts_per_ray=32, n_harmonic_functions=12,
                       n_hidden_neurons=64, batch_size=4, iterations=300, eval_pts_per_ray=32, silhouette="hard"),
}


def nerf_overrides(s: NerfSettings, seed: int) -> dict:
    return {
        "views.num_views": s.num_views, "views.image_size": s.image_size, "views.silhouette": s.silhouette,
        "heldout.num_views": s.heldout_views, "heldout.image_size": s.image_size,
        "heldout.silhouette": s.silhouette, "heldout.azimuth_offset": 180.0 / (s.num_views - 1),
        "raysampler.n_rays_per_image": s.n_rays_per_image, "raysampler.n_pts_per_ray": s.n_pts_per_ray,
        "raysampler.max_depth": s.extent, "nerf.n_harmonic_functions": s.n_harmonic_functions,
        "nerf.n_hidden_neurons": s.n_hidden_neurons, "batch.batch_size": s.batch_size,
        "eval_raysampler.image_width": s.image_size, "eval_raysampler.image_height": s.image_size,
        "eval_raysampler.n_pts_per_ray": s.eval_pts_per_ray, "eval_raysampler.max_depth": s.extent,
        "render_heldout.chunk_size": s.chunk_size,
        "optimize.lr": s.lr, "optimize.iterations": s.iterations, "optimize.decay_at": s.decay_at,
        "optimize.seed": seed, "optimize.preview_every": 0,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--scale", choices=sorted(SCALES), default="cpu")
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
    if args.threads:
        torch.set_num_threads(args.threads)
    s = SCALES[args.scale]
    if args.iterations:
        s = replace(s, iterations=args.iterations)

    started = time.perf_counter()
    data = prepare(MESH, s, args.device)
    field, hand_seconds, hand_loss = train(data, s, s.iterations, args.seed)
    hand = {**evaluate(field, data, s), "final_loss": hand_loss, "sec_per_it": hand_seconds / s.iterations}
    del field

    runner = GraphRunner(ROOT / "graphs" / "fit_simple_nerf.json", nerf_overrides(s, args.seed), args.device)
    out = runner.run(["psnr_heldout", "iou_heldout"])
    graph = {"psnr_heldout": out["psnr_heldout"]["psnr"], "iou_heldout": out["iou_heldout"]["iou"],
             "final_loss": out["optimize"]["final_loss"], "sec_per_it": runner.seconds[-1] / s.iterations}

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
        "benchmark": "fit_simple_nerf", "scale": args.scale, "device": args.device, "seed": args.seed,
        "threads": torch.get_num_threads(), "settings": asdict(s),
        "handwritten": hand, "graph": graph, "timing": timing, "time_ratio": timing["time_ratio"],
        "psnr_heldout_diff_db": graph["psnr_heldout"] - hand["psnr_heldout"],
        "learned_db_above_black": hand["psnr_heldout"] - hand["psnr_black"],
        "wall_seconds": time.perf_counter() - started,
    }
    report("fit_nerf", result, args.json)
    return result


if __name__ == "__main__":
    main()
