"""How events travel over the editor's websocket (documented in docs/protocol.md).

- An event without bytes is one text frame: the event as JSON (non-finite floats become null).
- An event with bytes (a preview's PNG, or a mesh's / point cloud's packed float32 arrays) is one binary
  frame: ``uint32 little-endian N``, then ``N`` bytes of UTF-8 JSON (the event without ``data``, with
  ``bytes`` = payload length), then the payload.
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any

MAX_PLOT_POINTS = 500  # per series: plots are thinned to this many points (the last one always kept)


def clean(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats -> None, tuples -> lists, unknown objects -> str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return str(value)


def thin(series: list, limit: int = MAX_PLOT_POINTS) -> list[list]:
    """``[[iteration, value], ...]`` with at most ``limit`` points, evenly spaced, always ending at the last."""
    n = len(series)
    if n <= limit:
        return [[i + 1, v] for i, v in enumerate(series)]
    step = n / limit
    idx = sorted({min(n - 1, int(k * step)) for k in range(limit)} | {n - 1})
    return [[i + 1, series[i]] for i in idx]


def encode(event: dict) -> str | bytes:
    """One websocket frame for an event: text (JSON) or binary (header + payload)."""
    out = dict(event)
    if out.get("type") == "preview" and out.get("kind") == "plot" and isinstance(out.get("series"), dict):
        out["series"] = {name: thin(values) for name, values in out["series"].items()}
    data = out.pop("data", None)
    if data is None:
        return json.dumps(clean(out))
    out["bytes"] = len(data)
    header = json.dumps(clean(out)).encode()
    return struct.pack("<I", len(header)) + header + bytes(data)


def decode(frame: str | bytes) -> dict:
    """The inverse of :func:`encode` (for Python clients and tests): binary payload back under ``data``."""
    if isinstance(frame, str):
        return json.loads(frame)
    (n,) = struct.unpack_from("<I", frame, 0)
    event = json.loads(frame[4:4 + n].decode())
    event["data"] = frame[4 + n:]
    return event
