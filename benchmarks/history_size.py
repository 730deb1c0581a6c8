"""How big the run history gets: N recorded runs of the textured cow (graphs/render_textured_cow.json).

    python benchmarks/history_size.py                 # 100 runs at the CPU size (128 px)
    python benchmarks/history_size.py --size 512 --runs 10

Each run keeps its graph, manifest, curves, the final previews (longest side 256 px) and a copy of cow.png.
Prints the folder's size in total and per run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="ng-history-bench-")
    import nodegraph
    from nodegraph import history

    s = nodegraph.load(ROOT / "graphs" / "render_textured_cow.json")
    started = time.perf_counter()
    for i in range(args.runs):
        # a new light position each time: every run renders (and records) for real
        s.run(device="cpu", overrides={"raster.image_size": args.size, "light.location": [0.0, 0.0, -3.0 - i * 1e-3]})
    seconds = time.perf_counter() - started
    folder = history.history_dir()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"{args.runs} runs of the cow at {args.size} px: {size / 2**20:.2f} MB in {folder} "
          f"({size / args.runs / 1024:.1f} KB per run; {seconds / args.runs:.2f} s per run)")


if __name__ == "__main__":
    main()
