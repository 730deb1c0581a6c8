"""Do validation and running stay linear in the number of nodes? Chains of 1k, 5k and 20k tiny nodes.

Each node is a toy scale of a 3-vector, so the figures are the engine's own cost per node: preparing (checks,
plan), keys, cache, events. Prints seconds per size and per 1k nodes; a linear engine keeps the last column flat.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the toy nodes

import nodegraph  # noqa: E402
import toy_nodes  # noqa: E402


def chain(n: int) -> "nodegraph.Session":
    s = nodegraph.new(registry=toy_nodes.REGISTRY, name=f"chain{n}")
    s.add_node("ToyConst", "n0")
    for i in range(1, n):
        s.add_node("ToyScale", f"n{i}", factor=1.0)
        s.connect(f"n{i - 1}", "out", f"n{i}", "x")
    return s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    args = parser.parse_args()
    print(f"{'nodes':>7} {'validate s':>11} {'run s':>8} {'rerun s':>8} {'run s / 1k nodes':>17}")
    with tempfile.TemporaryDirectory() as out:
        for n in map(int, args.sizes.split(",")):
            s = chain(n)
            t = time.perf_counter()
            assert s.validate() == []
            validate = time.perf_counter() - t
            t = time.perf_counter()
            s.run(device="cpu", out_dir=out)
            run = time.perf_counter() - t
            t = time.perf_counter()
            s.run(device="cpu", out_dir=out)  # every node cached
            rerun = time.perf_counter() - t
            print(f"{n:>7} {validate:>11.3f} {run:>8.3f} {rerun:>8.3f} {run / n * 1000:>17.3f}", flush=True)


if __name__ == "__main__":
    main()
