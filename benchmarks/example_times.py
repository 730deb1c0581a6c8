"""How long each example graph takes at its published (tutorial) size, as a user runs it: `nodegraph run`.

Each graph runs in a fresh process (imports, the numba cache, the run itself), as shipped. Graphs whose
training is too long to wait for here run with fewer iterations (``MEASURED`` below); their total is then
projected from the measured run: its wall time plus the missing iterations at the rate the run's progress
events show (iterations after the first two, so the first iteration's warm-up is not counted twice).

    python benchmarks/example_times.py                      # every graph in graphs/
    python benchmarks/example_times.py fit_simple_nerf deform_sphere_to_cow
    python benchmarks/example_times.py --json times.json     # also write the table as JSON

Prints one row per graph: measured wall seconds, the iterations run of those shipped, seconds per iteration
and the projected total. Times on a shared machine drift up to 2-3x; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"

# Overrides for graphs whose full training takes longer than a benchmark should: fewer trainer iterations
# (the rest of the shipped ones are projected) and, where a short fit leaves nothing for a later node to
# find, a setting that keeps that node's work the same size.
MEASURED: dict[str, dict[str, object]] = {
    "camera_pose_cow_textured": {"optimize.iterations": 12},
    "deform_sphere_to_cow": {"optimize.iterations": 200},
    "fit_simple_nerf": {"optimize.iterations": 12, "extract_mesh.isolevel": 5e-5},
    "fit_textured_mesh": {"stage_silhouette.iterations": 40, "stage_textured.iterations": 40},
    "fit_textured_volume": {"optimize.iterations": 12, "extract_mesh.isolevel": 0.01},
}


def shipped_iterations(graph: dict) -> dict[str, int]:
    """Each trainer's shipped iteration count (node id -> iterations)."""
    return {n["id"]: int(n["params"]["iterations"]) for n in graph["nodes"]
            if "iterations" in n.get("params", {})}


def progress_rates(events_file: Path) -> dict[str, tuple[int, float]]:
    """Per trainer: the iterations it reached, and seconds per iteration between its first progress event from
    the second iteration on and its last (the whole span when it reported less than that)."""
    seen: dict[str, list[tuple[int, float]]] = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "progress":
            seen.setdefault(event["node"], []).append((int(event["iteration"]), float(event["elapsed_s"])))
    rates = {}
    for node, points in seen.items():
        last = max(points)
        first = min((p for p in points if p[0] >= 2), default=(0, 0.0))
        if first >= last:
            first = (0, 0.0)
        rates[node] = (last[0], (last[1] - first[1]) / max(last[0] - first[0], 1))
    return rates


def time_graph(name: str, threads: int | None) -> dict:
    """Run one graph with `nodegraph run` in a fresh process; its wall time, iterations and projection."""
    path = GRAPHS / f"{name}.json"
    graph = json.loads(path.read_text())
    shipped = shipped_iterations(graph)
    overrides = MEASURED.get(name, {})
    args = [sys.executable, "-m", "nodegraph", "run", str(path), "--quiet", "--device", "cpu"]
    for key, value in overrides.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix=f"times-{name}-") as out:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(args + ["--out", out], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            return {"graph": name, "error": (done.stderr or done.stdout).strip()[-400:]}
        manifest = json.loads((Path(out) / "manifest.json").read_text())
        rates = progress_rates(Path(out) / "events.jsonl")
    projected = wall
    trainers = {}
    for node, full in shipped.items():
        reached, rate = rates.get(node, (full, 0.0))
        trainers[node] = {"shipped": full, "ran": reached, "s_per_it": round(rate, 4)}
        if f"{node}.iterations" in overrides:
            projected += (full - reached) * rate
    return {"graph": name, "wall_s": round(wall, 1), "run_s": manifest["seconds"], "projected_s": round(projected, 1),
            "projected": bool(overrides), "trainers": trainers, "load": round(load, 2),
            "raster_backend": manifest.get("raster_backend")}


def human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("graphs", nargs="*", help="graph names (default: every graph in graphs/)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the runs")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()
    names = args.graphs or sorted(p.stem for p in GRAPHS.glob("*.json"))
    print(f"{os.cpu_count()} CPUs; each graph as shipped (trainers with fewer iterations where noted, "
          f"the rest projected)")
    print(f"{'graph':28} {'wall':>8} {'iterations (ran/shipped, s/it)':44} {'total':>9}  load")
    rows = []
    for name in names:
        row = time_graph(name, args.threads)
        rows.append(row)
        if "error" in row:
            print(f"{name:28} failed: {row['error']}")
            continue
        its = ", ".join(f"{t['ran']}/{t['shipped']} @ {t['s_per_it']:.3g} s" for t in row["trainers"].values())
        total = human(row["projected_s"]) + ("*" if row["projected"] else "")
        print(f"{name:28} {row['wall_s']:>7.1f}s {its:44} {total:>9}  {row['load']}", flush=True)
    print("* projected from the iterations run")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
