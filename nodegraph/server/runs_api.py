"""The run history's HTTP routes: the editor's Runs panel and Compare view (see :mod:`nodegraph.history`).

``GET /api/runs?graph=NAME`` lists runs (newest first), ``GET /api/runs/{id}`` is one run in full,
``GET /api/runs/{id}/preview?key=node.port`` one of its final images (PNG), ``POST /api/runs/{id}/open``
makes the graph as it ran the working document, ``POST /api/runs/{id}/delete`` removes it, and
``GET /api/compare?a=ID&b=ID`` is two runs side by side. ``POST /api/sweep`` starts a sweep of the working
document on Ray (:mod:`nodegraph.sweep`, in a thread of the server), ``GET /api/sweep`` is its table as it
fills in, ``POST /api/sweep/stop`` cancels every trial.
"""
from __future__ import annotations

import functools
import json
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from nodegraph import history
from nodegraph.server.workspace import RunBusy, Workspace


class SweepRunner:
    """The editor's one sweep at a time: started from the working document, run in a thread."""

    def __init__(self) -> None:
        self.sweep: Any = None
        self.error: str | None = None
        self.thread: threading.Thread | None = None

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, doc: dict, base_dir: Path, spec: dict) -> dict:
        from nodegraph import sweep as sweeps

        if self.running():
            raise RunBusy("a sweep is already running; stop it first")
        grid = {str(k): list(v) for k, v in (spec.get("grid") or {}).items()}
        if not grid or not all(grid.values()):
            raise ValueError("pick at least one param and give it values")
        trials = sweeps.variants(grid)
        self.sweep = sweeps.new_sweep(doc.get("name") or "untitled", trials, spec.get("metric") or None,
                                      spec.get("mode") or "min")
        self.error = None
        options = {"address": spec.get("address") or None, "max_concurrent": spec.get("max_concurrent") or None,
                   "cpus_per_trial": float(spec.get("cpus_per_trial") or 1), "device": spec.get("device") or None}
        doc = json.loads(json.dumps(doc))

        def work() -> None:
            try:
                sweeps.run_sweep(doc, trials, metric=self.sweep.metric, mode=self.sweep.mode, base_dir=base_dir,
                                 sweep=self.sweep, **options)
            except Exception as exc:  # noqa: BLE001 - shown in the table, the server keeps serving
                self.error = f"{type(exc).__name__}: {exc}"
                self.sweep.status = "error"

        self.thread = threading.Thread(target=work, name="nodegraph-sweep", daemon=True)
        self.thread.start()
        return self.state()

    def state(self) -> dict:
        if self.sweep is None:
            return {"sweep": None}
        return {"sweep": self.sweep.to_json(), "error": self.error, "running": self.running()}

    def stop(self) -> dict:
        if self.sweep is not None:
            self.sweep.cancel()
        return self.state()


def missing(exc: KeyError) -> JSONResponse:
    """A run or preview the history has not got: 404 with the history's message."""
    return JSONResponse({"error": str(exc.args[0] if exc.args else exc)}, 404)


def found(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A handler whose KeyError can only be the history's "no run ..." / "no preview ...": a 404, not the
    400 that ``guarded`` makes of a KeyError. Goes under ``@guarded``."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except KeyError as exc:
            return missing(exc)

    return wrapper


def runs_routes(workspace: Workspace, guarded) -> APIRouter:
    """The routes, answering for ``workspace``; ``guarded`` is the app's error mapping."""
    router = APIRouter()
    sweeper = SweepRunner()

    @router.get("/api/runs")
    @guarded
    async def list_runs(graph: str = "") -> dict:
        return {"runs": history.list_runs(graph or None), "folder": str(history.history_dir()),
                "bytes": history.total_bytes(), "max_bytes": history.max_bytes()}

    @router.get("/api/runs/{run_id}")
    @guarded
    @found
    async def get_run(run_id: str):
        return history.load_run(run_id)

    @router.get("/api/runs/{run_id}/preview")
    @guarded
    @found
    async def get_preview(run_id: str, key: str):
        return FileResponse(history.preview_path(run_id, key), media_type="image/png")

    @router.post("/api/runs/{run_id}/open")
    @guarded
    async def open_run(run_id: str, request: Request):
        try:
            run = history.load_run(run_id)
        except KeyError as exc:  # only the lookup: a KeyError from loading the document stays guarded's 400
            return missing(exc)
        base = Path(run.get("base_dir") or workspace.library.library_dir)
        return workspace.load_doc(run["document"], path=None,
                                  base_dir=base if base.is_dir() else workspace.library.library_dir, dirty=True)

    @router.post("/api/runs/{run_id}/delete")
    @guarded
    @found
    async def delete_run(run_id: str):
        history.delete_run(run_id)
        return {"deleted": run_id}

    @router.get("/api/compare")
    @guarded
    @found
    async def compare(a: str, b: str):
        return history.compare(a, b)

    @router.post("/api/sweep")
    @guarded
    async def start_sweep(request: Request):
        spec = json.loads(await request.body() or b"{}")
        return sweeper.start(workspace.doc, workspace.base_dir, spec)

    @router.get("/api/sweep")
    @guarded
    async def sweep_state():
        return sweeper.state()

    @router.post("/api/sweep/stop")
    @guarded
    async def stop_sweep():
        return sweeper.stop()

    return router
