"""The installable package: build the wheel from this checkout, install it into a folder, and use it from
somewhere else, with nothing of the checkout on the path.

What installs is one namespace: ``nodegraph`` (with ``nodegraph.server``), the node library ``nodes/`` as
``nodegraph.nodes``, the editor's run-time files as ``nodegraph/frontend`` and the example graphs with their
assets as ``nodegraph/examples``; no top-level ``nodes``. The installed copy is used through
``python -S`` with ``PYTHONPATH=<site>:<this interpreter's site-packages>``: ``-S`` skips the ``.pth`` files,
so an editable install of some checkout (``pip install -e .``, what ``dev.sh`` does) cannot answer an import
instead of the wheel. All of it takes about 10 s (the wheel builds in about a second), so it is not ``slow``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import site
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p.name for p in (ROOT / "graphs").glob("*.json"))


def _tool():
    spec = importlib.util.spec_from_file_location("wheel_summary", ROOT / "tools" / "wheel_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Installed:
    """The wheel and the folder it is installed into (``pip install --target``)."""

    def __init__(self, tmp: Path) -> None:
        tool = _tool()
        self.tmp = tmp
        self.wheel = tool.build_wheel(tmp / "dist")
        self.summary = tool.summary(self.wheel)
        with zipfile.ZipFile(self.wheel) as zf:
            self.names = sorted(n for n in zf.namelist() if not n.endswith("/"))
        self.site = tmp / "site"
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                                 "--disable-pip-version-check", "--target", str(self.site), str(self.wheel)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        self.empty = tmp / "elsewhere"  # the folder every command starts in: nothing of the checkout there
        self.empty.mkdir()
        self.package = self.site / "nodegraph"

    def env(self) -> dict:
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("PYTEST_", "NODEGRAPH_", "PYTHON")) and k not in ("VIRTUAL_ENV",)}
        dependencies = [p for p in site.getsitepackages() if Path(p).is_dir()]
        return {**keep, "PYTHONPATH": os.pathsep.join([str(self.site), *dependencies]), "PYTHONNOUSERSITE": "1",
                "XDG_DATA_HOME": str(self.tmp / "data"), "XDG_STATE_HOME": str(self.tmp / "state"),
                "OMP_NUM_THREADS": "1"}

    def python(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True, env=self.env(),
                              cwd=self.empty, timeout=timeout)

    def nodegraph(self, *args: str) -> list[str]:
        """The installed console script, run by this interpreter with the same isolation."""
        return [sys.executable, "-S", str(self.site / "bin" / "nodegraph"), *args]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    built = Installed(tmp_path_factory.mktemp("package"))
    print("\n" + built.summary)
    return built


def test_the_wheel_installs_one_namespace_with_the_editor_and_the_examples(installed):
    names = installed.names
    tops = {n.split("/")[0] for n in names}
    assert tops == {"nodegraph", "nodegraph-0.1.0.dist-info"}, tops
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    with zipfile.ZipFile(installed.wheel) as zf:
        assert zf.read(top_level).decode().split() == ["nodegraph"]
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "nodegraph = nodegraph.cli:main" in entry_points

    # every Python module of the engine, its subpackages and the node library
    engine = {p.relative_to(ROOT).as_posix() for p in (ROOT / "nodegraph").rglob("*.py") if "__pycache__" not in p.parts}
    library = {f"nodegraph/nodes/{p.name}" for p in (ROOT / "nodes").glob("*.py")}
    assert engine | library <= set(names), sorted((engine | library) - set(names))
    assert not [n for n in names if n.endswith(".py") and n not in engine | library]

    # the editor's run-time files, and nothing of the npm tooling
    frontend = {f"nodegraph/frontend/{p.relative_to(ROOT / 'frontend').as_posix()}"
                for folder in ("src", "vendor") for p in (ROOT / "frontend" / folder).rglob("*") if p.is_file()}
    assert frontend and frontend == {n for n in names if n.startswith("nodegraph/frontend/")}
    assert not [n for n in names if "node_modules" in n or n.endswith(("package.json", "package-lock.json"))]

    # the examples and every asset they ship with, the provenance note included
    examples = {f"nodegraph/examples/{p.relative_to(ROOT / 'graphs').as_posix()}"
                for p in [*(ROOT / "graphs").glob("*.json"), *(ROOT / "graphs" / "assets").rglob("*")] if p.is_file()}
    assert len(EXAMPLES) == 19
    assert examples == {n for n in names if n.startswith("nodegraph/examples/")}
    for asset in ("assets/PROVENANCE.md", "assets/cow_mesh/cow.obj", "assets/cow_mesh/cow_texture.png",
                  "assets/teapot.obj", "assets/pedestrian.ply", "assets/standin_body/standin_body.npz"):
        assert f"nodegraph/examples/{asset}" in names


def test_installed_there_is_no_top_level_nodes_and_the_library_is_nodegraph_nodes(installed):
    assert not (installed.site / "nodes").exists()
    result = installed.python("-c", "import nodes")
    assert result.returncode != 0 and "No module named 'nodes'" in result.stderr, result.stdout + result.stderr

    probe = """
import importlib, json, sys
import nodegraph
from nodegraph import paths
from nodegraph.registry import Registry
library = importlib.import_module("nodegraph.nodes")
registry = Registry()
registry.load_library()
print(json.dumps({"nodegraph": nodegraph.__file__, "nodes": library.__file__,
                  "modules": sorted({s.fn.__module__ for s in registry}),
                  "files": sorted({sys.modules[s.fn.__module__].__file__ for s in registry}),
                  "count": len(registry), "errors": registry.load_errors,
                  "frontend": str(paths.FRONTEND_DIR), "examples": str(paths.GRAPHS_DIR), "path": sys.path}))
"""
    result = installed.python("-c", probe)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    site_dir = installed.site.resolve()

    def inside(path: str) -> bool:
        return Path(path).resolve().is_relative_to(site_dir)

    assert inside(found["nodegraph"]) and inside(found["nodes"]), found
    assert found["errors"] == {} and found["count"] >= 100
    assert all(inside(f) for f in found["files"]), found["files"]
    assert all(m.startswith("nodegraph.nodes.") for m in found["modules"])
    assert Path(found["frontend"]) == installed.package / "frontend"
    assert Path(found["examples"]) == installed.package / "examples"
    dependencies = {Path(p).resolve() for p in site.getsitepackages()}  # the venv may live inside the checkout
    assert not [p for p in found["path"] if p and Path(p).resolve() not in dependencies
                and Path(p).resolve().is_relative_to(ROOT.resolve())], found["path"]


def test_the_installed_cli_renders_an_installed_example(installed):
    out = installed.tmp / "o"
    graph = installed.package / "examples" / "render_textured_cow.json"
    result = subprocess.run(installed.nodegraph("run", str(graph), "--set", "raster.image_size=64", "--device",
                                                "cpu", "--out", str(out), "--quiet"),
                            capture_output=True, text=True, env=installed.env(), cwd=installed.empty, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    from PIL import Image

    with Image.open(out / "cow.png") as image:
        assert image.size == (64, 64)
    assert json.loads((out / "manifest.json").read_text())["status"] == "ok"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_installed_server_serves_the_editor_and_the_examples(installed):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(installed.tmp / "serve.log", "w")
    proc = subprocess.Popen(installed.nodegraph("serve", "--host", "127.0.0.1", "--port", str(port),
                                                "--library", str(installed.tmp / "library")),
                            env=installed.env(), cwd=installed.empty, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (installed.tmp / "serve.log").read_text()
            try:
                if _get(url + "/api/status")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the server did not start: " + (installed.tmp / "serve.log").read_text()
            time.sleep(0.3)

        status, page = _get(url + "/")
        assert status == 200 and b"<title>nodegraph</title>" in page
        status, script = _get(url + "/nodegraph/src/editor.js")
        assert status == 200 and script == (installed.package / "frontend" / "src" / "editor.js").read_bytes()
        status, body = _get(url + "/api/graphs?collection=examples")
        assert status == 200
        listed = json.loads(body)["graphs"]
        assert sorted(g["path"] for g in listed) == EXAMPLES and len(listed) == 19
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()
