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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fit_overrides, run_benchmark  # noqa: E402
from _handwritten_nerf import NerfSettings, evaluate, train  # noqa: E402

SCALES = {
    "tutorial": NerfSettings(),
    "cpu": NerfSettings(num_views=40, image_size=64, n_rays_per_image=384, n_pts_per_ray=32,
                        n_harmonic_functions=12, n_hidden_neurons=96, batch_size=6, iterations=600,
                        eval_pts_per_ray=32, silhouette="soft"),
    "ci": NerfSettings(num_views=20, image_size=32, n_rays_per_image=256, n_pts_per_ray=32, n_harmonic_functions=12,
                       n_hidden_neurons=64, batch_size=4, iterations=300, eval_pts_per_ray=32, silhouette="hard"),
}


def nerf_overrides(s: NerfSettings, seed: int) -> dict:
    return fit_overrides(s, seed, {
        "raysampler.n_rays_per_image": s.n_rays_per_image, "raysampler.n_pts_per_ray": s.n_pts_per_ray,
        "raysampler.max_depth": s.extent, "nerf.n_harmonic_functions": s.n_harmonic_functions,
        "nerf.n_hidden_neurons": s.n_hidden_neurons, "batch.batch_size": s.batch_size,
        "eval_raysampler.image_width": s.image_size, "eval_raysampler.image_height": s.image_size,
        "eval_raysampler.n_pts_per_ray": s.eval_pts_per_ray, "eval_raysampler.max_depth": s.extent,
        "render_heldout.chunk_size": s.chunk_size,
    })


def main(argv: list[str] | None = None) -> dict:
    return run_benchmark(
        __doc__, SCALES, argv, name="fit_nerf", benchmark="fit_simple_nerf", graph_file="fit_simple_nerf.json",
        overrides=nerf_overrides, train=train, evaluate=evaluate, targets=["psnr_heldout", "iou_heldout"],
        read_graph=lambda out: {"psnr_heldout": out["psnr_heldout"]["psnr"], "iou_heldout": out["iou_heldout"]["iou"]},
        compare=lambda hand, graph: {"psnr_heldout_diff_db": graph["psnr_heldout"] - hand["psnr_heldout"],
                                     "learned_db_above_black": hand["psnr_heldout"] - hand["psnr_black"]})


if __name__ == "__main__":
    main()
