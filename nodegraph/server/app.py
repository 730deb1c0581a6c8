"""The NiceGUI app: the editor page, the HTTP API under ``/api`` and the event websocket ``/api/events``.

The page is one Vue component (frontend/src/editor.js) that talks to this API; every route goes through
:func:`guarded`, so a broken graph or a bad request gets a clear 4xx answer and never takes the server down.
"""
from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, Awaitable, Callable

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from nicegui import app, ui

from nodegraph.errors import GraphError
from nodegraph.paths import FRONTEND_DIR as FRONTEND  # frontend/ in a checkout, nodegraph/frontend installed
from nodegraph.server import protocol
from nodegraph.server.auth import SameOriginGuard, TokenGuard, new_csrf_secret
from nodegraph.server.element import Editor
from nodegraph.server.library import PathRefused, list_files
from nodegraph.server.runs_api import runs_routes
from nodegraph.server.workspace import RunBusy, Workspace


def install(workspace: Workspace, token: str | None, host: str = "127.0.0.1") -> None:
    """Serve ``workspace`` from NiceGUI's app: the same-origin and token guards, the static files, the editor
    page and the API (``host`` is the address the server binds: the names it answers to).

    Nothing is set up when this module is imported; ``nodegraph.server.serve`` calls this once, and every
    route reads the workspace it was given here.
    """
    csrf = new_csrf_secret()  # per server; the page reads it from /api/session, never from its HTML
    app.add_middleware(TokenGuard, get_token=lambda: token)
    app.add_middleware(SameOriginGuard, bound_host=host, csrf=csrf)  # added last: runs first
    app.add_static_files("/nodegraph/vendor", str(FRONTEND / "vendor"))
    app.add_static_files("/nodegraph/src", str(FRONTEND / "src"))

    @ui.page("/", title="nodegraph")
    def index() -> None:
        ui.add_head_html("".join(
            f'<link rel="stylesheet" href="/nodegraph/{href}">' for href in (
                "vendor/vue-flow-core/style.css", "vendor/vue-flow-core/theme-default.css",
                "vendor/vue-flow-minimap/style.css", "src/editor.css", "src/groups.css")))
        Editor().classes("ng-root")

    app.include_router(api_routes(workspace, csrf))
    app.include_router(runs_routes(workspace, guarded))


# -------------------------------------------------------------------------------------------- the API

Handler = Callable[..., Awaitable[Any]]


def guarded(fn: Handler) -> Handler:
    """Map our errors to clear HTTP answers; nothing a client sends can crash the server."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = await fn(*args, **kwargs)
            return result if isinstance(result, Response) else JSONResponse(protocol.clean(result))
        except GraphError as exc:
            return JSONResponse({"error": str(exc), "problems": [p.to_json() for p in exc.problems]}, 400)
        except PathRefused as exc:
            return JSONResponse({"error": str(exc)}, 403)
        except RunBusy as exc:
            return JSONResponse({"error": str(exc)}, 409)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, 400)
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 500)

    return wrapper


async def body(request: Request) -> dict:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise ValueError(f"the request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("the request body must be a JSON object")
    return data


def api_routes(workspace: Workspace, csrf: str = "") -> APIRouter:
    """The HTTP API under ``/api`` and the event websocket, answering for ``workspace``; ``csrf`` is the
    secret the page must send back on every state-changing request (see ``SameOriginGuard``)."""
    router = APIRouter()

    @router.get("/api/session")
    async def session() -> Response:
        """The CSRF secret, for the editor's own page: no CORS header, so no page of another origin reads it."""
        return JSONResponse({"csrf": csrf}, headers={"Cache-Control": "no-store",
                                                     "Cross-Origin-Resource-Policy": "same-origin"})

    @router.get("/api/catalogue")
    @guarded
    async def get_catalogue() -> dict:
        return workspace.registry.catalogue_json()


    @router.get("/api/document")
    @guarded
    async def get_document() -> dict:
        return workspace.info()


    @router.put("/api/document")
    @router.post("/api/document")  # navigator.sendBeacon (the last autosave when a tab closes) can only POST
    @guarded
    async def put_document(request: Request) -> dict:
        data = await body(request)
        return {"problems": workspace.update_doc(data["doc"], data.get("dirty", True))}


    @router.post("/api/document/new")
    @guarded
    async def new_document() -> dict:
        return workspace.new_doc()


    @router.post("/api/validate")
    @guarded
    async def validate_doc(request: Request) -> dict:
        return {"problems": workspace.problems((await body(request))["doc"])}


    @router.get("/api/graphs")
    @guarded
    async def list_graphs(collection: str = "library") -> dict:
        return {"collection": collection, "graphs": workspace.library.list(collection)}


    @router.post("/api/open")
    @guarded
    async def open_graph(request: Request) -> dict:
        data = await body(request)
        doc, path = workspace.library.read(data.get("collection", "library"), str(data["path"]))
        return workspace.load_doc(doc, path=path, base_dir=path.parent)


    @router.post("/api/upload")
    @guarded
    async def upload_graph(request: Request) -> dict:
        data = await body(request)
        try:
            doc = json.loads(data["text"])
        except ValueError as exc:
            raise ValueError(f"{data.get('filename', 'the file')} is not JSON: {exc}") from None
        return workspace.load_doc(doc, path=None, base_dir=workspace.library.library_dir, dirty=True)


    @router.post("/api/save")
    @guarded
    async def save_graph(request: Request) -> dict:
        data = await body(request)
        return workspace.save(str(data["name"]))


    @router.get("/api/groups")
    @guarded
    async def library_groups() -> dict:
        return {"groups": workspace.library.groups()}

    @router.post("/api/groups/save")
    @guarded
    async def save_group(request: Request) -> dict:
        data = await body(request)
        path = workspace.library.save_group(str(data["name"]), workspace.doc)
        return {"path": path.relative_to(workspace.library.library_dir).as_posix()}


    @router.get("/api/download")
    @guarded
    async def download_graph() -> Response:
        from nodegraph.graph import from_json

        graph = from_json(workspace.doc)
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in graph.name) or "graph"
        return Response(graph.dumps(), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}.json"'})


    @router.get("/api/export")
    @guarded
    async def export_script() -> Response:
        """File > Export as Python: the working graph as a standalone script (a refusal names the node)."""
        from nodegraph.export import export
        from nodegraph.graph import from_json

        graph = from_json(workspace.doc, base_dir=workspace.base_dir)
        script = export(graph, workspace.registry)
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in graph.name) or "graph"
        return Response(script, media_type="text/x-python",
                        headers={"Content-Disposition": f'attachment; filename="{name}.py"'})

    @router.get("/api/files")
    @guarded
    async def files(ext: str = "") -> dict:
        extensions = [e for e in ext.split(",") if e]
        return {"base_dir": str(workspace.base_dir), "files": list_files(workspace.base_dir, extensions)}


    @router.get("/api/output")
    @guarded
    async def output(path: str) -> Response:
        """A file a save node wrote (the editor's "open" link beside its path)."""
        return FileResponse(workspace.written_file(path))

    @router.post("/api/run")
    @guarded
    async def run(request: Request) -> dict:
        data = await body(request)
        if workspace.worker.running:  # before the document is touched: a refused run changes nothing
            raise RunBusy("a run is already in progress; stop it first")
        if "doc" in data:
            workspace.update_doc(data["doc"], data.get("dirty", True))
        targets = data.get("targets") or None
        if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
            raise ValueError("targets must be a list of node ids")
        return workspace.start_run(targets, data.get("device") or None)

    @router.post("/api/stop")
    @guarded
    async def stop() -> dict:
        return workspace.stop()


    @router.get("/api/status")
    @guarded
    async def status() -> dict:
        return {**workspace.run_status, "nodes": workspace.node_states, "dirty": workspace.dirty,
                "path": workspace.shown_path(), "worker_pid": workspace.worker.pid}

    @router.websocket("/api/events")
    async def events(socket: WebSocket) -> None:
        """Every executor event, in order: JSON text frames, and binary frames for previews with bytes."""
        await socket.accept()
        client = workspace.connect(asyncio.get_running_loop())
        receiver = asyncio.create_task(_drain(socket))
        try:
            while not receiver.done():
                getter = asyncio.create_task(client.queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                frame = protocol.encode(getter.result())
                if isinstance(frame, bytes):
                    await socket.send_bytes(frame)
                else:
                    await socket.send_text(frame)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            receiver.cancel()
            workspace.disconnect(client)

    return router


async def _drain(socket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a closed connection is noticed at once."""
    try:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
