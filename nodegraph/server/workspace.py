"""The editor's workspace: the working document, the run worker (a child process with one executor that keeps
its cache across runs), and the fan-out of the executor's events to every connected websocket client.

Runs execute in :class:`~nodegraph.server.worker.Worker`'s child process, so no node ever blocks the server's
event loop. Its events arrive on the worker's reader thread and reach each client's asyncio loop with
``call_soon_threadsafe``. A late joiner (a reloaded page) gets a snapshot of node states and the latest
preview of every port. The working document is autosaved on every change, so a reload or a closed tab, and
even a server restart, loses nothing.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from nodegraph import paths
from nodegraph.errors import GraphError, Problem
from nodegraph.graph import FORMAT, from_json
from nodegraph.layout import auto_layout
from nodegraph.server.library import Library, PathRefused
from nodegraph.prepare import prepare, problems_of
from nodegraph.registry import Registry, default_registry
from nodegraph.server.worker import STOP_GRACE_S, Worker

MAX_QUEUED_PREVIEWS = 32  # a slow client skips stale previews (a newer one follows); other events never drop


def empty_doc(name: str = "untitled") -> dict:
    return {"format": FORMAT, "name": name, "description": "", "seed": 0, "nodes": [], "links": []}


def default_state_dir() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "nodegraph"


class RunBusy(RuntimeError):
    """A run is already going; the editor shows Stop instead."""


class Client:
    """One websocket watcher: an asyncio queue fed from the worker's reader thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()

    def push(self, event: dict) -> None:  # called on the client's loop
        if event.get("type") == "preview" and self.queue.qsize() > MAX_QUEUED_PREVIEWS:
            return
        self.queue.put_nowait(event)


class Workspace:
    """What one editor server works on; every HTTP handler and websocket goes through here."""

    def __init__(self, library: Library, graph_path: Path | None = None, autosave_path: Path | None = None,
                 out_root: Path | None = None, stop_grace_s: float = STOP_GRACE_S,
                 registry: Registry | None = None, debug: bool = False) -> None:
        self.library = library
        self.autosave_path = autosave_path
        self.out_root = Path(out_root) if out_root else None  # None: paths.default_out_dir(graph name)
        self._lock = threading.RLock()
        self.clients: set[Client] = set()
        self.doc: dict = empty_doc()
        self.path: Path | None = None
        self.base_dir: Path = library.library_dir
        self.dirty = False
        # The server checks documents against this registry; the worker process builds the default one (the
        # library plus installed and NODEGRAPH_PLUGINS plugins, inheriting this process's environment).
        self.registry = registry or default_registry()
        self.debug = debug  # tracebacks (with server paths) reach websocket clients only when asked for
        self.worker = Worker(self._on_event, on_done=self._run_done, stop_grace_s=stop_grace_s)
        self.node_states: dict[str, dict] = {}
        self.latest_previews: dict[tuple[str, str], dict] = {}
        self.run_status: dict = {"running": False, "out_dir": None}
        self.startup_problems: list[dict] = []
        if not self._restore_autosave(graph_path):
            if graph_path is not None:
                try:
                    self.open_file(Path(graph_path))
                except (GraphError, OSError, ValueError) as exc:
                    self.startup_problems = _problems_json(exc)

    # ------------------------------------------------------------------ documents
    def info(self) -> dict:
        """The working document and where it lives (what the editor loads on start)."""
        return {"doc": self.doc, "path": self.shown_path(), "collection": self._collection(), "dirty": self.dirty,
                "base_dir": str(self.base_dir), "library_dir": str(self.library.library_dir),
                "problems": self.problems(), "startup_problems": self.startup_problems}

    def _collection(self) -> str | None:
        """Where the document was opened from: "library" (Save writes it back), "examples" (read only), None."""
        if self.path is None:
            return None
        for which in ("library", "examples"):
            if paths.is_inside(self.path, self.library.root(which)):
                return which
        return None

    def shown_path(self) -> str | None:
        if self.path is None:
            return None
        which = self._collection()
        return self.path.relative_to(self.library.root(which)).as_posix() if which else self.path.name

    def open_file(self, path: Path) -> dict:
        path = Path(path).resolve()
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise GraphError([Problem(None, None, f"{path.name} is not valid JSON: {exc}")]) from None
        return self.load_doc(doc, path=path, base_dir=path.parent)

    def load_doc(self, doc: Any, path: Path | None, base_dir: Path | None = None, dirty: bool = False) -> dict:
        """Replace the working document (structure checked first; missing positions laid out)."""
        graph = from_json(doc, base_dir=base_dir or self.base_dir)
        auto_layout(graph)
        with self._lock:
            self.doc = graph.to_json()
            self.path = path
            self.base_dir = Path(base_dir or self.base_dir)
            self.dirty = dirty
            self.node_states.clear()
            self.latest_previews.clear()
            self._autosave()
        return self.info()

    def new_doc(self) -> dict:
        with self._lock:
            self.doc, self.path, self.base_dir, self.dirty = empty_doc(), None, self.library.library_dir, False
            self.node_states.clear()
            self.latest_previews.clear()
            self._autosave()
        return self.info()

    def update_doc(self, doc: Any, dirty: bool = True) -> list[dict]:
        """The editor's latest document (sent after every edit); returns validation problems for the nodes."""
        from_json(doc, base_dir=self.base_dir)  # structural check: raises GraphError naming what is wrong
        with self._lock:
            self.doc = doc
            self.dirty = bool(dirty)
            self._autosave()
        return self.problems()

    def problems(self, doc: dict | None = None) -> list[dict]:
        try:
            return [p.to_json() for p in problems_of(doc or self.doc, self.registry, self.base_dir)]
        except Exception as exc:  # validation must never take the server down
            return [{"node": None, "field": None, "message": f"cannot validate: {type(exc).__name__}: {exc}"}]

    def save(self, name: str) -> dict:
        with self._lock:
            target = self.library.save_path(name)
            graph = from_json(self.doc, base_dir=self.base_dir)
            graph.save(target)
            # Relative asset names now resolve from the saved file's folder (the bundled assets stay reachable).
            self.path, self.base_dir, self.dirty = target, target.parent, False
            self._autosave()
        return {"path": self.shown_path(), "collection": self._collection(), "dirty": False}

    # ------------------------------------------------------------------ autosave
    def _autosave(self) -> None:
        if self.autosave_path is None:
            return
        record = {"doc": self.doc, "path": str(self.path) if self.path else None, "base_dir": str(self.base_dir),
                  "dirty": self.dirty, "saved_at": time.time()}
        try:
            self.autosave_path.parent.mkdir(parents=True, exist_ok=True)
            paths.write_atomic(self.autosave_path, json.dumps(record))
        except OSError:
            pass  # autosave is a convenience; the editor keeps working without it

    def _restore_autosave(self, graph_path: Path | None) -> bool:
        """Pick up where the last session left off when it worked on the same graph (or on no graph)."""
        if self.autosave_path is None or not self.autosave_path.is_file():
            return False
        try:
            record = json.loads(self.autosave_path.read_text())
            wanted = str(Path(graph_path).resolve()) if graph_path else None
            if wanted is not None and record.get("path") != wanted:
                return False
            base = Path(record.get("base_dir") or self.library.library_dir)
            path = Path(record["path"]) if record.get("path") else None
            self.load_doc(record["doc"], path=path, base_dir=base, dirty=bool(record.get("dirty")))
            return True
        except (OSError, ValueError, KeyError, TypeError, GraphError):
            return False

    # ------------------------------------------------------------------ running
    def written_file(self, path: str) -> Path:
        """A file a node reported writing (its ``files`` in node_finished), for the editor's "open" link.
        Only those: the route is not a way to read anything else on this machine."""
        with self._lock:
            known = {f for state in self.node_states.values() for f in state.get("files") or ()}
        if path not in known:
            raise PathRefused(f"{path} is not a file a node of this graph wrote")
        found = Path(path)
        if not found.is_file():
            raise ValueError(f"{path} no longer exists")
        return found

    def out_dir_for(self, graph_name: str) -> Path:
        """Where a run of ``graph_name`` writes: ``<out_root>/<name>``, by default the user's data folder
        (``paths.default_out_dir``: ``~/.local/share/nodegraph/out/<name>``), never the server's cwd."""
        if self.out_root is None:
            return paths.default_out_dir(graph_name)
        return self.out_root / paths.safe_name(graph_name)

    def start_run(self, targets: list[str] | None = None, device: str | None = None) -> dict:
        """Validate the working document and run it in the worker process; raises GraphError or RunBusy."""
        with self._lock:
            if self.worker.running:
                raise RunBusy("a run is already in progress; stop it first")
            graph = from_json(self.doc, base_dir=self.base_dir, path=self.path)
            prepared = prepare(graph, self.registry, targets)
            problems = prepared.problems
            if problems:
                self.broadcast({"type": "problems", "t": time.time(), "problems": [p.to_json() for p in problems]})
                raise GraphError(problems)
            out_dir = self.out_dir_for(graph.name).resolve()
            self.run_status = {"running": True, "targets": targets, "out_dir": str(out_dir)}
            try:
                self.worker.run(json.loads(json.dumps(self.doc)), base_dir=str(self.base_dir),
                                path=str(self.path) if self.path else None, targets=targets, device=device,
                                out_dir=str(out_dir))
            except Exception:
                self.run_status = {"running": False, "out_dir": None}
                raise
        return {"started": True, "targets": targets, "out_dir": str(out_dir)}

    def stop(self) -> dict:
        """Ask the run to stop at its next node or iteration; after the grace period its worker is ended."""
        return {"stopping": self.worker.cancel()}

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run has ended and its events are handled (tests); False on timeout."""
        return self.worker.wait(timeout)

    def prewarm(self) -> None:
        """Start the worker process now, so the first run does not wait for it to import the node library."""
        self.worker.start()

    def close(self) -> None:
        """The server is stopping: shut the worker process down."""
        self.worker.close()

    def _run_done(self) -> None:
        with self._lock:
            self.run_status = {**self.run_status, "running": False}

    # ------------------------------------------------------------------ events
    def connect(self, loop: asyncio.AbstractEventLoop) -> Client:
        client = Client(loop)
        with self._lock:
            self.clients.add(client)
            client.push({"type": "hello", "t": time.time(), **self.run_status,
                         "nodes": {k: dict(v) for k, v in self.node_states.items()}})
            for event in self.latest_previews.values():
                client.push(event)
        return client

    def disconnect(self, client: Client) -> None:
        with self._lock:
            self.clients.discard(client)

    def broadcast(self, event: dict) -> None:
        with self._lock:
            clients = list(self.clients)
        for client in clients:
            try:
                client.loop.call_soon_threadsafe(client.push, event)
            except RuntimeError:  # its loop has closed
                self.disconnect(client)

    def _on_event(self, event: dict) -> None:
        """Every event of a run (on the worker's reader thread): remember node states, then fan out."""
        if event.get("traceback") and not self.debug:
            event = {k: v for k, v in event.items() if k != "traceback"}  # paths of this machine; see --debug
        with self._lock:
            self._remember(event)
        self.broadcast(event)

    def _remember(self, event: dict) -> None:
        kind, node = event["type"], event.get("node")
        if kind == "run_started":
            for node_id in event.get("order", []):
                self.node_states[node_id] = {"state": "waiting"}
        elif kind == "node_started":
            self.node_states[node] = {"state": "running"}
        elif kind == "node_finished":
            before = self.node_states.get(node, {})
            last = before.get("progress")
            self.node_states[node] = {"state": "cached" if event.get("cached") else "done",
                                      "seconds": event.get("seconds"), "outputs": event.get("outputs")}
            files = event.get("files") or (before.get("files") if event.get("cached") else None)
            if files:  # absolute paths the node wrote (a cached node's files are still those it wrote last)
                self.node_states[node]["files"] = list(files)
            if last and not event.get("cached"):
                self.node_states[node]["progress"] = last  # a trainer's final iteration count and losses
        elif kind == "progress":
            self.node_states.setdefault(node, {"state": "running"})["progress"] = {
                k: event.get(k) for k in ("iteration", "total", "loss", "losses", "elapsed_s", "preview_s")}
        elif kind == "node_error" and node:
            self.node_states[node] = {"state": "error", "message": event.get("message"),
                                      "field": event.get("field")}
        elif kind == "run_finished":
            self.run_status = {**self.run_status, "last": {
                k: event.get(k) for k in ("status", "cache_dropped", "message") if event.get(k) is not None}}
            for state in self.node_states.values():
                if state["state"] in ("waiting", "running"):
                    state["state"] = "idle"
        elif kind == "preview":
            self.latest_previews[(node, event.get("port", ""))] = event


def _problems_json(exc: Exception) -> list[dict]:
    if isinstance(exc, GraphError):
        return [p.to_json() for p in exc.problems]
    return [{"node": None, "field": None, "message": str(exc)}]
