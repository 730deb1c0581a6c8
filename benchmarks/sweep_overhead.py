"""What a sweep on Ray costs: Ray's start-up, the per-trial overhead against running the same graph alone, and
an 8-trial sweep on 1 vs 2 workers of 1 CPU each.

The trial is graphs/camera_pose_teapot.json at a CPU size with a fixed number of iterations (no early stop),
on one torch thread, recorded in the history like every run. "Alone" runs it in this process through
``Session.run``; "in a sweep" times, from the driver, trials submitted one at a time to a local cluster that
is already up (submission, scheduling, the worker's graph build, the run, the record coming back and being
written). Every figure is a median of alternating repeats.

    python benchmarks/sweep_overhead.py                    # trial >= 10 s (target: overhead <= 5 %)
    python benchmarks/sweep_overhead.py --iterations 10 --sweep-iterations 4 --repeats 1   # quicker
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a loopback-only local cluster (see sweep.py)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402
import torch  # noqa: E402

import nodegraph  # noqa: E402
from nodegraph import sweep as sweeps  # noqa: E402

GRAPH = ROOT / "graphs" / "camera_pose_teapot.json"


def overrides(size: int, iterations: int) -> dict:
    return {"settings.image_size": size, "settings.faces_per_pixel": 20, "optimize.iterations": iterations,
            "optimize.stop_below": None}


def alone(over: dict) -> float:
    torch.set_num_threads(1)
    s = nodegraph.load(GRAPH)
    started = time.perf_counter()
    s.run(device="cpu", overrides=over)
    return time.perf_counter() - started


def in_sweep(trials: list[dict]) -> float:
    started = time.perf_counter()
    result = sweeps.run_sweep(GRAPH, trials, metric="silhouette.loss", device="cpu", max_concurrent=None)
    bad = [r for r in result.rows if r["status"] != "ok"]
    assert not bad, bad
    return time.perf_counter() - started


def start_ray(cpus: int) -> float:
    started = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1", configure_logging=False)
    ray.get(ray.remote(lambda: 1).remote())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=25, help="of the overhead trial (aim for >= 10 s)")
    parser.add_argument("--sweep-iterations", type=int, default=12, help="of each trial of the 8-trial sweeps")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="ng-sweep-bench-"))
    figures: dict = {"cpu_threads_per_trial": 1, "size": args.size}

    over = overrides(args.size, args.iterations)
    alone(overrides(args.size, 2))  # warm the imports and the file cache
    figures["ray_start_s"] = round(start_ray(1), 2)
    in_sweep([overrides(args.size, 2)])  # the worker process imports torch and PyTorch3D once
    t_alone, t_sweep = [], []
    for i in range(args.repeats):
        order = [("alone", alone), ("sweep", lambda o: in_sweep([o]))]
        for name, fn in (order if i % 2 == 0 else order[::-1]):
            (t_alone if name == "alone" else t_sweep).append(fn(over))
    a, s = statistics.median(t_alone), statistics.median(t_sweep)
    figures.update(trial_alone_s=round(a, 3), trial_in_sweep_s=round(s, 3),
                   overhead_pct=round(100 * (s - a) / a, 2), alone_runs=t_alone, sweep_runs=t_sweep)
    print(f"trial alone {a:.2f} s, in a sweep {s:.2f} s: overhead {figures['overhead_pct']:+.1f} %  (target <= 5 %)")

    eight = [{**overrides(args.size, args.sweep_iterations), "optimize.lr": 0.03 + 0.01 * k} for k in range(8)]
    walls = {}
    for cpus in (1, 2):
        if cpus == 2:
            ray.shutdown()
            figures["ray_start_2cpu_s"] = round(start_ray(2), 2)
            in_sweep([overrides(args.size, 8)] * 2)  # both workers import torch and PyTorch3D once, in parallel
        walls[cpus] = in_sweep(eight)
        print(f"8 trials on {cpus} worker(s) of 1 CPU: {walls[cpus]:.1f} s")
    ray.shutdown()
    figures.update(eight_trials_1_worker_s=round(walls[1], 2), eight_trials_2_workers_s=round(walls[2], 2),
                   speedup=round(walls[1] / walls[2], 2))
    print(f"speed-up 1 -> 2 workers: {figures['speedup']:.2f}x (target close to 2x); Ray start-up "
          f"{figures['ray_start_s']:.1f} s")
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
