"""Benchmark: graphs/fit_textured_volume.json against the same tutorial hand-written in PyTorch3D.

Both train the same voxel grid with the same settings and seed; the script reports seconds per iteration of
each training loop, their ratio, and PSNR on the training views and on held-out views (half a camera step
between them). Timing is robust to a busy machine: after the full runs, short runs alternate (hand-written,
graph, ...) and each side's best seconds per iteration counts: CPU time on a CPU (robust when other jobs share
the cores), synchronised wall time on a GPU.

    python benchmarks/fit_volume.py --scale cpu               # 64^3, 64x64, 75 points, 200 its (2-core CPU)
    python benchmarks/fit_volume.py --scale tutorial --device cuda
    python benchmarks/fit_volume.py --scale ci                # the tiny form CI trains (seconds)

Preview taps are off in the graph (``optimize.preview_every=0``) so both loops do the same work.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fit_overrides, run_benchmark  # noqa: E402
from _handwritten_volume import VolumeSettings, evaluate, train  # noqa: E402

SCALES = {
    "tutorial": VolumeSettings(),
    "cpu": VolumeSettings(image_size=64, volume_size=64, n_pts_per_ray=75, iterations=200),
    "ci": VolumeSettings(num_views=20, image_size=32, volume_size=32, n_pts_per_ray=40, batch_size=6,
                         iterations=80, silhouette="hard"),
}


def volume_overrides(s: VolumeSettings, seed: int) -> dict:
    return fit_overrides(s, seed, {
        "raysampler.image_width": s.image_size, "raysampler.image_height": s.image_size,
        "raysampler.n_pts_per_ray": s.n_pts_per_ray, "raysampler.max_depth": s.extent,
        "volume.resolution": s.volume_size, "volume.extent": s.extent, "batch.batch_size": s.batch_size,
    })


def main(argv: list[str] | None = None) -> dict:
    return run_benchmark(
        __doc__, SCALES, argv, name="fit_volume", benchmark="fit_textured_volume",
        graph_file="fit_textured_volume.json", overrides=volume_overrides, train=train,
        evaluate=lambda model, data, s: evaluate(model, data), targets=["psnr_views", "psnr_heldout"],
        read_graph=lambda out: {"psnr_train": out["psnr_views"]["psnr"],
                                "psnr_heldout": out["psnr_heldout"]["psnr"]},
        compare=lambda hand, graph: {"psnr_train_diff_db": graph["psnr_train"] - hand["psnr_train"],
                                     "psnr_heldout_diff_db": graph["psnr_heldout"] - hand["psnr_heldout"]})


if __name__ == "__main__":
    main()
