"""Start the editor server as a subprocess for tests (a real uvicorn + NiceGUI, toy nodes loaded as a plugin)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

TOY_TRAINING = {
    "format": "nodegraph/1", "name": "toy training", "description": "fits a learnable vector to a target",
    "seed": 0,
    "nodes": [
        {"id": "target", "type": "ToyConst", "params": {"value": [1.0, 2.0, 3.0]}, "ui": {"pos": [40, 40]}},
        {"id": "scaled", "type": "ToyScale", "params": {"factor": 2.0}, "ui": {"pos": [300, 40]}},
        {"id": "w", "type": "ToyLearnable", "params": {}, "ui": {"pos": [560, 40]}},
        {"id": "mse", "type": "ToyMSE", "params": {}, "ui": {"pos": [820, 40]}},
        {"id": "opt", "type": "Optimize", "params": {"lr": 0.1, "iterations": 150, "preview_every": 1},
         "ui": {"pos": [1080, 40]}},
    ],
    "links": [
        {"from": ["target", "out"], "to": ["scaled", "x"]},
        {"from": ["scaled", "out"], "to": ["w", "like"]},
        {"from": ["w", "out"], "to": ["mse", "a"]},
        {"from": ["scaled", "out"], "to": ["mse", "b"]},
        {"from": ["mse", "loss"], "to": ["opt", "loss"]},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_library(tmp: Path, with_cow: bool = False) -> Path:
    """A library folder with the toy graph (and, optionally, the textured cow example and its assets)."""
    lib = tmp / "library"
    lib.mkdir(parents=True, exist_ok=True)
    (lib / "toy.json").write_text(json.dumps(TOY_TRAINING, indent=2))
    if with_cow:
        shutil.copytree(ROOT / "graphs" / "assets" / "cow_mesh", lib / "assets" / "cow_mesh", dirs_exist_ok=True)
        shutil.copy(ROOT / "graphs" / "render_textured_cow.json", lib / "render_textured_cow.json")
    return lib


class EditorServer:
    """``python -m nodegraph.server`` on a free port, in ``tmp`` (its XDG data folder, where runs write under
    ``data/nodegraph/out/<graph>``, and its autosave state live there)."""

    def __init__(self, tmp: Path, graph: Path, token: str | None = None, host: str = "127.0.0.1") -> None:
        self.tmp, self.graph, self.token, self.host = Path(tmp), Path(graph), token, host
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self, timeout: float = 60.0) -> "EditorServer":
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # else NiceGUI thinks it is a test
        env.update(NODEGRAPH_PLUGINS="toy_nodes", PYTHONPATH=f"{ROOT / 'tests'}{os.pathsep}{ROOT}",
                   XDG_STATE_HOME=str(self.tmp / "state"), XDG_DATA_HOME=str(self.tmp / "data"),
                   OMP_NUM_THREADS="1")
        cmd = [PYTHON, "-m", "nodegraph.server", "--host", self.host, "--port", str(self.port),
               "--graph", str(self.graph)] + (["--token", self.token] if self.token else [])
        self.log = open(self.tmp / f"server-{self.port}.log", "w")
        self.proc = subprocess.Popen(cmd, cwd=self.tmp, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.tmp / f'server-{self.port}.log').read_text()}")
            try:
                if httpx.get(self.url + "/api/status", headers=self.headers(), timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start in time")

    def api(self, method: str, path: str, **kw) -> httpx.Response:
        headers = {**self.headers(), **kw.pop("headers", {})}
        return httpx.request(method, self.url + "/api" + path, headers=headers, timeout=30, **kw)

    def wait_idle(self, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.api("GET", "/status").json()
            if not status["running"]:
                return status
            time.sleep(0.1)
        raise TimeoutError("run did not finish")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "log", None):
            self.log.close()


def library_server(tmp_path_factory, name: str):
    """A module fixture's body: a server on a fresh library (toy graph and the cow) that stops afterwards."""
    tmp = tmp_path_factory.mktemp(name)
    srv = EditorServer(tmp, make_library(tmp, with_cow=True) / "toy.json").start()
    yield srv
    srv.stop()


CHROMIUM = "/usr/bin/chromium"  # Debian's; `playwright install` cannot download a browser here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def editor_page(url: str, wait_for: str | None = None, height: int = 900) -> Iterator:
    """A headless Chromium page on the editor at ``url`` (after ``wait_for`` appears): ``page.errors`` collects
    the page's JavaScript errors, and dialogs are accepted with ``page.answer`` (None: their default answer),
    so "discard unsaved changes?" is yes and a prompt gets what a test set."""
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": height})
            page.errors = []
            page.answer = None
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            page.on("dialog", lambda d: d.accept(page.answer) if page.answer is not None else d.accept())
            page.set_default_timeout(15000)
            page.goto(url)
            if wait_for:
                page.wait_for_selector(wait_for)
            yield page
        finally:
            browser.close()
