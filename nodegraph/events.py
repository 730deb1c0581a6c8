"""Events: how the executor tells the world what it is doing.

Every event is a plain dict with a ``type`` (see ``EVENT_TYPES``) and a ``t`` timestamp; preview events may
carry raw bytes under ``data`` (a PNG, or packed float32 arrays), which JSON-lines writers drop and the
websocket sends as a binary frame. The CLI's log, the terminal progress bar, the editor and any websocket
client all subscribe to the same :class:`EventBus`.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

EVENT_TYPES = (
    "run_started",     # graph, run_id, device, order: [node ids to run], seed
    "node_started",    # node, node_type
    "node_finished",   # node, seconds, cached: bool, outputs: {port: summary}
    "progress",        # node, iteration, total, loss, losses: {term: value}, lr
    "preview",         # node, port, kind: image|mesh|points|plot, meta..., data: bytes (binary frame)
    "node_error",      # node, field, message, traceback
    "run_finished",    # status: ok|error|cancelled, seconds, error?
)

Listener = Callable[[dict], None]


class EventBus:
    """Fan-out of events to listeners; thread-safe, and a failing listener never breaks a run."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, type_: str, **fields: Any) -> dict:
        event = {"type": type_, "t": time.time(), **fields}
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken viewer must not stop the computation
                pass
        return event


def to_json_safe(event: dict) -> dict:
    """The event without its binary payload (its size is kept), ready for json.dumps."""
    out = dict(event)
    data = out.pop("data", None)
    if data is not None:
        out["bytes"] = len(data)
    return out


class JsonLinesWriter:
    """Appends every event to a JSON-lines file (the run's event log)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w")
        self._lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        line = json.dumps(to_json_safe(event), default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()
