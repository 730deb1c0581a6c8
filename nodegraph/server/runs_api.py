"""The run history's HTTP routes: the editor's Runs panel and Compare view (see :mod:`nodegraph.history`).

``GET /api/runs?graph=NAME`` lists runs (newest first), ``GET /api/runs/{id}`` is one run in full,
``GET /api/runs/{id}/preview?key=node.port`` one of its final images (PNG), ``POST /api/runs/{id}/open``
makes the graph as it ran the working document, ``POST /api/runs/{id}/delete`` removes it, and
``GET /api/compare?a=ID&b=ID`` is two runs side by side.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from nodegraph import history
from nodegraph.server.workspace import Workspace


def runs_routes(workspace: Workspace, guarded) -> APIRouter:
    """The routes, answering for ``workspace``; ``guarded`` is the app's error mapping."""
    router = APIRouter()

    def missing(exc: KeyError) -> JSONResponse:
        return JSONResponse({"error": str(exc.args[0] if exc.args else exc)}, 404)

    @router.get("/api/runs")
    @guarded
    async def list_runs(graph: str = "") -> dict:
        return {"runs": history.list_runs(graph or None), "folder": str(history.history_dir()),
                "bytes": history.total_bytes(), "max_bytes": history.max_bytes()}

    @router.get("/api/runs/{run_id}")
    @guarded
    async def get_run(run_id: str):
        try:
            return history.load_run(run_id)
        except KeyError as exc:
            return missing(exc)

    @router.get("/api/runs/{run_id}/preview")
    @guarded
    async def get_preview(run_id: str, key: str):
        try:
            return FileResponse(history.preview_path(run_id, key), media_type="image/png")
        except KeyError as exc:
            return missing(exc)

    @router.post("/api/runs/{run_id}/open")
    @guarded
    async def open_run(run_id: str, request: Request):
        try:
            run = history.load_run(run_id)
        except KeyError as exc:
            return missing(exc)
        base = Path(run.get("base_dir") or workspace.library.library_dir)
        return workspace.load_doc(run["document"], path=None,
                                  base_dir=base if base.is_dir() else workspace.library.library_dir, dirty=True)

    @router.post("/api/runs/{run_id}/delete")
    @guarded
    async def delete_run(run_id: str):
        try:
            history.delete_run(run_id)
        except KeyError as exc:
            return missing(exc)
        return {"deleted": run_id}

    @router.get("/api/compare")
    @guarded
    async def compare(a: str, b: str):
        try:
            return history.compare(a, b)
        except KeyError as exc:
            return missing(exc)

    return router
