"""Which rasterizer runs: the compiled CPU kernels ("numba") or PyTorch3D's own ("pytorch3d").

``auto`` picks numba for CPU tensors and PyTorch3D's for CUDA ones (its GPU rasterizer is the faster there).
When numba cannot be imported, every request falls back to PyTorch3D's, and :func:`ran` says why. What ran is
counted per process so a run's manifest and the benchmarks can say which backend produced their fragments.
"""
from __future__ import annotations

import threading
from collections import Counter
from functools import lru_cache

import torch

BACKENDS = ("auto", "pytorch3d", "numba")
_lock = threading.Lock()
_ran: Counter[tuple[str, str]] = Counter()


@lru_cache(maxsize=1)
def numba_problem() -> str | None:
    """None when the compiled kernels import, else why not (they are then never chosen)."""
    try:
        from . import kernels_meshes, kernels_points, kernels_shading  # noqa: F401
    except Exception as exc:  # an unusable numba install is a fallback, not a failure
        return f"numba unavailable ({type(exc).__name__}: {exc}); PyTorch3D's rasterizer ran instead"
    return None


def choose(backend: str, device: torch.device | str) -> str:
    """The backend that rasterizes tensors on ``device`` when ``backend`` is asked for."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "pytorch3d":
        return "pytorch3d"
    if backend == "auto" and torch.device(device).type != "cpu":
        return "pytorch3d"
    return "pytorch3d" if numba_problem() else "numba"


def record(kind: str, backend: str) -> None:
    """Count one rasterization of ``kind`` ("meshes" or "points"), or one frame shaded ("shading"), by
    ``backend``."""
    with _lock:
        _ran[(kind, backend)] += 1


def reset() -> None:
    """Forget what ran (a run's start)."""
    with _lock:
        _ran.clear()


def ran() -> dict:
    """What ran since :func:`reset`: ``{"meshes": {"numba": 3}, "points": {...}, "note": ...}``."""
    with _lock:
        out: dict = {}
        for (kind, backend), n in sorted(_ran.items()):
            out.setdefault(kind, {})[backend] = n
    problem = numba_problem()
    if problem:
        out["note"] = problem
    return out
