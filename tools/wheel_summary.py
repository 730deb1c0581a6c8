"""Build the wheel from this checkout (no build isolation, no network) and summarise what it installs.

    python tools/wheel_summary.py                 # build into a temporary folder, print files per folder
    python tools/wheel_summary.py --wheel X.whl   # summarise a wheel that is already built

``tests/test_package.py`` builds with :func:`build_wheel` and prints :func:`summary` too. The build and egg-info
folders are kept outside the checkout (``DIST_EXTRA_CONFIG``), so no stale ``build/lib`` copy of a deleted
module can slip into the wheel and nothing is left behind in the tree.
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(dest: Path, root: Path = ROOT) -> Path:
    """Build ``root``'s wheel into ``dest`` with the running interpreter's setuptools; returns its path."""
    dest.mkdir(parents=True, exist_ok=True)
    config = dest / "build.cfg"
    (dest / "egg").mkdir(exist_ok=True)
    config.write_text(f"[build]\nbuild_base = {dest / 'build'}\n[egg_info]\negg_base = {dest / 'egg'}\n")
    env = dict(os.environ, DIST_EXTRA_CONFIG=str(config), PIP_DISABLE_PIP_VERSION_CHECK="1")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                             "-w", str(dest), str(root)], capture_output=True, text=True, env=env, cwd=dest,
                            timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"building the wheel failed (needs setuptools>=68 and wheel, the test extra):\n"
                           f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    wheels = sorted(dest.glob("nodegraph-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {dest}, found {[w.name for w in wheels]}")
    return wheels[0]


def group(name: str) -> str:
    """The folder a wheel entry is counted under: ``nodegraph/nodes``, ``nodegraph/examples/assets``, ..."""
    parts = name.split("/")
    if parts[0].endswith(".dist-info"):
        return parts[0]
    if len(parts) == 2:
        return parts[0]
    if parts[1] == "examples" and len(parts) > 3:
        return "/".join(parts[:3])
    return "/".join(parts[:2])


def summary(wheel: Path) -> str:
    """One line per folder: how many files and bytes the wheel installs there."""
    with zipfile.ZipFile(wheel) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for info in infos:
        counts[group(info.filename)][0] += 1
        counts[group(info.filename)][1] += info.file_size
    width = max(len(k) for k in counts)
    lines = [f"{wheel.name}: {len(infos)} files, {sum(i.file_size for i in infos) / 1024:.0f} KiB"]
    lines += [f"  {k:<{width}}  {n:>3} files  {size / 1024:>7.1f} KiB" for k, (n, size) in sorted(counts.items())]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a built wheel (default: build one from this checkout)")
    args = parser.parse_args()
    if args.wheel:
        print(summary(args.wheel))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        print(summary(build_wheel(Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
