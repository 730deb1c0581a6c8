"""Does memory grow when a graph is edited and re-run many times in one process (as in the editor)?

Runs graphs/render_textured_cow.json at a small image size, then 100 edit-and-run cycles that alternate the
light position (so light, shader, render and save rerun each time and write their PNG). Prints the resident
set size (RSS) at cycle 10 and at the last cycle and the growth between them (target < 5 %).

    python benchmarks/memory_rerun.py [--cycles 100] [--image-size 64] [--device cpu]

RSS comes from psutil when installed, else from /proc/self/status (VmRSS), so no new dependency is needed.
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nodegraph  # noqa: E402


def rss_mib() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError("cannot read this process's resident memory (no psutil, no /proc)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = ap.parse_args()

    g = nodegraph.load(ROOT / "graphs" / "render_textured_cow.json")
    g.set_params({"raster.image_size": args.image_size})
    device = None if args.device == "auto" else args.device
    events = []
    g.executor.bus.subscribe(lambda e: events.append(e["type"]))  # a listener, as the editor has one
    with tempfile.TemporaryDirectory(prefix="memory_rerun_") as out_dir:
        g.run(device=device, out_dir=out_dir)
        marks: dict[int, float] = {}
        started = time.perf_counter()
        for cycle in range(1, args.cycles + 1):
            g.set_param("light", "location", [0.0, 0.5 * (cycle % 2), -3.0])
            g.executor.counts.clear()
            g.run(device=device, out_dir=out_dir)
            assert g.executor.counts["render"] == 1 and g.executor.counts["cow"] == 0
            events.clear()
            if cycle in (10, args.cycles) or cycle % 25 == 0:
                gc.collect()
                marks[cycle] = rss_mib()
                print(f"cycle {cycle:4d}: RSS {marks[cycle]:.1f} MiB")
        seconds = time.perf_counter() - started
    growth = 100.0 * (marks[args.cycles] - marks[10]) / marks[10]
    print(f"{args.cycles} edit-and-run cycles in {seconds:.1f} s; RSS at cycle 10: {marks[10]:.1f} MiB, at cycle "
          f"{args.cycles}: {marks[args.cycles]:.1f} MiB, growth {growth:+.2f} % (target < 5 %)")


if __name__ == "__main__":
    main()
