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

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import nodegraph  # noqa: E402
from _handwritten_volume import VolumeSettings, evaluate, prepare, train  # noqa: E402

MESH = str(ROOT / "graphs" / "assets" / "cow_mesh" / "cow.obj")
SCALES = {
    "tutorial": VolumeSettings(),
    "cpu": VolumeSettings(image_size=64, volume_size=64, n_pts_per_ray=75, iterations=200),
    "ci": VolumeSettings(num_views=20, image_size=32, volume_size=32, n_pts_per_ray=40, batch_size=6,
                         iterations=80, silhouette="hard"),
}


class GraphRunner:
    """Runs a graph's training stage with overrides and reads the Optimize node's time from its events."""

    def __init__(self, path: Path, overrides: dict, device: str, trainer: str = "optimize") -> None:
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


def volume_overrides(s: VolumeSettings, seed: int) -> dict:
    return {
        "views.num_views": s.num_views, "views.image_size": s.image_size, "views.silhouette": s.silhouette,
        "heldout.num_views": s.heldout_views, "heldout.image_size": s.image_size,
        "heldout.silhouette": s.silhouette, "heldout.azimuth_offset": 180.0 / (s.num_views - 1),
        "raysampler.image_width": s.image_size, "raysampler.image_height": s.image_size,
        "raysampler.n_pts_per_ray": s.n_pts_per_ray, "raysampler.max_depth": s.extent,
        "volume.resolution": s.volume_size, "volume.extent": s.extent, "batch.batch_size": s.batch_size,
        "optimize.lr": s.lr, "optimize.iterations": s.iterations, "optimize.decay_at": s.decay_at,
        "optimize.seed": seed, "optimize.preview_every": 0,
    }


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
    model, hand_seconds, hand_loss = train(data, s, s.iterations, args.seed)
    hand = {**evaluate(model, data), "final_loss": hand_loss, "sec_per_it": hand_seconds / s.iterations}
    del model

    runner = GraphRunner(ROOT / "graphs" / "fit_textured_volume.json", volume_overrides(s, args.seed), args.device)
    out = runner.run(["psnr_views", "psnr_heldout"])
    graph = {"psnr_train": out["psnr_views"]["psnr"], "psnr_heldout": out["psnr_heldout"]["psnr"],
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
        "benchmark": "fit_textured_volume", "scale": args.scale, "device": args.device, "seed": args.seed,
        "threads": torch.get_num_threads(), "settings": asdict(s),
        "handwritten": hand, "graph": graph, "timing": timing, "time_ratio": timing["time_ratio"],
        "psnr_train_diff_db": graph["psnr_train"] - hand["psnr_train"],
        "psnr_heldout_diff_db": graph["psnr_heldout"] - hand["psnr_heldout"],
        "wall_seconds": time.perf_counter() - started,
    }
    report("fit_volume", result, args.json)
    return result


if __name__ == "__main__":
    main()
