"""The browser editor: ``serve(host, port, graph_path, token)`` starts the NiceGUI app (blocking).

Modules: :mod:`~nodegraph.server.workspace` (working document, run worker, event fan-out),
:mod:`~nodegraph.server.worker` (the child process that runs graphs), :mod:`~nodegraph.server.element` (the
editor as a NiceGUI element),
:mod:`~nodegraph.server.library` (graphs library, examples, file picker), :mod:`~nodegraph.server.protocol`
(websocket frames), :mod:`~nodegraph.server.auth` (access token), :mod:`~nodegraph.server.app` (page + API).
"""
from __future__ import annotations

import os
from pathlib import Path

from nodegraph import paths
from nodegraph.server.auth import is_local, new_token, url_host

DEFAULT_GRAPH = paths.GRAPHS_DIR / "render_textured_cow.json"

__all__ = ["serve", "make_workspace"]


def user_library_dir() -> Path:
    """Where the editor saves graphs by default: ``$XDG_DATA_HOME/nodegraph/graphs`` (~/.local/share/...)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "nodegraph" / "graphs"


def default_library_dir(graph: Path | None) -> Path:
    """``NODEGRAPH_LIBRARY``, else the opened graph's folder, else the user library.

    The bundled examples are never the default library, so saving an example writes a copy and never
    overwrites it (``--library graphs`` is how a maintainer edits the examples themselves).
    """
    if os.environ.get("NODEGRAPH_LIBRARY"):
        return Path(os.environ["NODEGRAPH_LIBRARY"])
    if graph is not None and not paths.is_inside(graph.parent.resolve(), paths.GRAPHS_DIR.resolve()):
        return graph.parent
    return user_library_dir()


def make_workspace(graph_path: str | Path | None = None, library_dir: str | Path | None = None,
                   state_dir: str | Path | None = None, out_root: str | Path | None = None, debug: bool = False):
    """The workspace ``serve`` uses (library: see :func:`default_library_dir`). Runs write to
    ``<out_root>/<graph name>``; without ``out_root``, to ``paths.default_out_dir`` (~/.local/share/nodegraph/out)."""
    from nodegraph.server.library import Library
    from nodegraph.server.workspace import Workspace, default_state_dir

    if graph_path is None and DEFAULT_GRAPH.is_file():
        graph_path = DEFAULT_GRAPH
    graph = Path(graph_path).resolve() if graph_path else None
    library_dir = library_dir or default_library_dir(graph)
    state = Path(state_dir) if state_dir else default_state_dir()
    return Workspace(Library(Path(library_dir)), graph, autosave_path=state / "autosave.json",
                     out_root=Path(out_root).resolve() if out_root else None, debug=debug)


def serve(host: str = "127.0.0.1", port: int = 8080, graph_path: str | Path | None = None,
          token: str | None = None, library_dir: str | Path | None = None, out_root: str | Path | None = None,
          debug: bool = False) -> None:
    """Start the editor on ``host:port`` with ``graph_path`` open (blocks until stopped).

    A non-local host always needs a token: one is generated and printed when none is given. Runs write to
    ``<out_root>/<graph name>`` (default ``~/.local/share/nodegraph/out/<graph name>``). Python tracebacks of
    failed nodes reach the page only with ``debug``.
    """
    from nicegui import app, ui

    from nodegraph.server import app as editor_app

    if token is None and not is_local(host):
        token = new_token()
    workspace = make_workspace(graph_path, library_dir, out_root=out_root, debug=debug)
    editor_app.install(workspace, token, host)
    workspace.prewarm()  # the run worker imports the node library while the page loads
    app.on_shutdown(workspace.close)
    shown = "localhost" if host in ("0.0.0.0", "::") else url_host(host)
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"nodegraph editor: {url}  (saving to {workspace.library.library_dir}, runs write to "
          f"{workspace.out_root or paths.default_out_dir('<graph name>').parent}/<graph name>)", flush=True)
    if workspace.startup_problems:
        for p in workspace.startup_problems:
            print(f"  cannot open {graph_path}: {p.get('node') or ''} {p.get('field') or ''} {p['message']}",
                  flush=True)
    ui.run(host=host, port=port, title="nodegraph", dark=True, reload=False, show=False, favicon="◆", tailwind=False,
           show_welcome_message=False, uvicorn_logging_level="warning", reconnect_timeout=10.0)
